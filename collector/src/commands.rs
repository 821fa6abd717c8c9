//! The command-line tools beside the server: `token create|list|revoke` and `audit verify`.
//! They work on the database in the data directory directly, also while a collector serves it,
//! and record what they change in the audit log (actor `cli:<user>`).

use crate::audit::NewAuditEntry;
use crate::roles::Role;
use crate::store::{Database, DATABASE_FILE};
use crate::tokens;
use clap::Subcommand;
use std::path::Path;
use std::process::ExitCode;

/// A tool to run instead of the server.
#[derive(Subcommand, Clone, Debug)]
pub enum Command {
    /// Bearer tokens of the read/admin API.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// `token ...`
#[derive(Subcommand, Clone, Debug)]
pub enum TokenCommand {
    /// Makes a token and prints it once (on stdout, alone); only its hash is stored.
    Create {
        /// What it may do: admin, editor, viewer or dsr.
        #[arg(long)]
        role: Role,
        /// Who or what it is for, shown in lists and the audit log.
        #[arg(long)]
        name: String,
    },
    /// Lists tokens (never their secrets).
    List,
    /// Revokes a token by id; it fails at once, also on a running collector.
    Revoke {
        /// The token's id (`tok_...`, from `token list`).
        id: String,
    },
}

/// `audit ...`
#[derive(Subcommand, Clone, Debug)]
pub enum AuditCommand {
    /// Checks the hash chain; exits non-zero naming the first broken entry.
    Verify,
}

/// Runs `command` on the database in `data_dir`; messages go to stderr, results to stdout.
pub fn run(command: Command, data_dir: &Path) -> ExitCode {
    match execute(command, data_dir) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("consentry-collector: {message}");
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command, data_dir: &Path) -> Result<ExitCode, String> {
    let path = data_dir.join(DATABASE_FILE);
    if matches!(command, Command::Audit(_)) && !path.is_file() {
        return Err(format!("no database at {}", path.display()));
    }
    if !data_dir.is_dir() {
        return Err(format!(
            "no data directory at {} (start the collector once, or give --data-dir)",
            data_dir.display()
        ));
    }
    let mut db = Database::open(&path).map_err(|e| format!("database: {e}"))?;
    match command {
        Command::Token(TokenCommand::Create { role, name }) => {
            let now = crate::clock::now_ms();
            let new = tokens::generate(&name, role, now).map_err(|e| e.to_string())?;
            db.create_token(&new.record, cli_entry("token.create", &new.record.id, "ok"))
                .map_err(|e| format!("database: {e}"))?;
            eprintln!(
                "created token {} ({}, role {}); it is shown once:",
                new.record.id, new.record.name, new.record.role
            );
            println!("{}", new.secret);
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::List) => {
            let list = db.tokens().map_err(|e| format!("database: {e}"))?;
            println!(
                "{:<18} {:<7} {:<10} {:<15} name",
                "id", "role", "state", "created"
            );
            for token in list {
                let state = if token.revoked_at_ms.is_some() {
                    "revoked"
                } else {
                    "live"
                };
                println!(
                    "{:<18} {:<7} {:<10} {:<15} {}",
                    token.id, token.role, state, token.created_at_ms, token.name
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            let now = crate::clock::now_ms();
            let revoked = db
                .revoke_token(&id, now, cli_entry("token.revoke", &id, "ok"))
                .map_err(|e| format!("database: {e}"))?;
            if revoked {
                eprintln!("revoked token {id}");
                Ok(ExitCode::SUCCESS)
            } else {
                Err(format!("no live token with id {id}"))
            }
        }
        Command::Audit(AuditCommand::Verify) => {
            match db.verify_audit().map_err(|e| format!("database: {e}"))? {
                Ok((length, head)) => {
                    println!("audit log verified: {length} entries, head {head}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(broken) => {
                    eprintln!("consentry-collector: {broken}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// An audit entry for a change made from the command line.
pub fn cli_entry(action: &str, target: &str, outcome: &str) -> NewAuditEntry {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    NewAuditEntry {
        at_ms: crate::clock::now_ms(),
        actor: format!("cli:{user}"),
        role: Role::Admin.as_str().to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        outcome: outcome.to_owned(),
    }
}
