//! The command-line tools beside the server: `token create|list|revoke`, `audit verify`,
//! `key generate|rotate`.
//! They work on the database in the data directory directly, also while a collector serves it,
//! and record what they change in the audit log (actor `cli:<user>`).

use crate::audit::NewAuditEntry;
use crate::config::{Cli, Encryption};
use crate::crypto::{keyring_for, DataKey, Keyring};
use crate::roles::Role;
use crate::store::{Codec, Database, Location, DATABASE_FILE};
use crate::tokens;
use base64::Engine;
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
    /// Encryption keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `key ...`
#[derive(Subcommand, Clone, Debug)]
pub enum KeyCommand {
    /// Prints a new data key (32 random bytes, base64) on stdout.
    Generate,
    /// Re-encrypts every stored row under the key in FILE, in batches, while a collector may
    /// serve the database (it must already run with FILE as --encryption-key-file and the old
    /// key as --old-encryption-key-file). The old keys come from --encryption-key-file /
    /// CONSENTRY_ENCRYPTION_KEY and --old-encryption-key-file.
    Rotate {
        /// The new key.
        #[arg(long, value_name = "FILE")]
        new_key_file: std::path::PathBuf,
        /// Rows re-encrypted per transaction.
        #[arg(long, default_value_t = 500)]
        batch_size: u32,
        /// Milliseconds to wait between transactions, so the collector's own writes (which
        /// SQLite's busy handler retries) get the write lock in between.
        #[arg(long, default_value_t = 20)]
        pause_ms: u64,
        /// No collector serves this database: rotate without one having started with the new
        /// key first.
        #[arg(long)]
        offline: bool,
    },
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
    /// Revokes a token by id; it fails at once, also on a running collector. `admin-token`
    /// revokes the configured admin token (--admin-token / CONSENTRY_ADMIN_TOKEN, or the one
    /// kept in the data directory): it opens nothing from then on, even if given again.
    Revoke {
        /// The token's id (`tok_...`, from `token list`), or `admin-token`.
        id: String,
    },
}

/// `audit ...`
#[derive(Subcommand, Clone, Debug)]
pub enum AuditCommand {
    /// Checks the hash chain; exits non-zero naming the first broken entry.
    Verify {
        /// An entry's sequence number and hash kept outside the database (from the shipped
        /// JSON log's `audit_seq`/`audit_hash`, or an earlier verify): the chain must still hold
        /// that entry with that hash, which catches a log cut short or rewritten whole by
        /// someone who could write the database. Repeatable.
        #[arg(long = "anchor", value_name = "SEQ:HASH")]
        anchors: Vec<String>,
    },
}

/// A `--anchor SEQ:HASH`.
fn parse_anchor(text: &str) -> Result<(i64, String), String> {
    let bad = || format!("--anchor `{text}` must be SEQ:HASH, e.g. 42:9f86d0…");
    let (seq, hash) = text.split_once(':').ok_or_else(bad)?;
    let seq = seq
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(bad)?;
    let hash = hash.trim().to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok((seq, hash))
}

/// Runs `command` on the database in `cli.data_dir`; messages go to stderr, results to stdout.
pub fn run(command: Command, cli: &Cli) -> ExitCode {
    match execute(command, cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("consentry-collector: {message}");
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command, cli: &Cli) -> Result<ExitCode, String> {
    let data_dir = cli.data_dir.as_path();
    if let Command::Key(KeyCommand::Generate) = command {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
        println!(
            "{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let location = match cli.store.as_deref() {
        Some(store) => {
            crate::config::store_location(store, std::env::var("CONSENTRY_STORE").ok().as_deref())?
        }
        None => Location::Sqlite(data_dir.join(DATABASE_FILE)),
    };
    if let Location::Sqlite(path) = &location {
        if matches!(command, Command::Audit(_) | Command::Key(_)) && !path.is_file() {
            return Err(format!("no database at {}", path.display()));
        }
        if cli.store.is_none() && !data_dir.is_dir() {
            return Err(format!(
                "no data directory at {} (start the collector once, or give --data-dir)",
                data_dir.display()
            ));
        }
    }
    let mut db = Database::open(&location).map_err(|e| format!("database: {e}"))?;
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
        Command::Token(TokenCommand::Revoke { id }) if id == tokens::CONFIGURED_ADMIN => {
            let secret = match &cli.admin_token {
                Some(token) => token.trim().to_owned(),
                None => std::fs::read_to_string(data_dir.join(crate::keys::ADMIN_TOKEN_FILE))
                    .map(|text| text.trim().to_owned())
                    .map_err(|e| {
                        format!(
                            "no admin token to revoke: give it with --admin-token or \
                             CONSENTRY_ADMIN_TOKEN ({}: {e})",
                            crate::keys::ADMIN_TOKEN_FILE
                        )
                    })?,
            };
            let hash = tokens::hash(&secret);
            let revoked = db
                .revoke_configured_admin(
                    &hash,
                    crate::clock::now_ms(),
                    cli_entry("token.revoke", tokens::CONFIGURED_ADMIN, "ok"),
                )
                .map_err(|e| format!("database: {e}"))?;
            if revoked {
                eprintln!("revoked the admin token; start the collector with a new one");
            } else {
                eprintln!("the admin token was already revoked");
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
        Command::Key(KeyCommand::Generate) => Ok(ExitCode::SUCCESS),
        Command::Key(KeyCommand::Rotate {
            new_key_file,
            batch_size,
            pause_ms,
            offline,
        }) => rotate(
            &mut db,
            cli,
            &new_key_file,
            (batch_size.max(1), offline),
            pause_ms,
        ),
        Command::Audit(AuditCommand::Verify { anchors }) => {
            let anchors = anchors
                .iter()
                .map(|a| parse_anchor(a))
                .collect::<Result<Vec<_>, _>>()?;
            let (length, head) = match db.verify_audit().map_err(|e| format!("database: {e}"))? {
                Ok(verified) => verified,
                Err(broken) => {
                    eprintln!("consentry-collector: {broken}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            for (seq, hash) in &anchors {
                let stored = db.audit_hash(*seq).map_err(|e| format!("database: {e}"))?;
                let problem = match stored {
                    None => Some(format!(
                        "the log ends at entry {length}, before anchored entry {seq}: it was cut short"
                    )),
                    Some(stored) if stored != *hash => Some(format!(
                        "audit entry {seq} does not have the anchored hash: the chain was rewritten"
                    )),
                    Some(_) => None,
                };
                if let Some(problem) = problem {
                    eprintln!("consentry-collector: {problem}");
                    return Ok(ExitCode::FAILURE);
                }
            }
            println!(
                "audit log verified: {length} entries, head {head}{}",
                match anchors.len() {
                    0 => String::new(),
                    n => format!(", {n} anchors hold"),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Who runs the command line: `cli:uid=<uid>` from the process's real user id (which the caller
/// cannot choose), with `$USER` after it as a hint (which it can).
fn cli_actor() -> String {
    #[cfg(unix)]
    let uid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self")
            .map_or_else(|_| "unknown".to_owned(), |m| m.uid().to_string())
    };
    #[cfg(not(unix))]
    let uid = "unknown".to_owned();
    match std::env::var("USER") {
        Ok(user) => format!("cli:uid={uid} ({user})"),
        Err(_) => format!("cli:uid={uid}"),
    }
}

/// An audit entry for a change made from the command line.
pub fn cli_entry(action: &str, target: &str, outcome: &str) -> NewAuditEntry {
    NewAuditEntry {
        at_ms: crate::clock::now_ms(),
        actor: cli_actor(),
        role: Role::Admin.as_str().to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        outcome: outcome.to_owned(),
    }
}

fn rotate(
    db: &mut Database,
    cli: &Cli,
    new_key_file: &Path,
    (batch, offline): (u32, bool),
    pause_ms: u64,
) -> Result<ExitCode, String> {
    let new = DataKey::from_file(new_key_file)?;
    let old_encryption = Encryption::from_flags(
        cli.encryption_key_file.clone(),
        cli.encryption_key.clone(),
        cli.old_encryption_key_files.clone(),
        false,
        false,
    );
    let mut old = match &old_encryption {
        Some(encryption) => match keyring_for(encryption, &cli.data_dir)? {
            Some(keyring) => keyring.into_keys(),
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    old.retain(|k| k.id() != new.id());
    let new_id = new.id().to_owned();
    let old_ids: Vec<String> = old.iter().map(|k| k.id().to_owned()).collect();
    let codec = Codec::encrypted(Keyring::new(new, old));
    eprintln!("re-encrypting under key {new_id} ({batch} rows per transaction)");
    let target = format!("{} -> {new_id}", old_ids.join(","));
    let rotated = db.rotate(&codec, (batch, offline), |done| {
        if done > 0 && done % 10_000 < u64::from(batch) {
            eprintln!("  {done} rows");
        }
        std::thread::sleep(std::time::Duration::from_millis(pause_ms));
    });
    let (rewritten, retired) = match rotated {
        Ok(done) => done,
        Err(e) => {
            // A failed rotation is recorded too; nothing was retired.
            let _ = db.audit(cli_entry("key.rotate", &target, "failed"));
            return Err(format!("rotation stopped: {e}"));
        }
    };
    db.audit(cli_entry(
        "key.rotate",
        &target,
        &format!("{rewritten} rows"),
    ))
    .map_err(|e| format!("database: {e}"))?;
    eprintln!(
        "done: {rewritten} rows re-encrypted under {new_id}; retired keys: {}",
        if retired.is_empty() {
            "none".to_owned()
        } else {
            retired.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}
