//! Bearer tokens of the read/admin API: how they are made, what the store keeps of them, and who
//! presented one.
//!
//! A token is `cst_` followed by 32 random bytes from the operating system (base64url, 43
//! characters). It is shown once, when made; the store keeps only its SHA-256. A plain hash is
//! enough here, unlike for passwords: a slow KDF protects low-entropy secrets from guessing,
//! while 256 random bits cannot be guessed whatever the hash costs, and SHA-256 is preimage
//! resistant, so a stolen database yields no usable token. Lookups go by hash (an index), and the
//! stored hash is compared again in constant time.

use crate::roles::Role;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io;

/// The prefix every token carries (so secret scanners and people recognise one).
pub const TOKEN_PREFIX: &str = "cst_";

/// The name `token revoke` and `DELETE /v1/tokens/{id}` give the configured `--admin-token` (or
/// the one generated in the data directory). Revoking it stores its hash as a revoked token, so
/// it opens nothing from then on, whether given again or not; start with a new one to rotate.
pub const CONFIGURED_ADMIN: &str = "admin-token";

/// The longest token name.
pub const MAX_TOKEN_NAME_CHARS: usize = 128;

/// A new token, as made: the secret (shown once) and what is stored.
pub struct NewToken {
    /// The token itself; never stored, never logged.
    pub secret: String,
    /// What the store keeps.
    pub record: TokenRecord,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// A stored token: id, name, role, hash of the secret, and when it was made or revoked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenRecord {
    /// `tok_` and 12 hex digits: how lists, the audit log and `token revoke` name it.
    pub id: String,
    /// What the operator called it (`"grafana"`, `"alice's laptop"`).
    pub name: String,
    /// What it may do.
    #[serde(serialize_with = "role_name")]
    pub role: Role,
    /// Lower-case hex SHA-256 of the secret.
    #[serde(skip)]
    pub hash: String,
    /// When it was made, Unix milliseconds.
    pub created_at_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
}

fn role_name<S: serde::Serializer>(role: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(role.as_str())
}

/// Who made a request: a token's name, role and id (`None` for the `--admin-token`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its id; `None` for the configured admin token.
    pub token_id: Option<String>,
}

impl Principal {
    /// How the audit log names it: a token's name and, in brackets, its id (names are the
    /// operator's free text and need not be unique; ids are); `admin-token` for the configured
    /// one.
    pub fn actor(&self) -> String {
        match &self.token_id {
            Some(id) => format!("{} [{id}]", self.name),
            None => self.name.clone(),
        }
    }

    /// The principal of the configured `--admin-token` (role `admin`).
    pub fn configured_admin() -> Principal {
        Principal {
            name: "admin-token".to_owned(),
            role: Role::Admin,
            token_id: None,
        }
    }
}

/// A token name that is empty, too long or has control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadTokenName;

impl fmt::Display for BadTokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a token name is 1 to {MAX_TOKEN_NAME_CHARS} characters without control characters, \
             and not `{CONFIGURED_ADMIN}`, `system`, `cli:…` or `intake:…`"
        )
    }
}

impl std::error::Error for BadTokenName {}

/// Checks a token name: also not one of the names the audit log gives actors that are no
/// token (`admin-token`, `system`, `cli:…`, and `intake:…`, the controller of the visitors'
/// own requests).
pub fn check_name(name: &str) -> Result<(), BadTokenName> {
    let chars = name.chars().count();
    let reserved = name == CONFIGURED_ADMIN
        || name == crate::audit::SYSTEM_ACTOR
        || name.starts_with("cli:")
        || name.starts_with("intake:");
    if chars == 0 || chars > MAX_TOKEN_NAME_CHARS || name.chars().any(char::is_control) || reserved
    {
        return Err(BadTokenName);
    }
    Ok(())
}

/// The record that revokes the configured admin token whose secret hashes to `hash`: its id is
/// `admin-token-` and the hash's first 12 hex digits, so each admin token revoked has its own.
pub fn revoked_admin(hash: &str, now_ms: i64) -> TokenRecord {
    TokenRecord {
        id: format!("{CONFIGURED_ADMIN}-{}", hash.get(..12).unwrap_or(hash)),
        name: CONFIGURED_ADMIN.to_owned(),
        role: Role::Admin,
        hash: hash.to_owned(),
        created_at_ms: now_ms,
        revoked_at_ms: Some(now_ms),
    }
}

/// Makes a token for `name` with `role` at `now_ms`.
pub fn generate(name: &str, role: Role, now_ms: i64) -> io::Result<NewToken> {
    check_name(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| io::Error::other(e.to_string()))?;
    let secret = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let id = format!("tok_{}", crate::keys::random_hex(6)?);
    Ok(NewToken {
        record: TokenRecord {
            id,
            name: name.to_owned(),
            role,
            hash: hash(&secret),
            created_at_ms: now_ms,
            revoked_at_ms: None,
        },
        secret,
    })
}

/// The lower-case hex SHA-256 of a presented token.
pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_stored_as_hashes() {
        let a = generate("grafana", Role::Viewer, 1).unwrap();
        let b = generate("grafana", Role::Viewer, 1).unwrap();
        assert!(a.secret.starts_with(TOKEN_PREFIX));
        assert_eq!(a.secret.len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.record.id, b.record.id);
        assert_eq!(a.record.hash, hash(&a.secret));
        assert_eq!(a.record.hash.len(), 64);
        assert!(!format!("{a:?}").contains(&a.secret));
        let json = serde_json::to_string(&a.record).unwrap();
        assert!(!json.contains(&a.record.hash) && json.contains("\"role\":\"viewer\""));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("alice's laptop").is_ok());
        for bad in [
            "",
            "a\nb",
            &"x".repeat(129),
            "admin-token",
            "system",
            "cli:root",
            "intake:production",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
