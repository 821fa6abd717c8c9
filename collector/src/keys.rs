//! Credentials: the per-environment API keys batches carry, and the admin token of the read API.
//!
//! API keys are public write keys (they ship in page source); they route a batch to an
//! environment and keep strangers' traffic out. The admin token guards reading and resetting
//! what was stored. Both are compared in constant time.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The longest API key (the schema's `api_key.maxLength`).
pub const MAX_API_KEY_CHARS: usize = 128;

/// The shortest admin token accepted from the operator.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// One `ENV=KEY` pair from the command line.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyEntry {
    /// The environment batches with this key are stored under (`production`, `staging`, ...).
    pub environment: String,
    /// The key itself.
    pub key: String,
}

impl fmt::Debug for ApiKeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyEntry({}=…)", self.environment)
    }
}

/// A problem with the configured credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// An `--api-key` value is not `ENV=KEY`.
    Malformed(String),
    /// No API key was configured.
    NoApiKey,
    /// The same key was given for two environments.
    SharedKey {
        /// The first environment.
        first: String,
        /// The second environment.
        second: String,
    },
    /// The admin token is too short or has whitespace.
    WeakAdminToken,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Malformed(problem) => f.write_str(problem),
            KeyError::NoApiKey => f.write_str(
                "no API key: give at least one --api-key ENV=KEY (or CONSENTRY_API_KEYS=env=key,...)",
            ),
            KeyError::SharedKey { first, second } => write!(
                f,
                "one API key is given for two environments, `{first}` and `{second}`"
            ),
            KeyError::WeakAdminToken => write!(
                f,
                "the admin token must be at least {MIN_ADMIN_TOKEN_CHARS} characters without whitespace"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

impl FromStr for ApiKeyEntry {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = |why: &str| KeyError::Malformed(format!("`--api-key` {why}"));
        let (environment, key) = text
            .split_once('=')
            .ok_or_else(|| malformed("must be ENV=KEY, e.g. production=pk_live_123"))?;
        let environment_ok = !environment.is_empty()
            && environment.len() <= 64
            && environment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !environment_ok {
            return Err(malformed(
                "environment must be 1 to 64 of A-Z, a-z, 0-9, _, - and .",
            ));
        }
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_API_KEY_CHARS || key.chars().any(char::is_whitespace) {
            return Err(malformed(
                "key must be 1 to 128 characters without whitespace",
            ));
        }
        Ok(ApiKeyEntry {
            environment: environment.to_owned(),
            key: key.to_owned(),
        })
    }
}

/// The configured API keys, each mapping to its environment. An environment may have several
/// keys (rotation); a key belongs to one environment.
#[derive(Clone)]
pub struct ApiKeys {
    entries: Vec<ApiKeyEntry>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.entries).finish()
    }
}

impl ApiKeys {
    /// Checks the entries: at least one, and no key shared by two environments.
    pub fn new(entries: Vec<ApiKeyEntry>) -> Result<ApiKeys, KeyError> {
        if entries.is_empty() {
            return Err(KeyError::NoApiKey);
        }
        for (i, a) in entries.iter().enumerate() {
            for b in entries.iter().skip(i + 1) {
                if a.key == b.key && a.environment != b.environment {
                    return Err(KeyError::SharedKey {
                        first: a.environment.clone(),
                        second: b.environment.clone(),
                    });
                }
            }
        }
        Ok(ApiKeys { entries })
    }

    /// The environment `key` belongs to, if it is a configured key.
    pub fn environment_of(&self, key: &str) -> Option<&str> {
        // Look at every entry whatever matches, so timing says nothing about which key is close.
        let mut found = None;
        for entry in &self.entries {
            if constant_time_eq(entry.key.as_bytes(), key.as_bytes()) && found.is_none() {
                found = Some(entry.environment.as_str());
            }
        }
        found
    }

    /// The environments, in the order first configured, without repeats.
    pub fn environments(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for entry in &self.entries {
            if !out.contains(&entry.environment.as_str()) {
                out.push(&entry.environment);
            }
        }
        out
    }
}

/// The bearer token of the read and admin API.
#[derive(Clone)]
pub struct AdminToken(String);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(…)")
    }
}

impl AdminToken {
    /// Accepts an operator's token: at least 16 characters, no whitespace.
    pub fn new(token: &str) -> Result<AdminToken, KeyError> {
        if token.chars().count() < MIN_ADMIN_TOKEN_CHARS || token.chars().any(char::is_whitespace) {
            return Err(KeyError::WeakAdminToken);
        }
        Ok(AdminToken(token.to_owned()))
    }

    /// Whether `presented` is this token (constant time).
    pub fn matches(&self, presented: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), presented.as_bytes())
    }

    /// The token itself, for the operator's own tools.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Where the admin token came from, for the startup message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminTokenSource {
    /// Given by flag or environment variable.
    Given,
    /// Read from this file, written by an earlier start.
    Stored(PathBuf),
    /// Generated now and written to this file.
    Created(PathBuf),
}

/// The file in the data directory that keeps a generated admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Reads the admin token kept in `data_dir`, or generates one and keeps it there (mode 0600).
pub fn load_or_create_admin_token(data_dir: &Path) -> io::Result<(AdminToken, AdminTokenSource)> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let token = AdminToken::new(text.trim()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?;
            Ok((token, AdminTokenSource::Stored(path)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let token = random_hex(32)?;
            write_private(&path, format!("{token}\n").as_bytes())?;
            Ok((AdminToken(token), AdminTokenSource::Created(path)))
        }
        Err(e) => Err(e),
    }
}

/// `bytes` random bytes from the operating system, as lower-case hex.
pub fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(crate::tokens::hex(&buf))
}

/// Writes a file only its owner can read (on Unix), replacing it whole.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let temp = path.with_extension("tmp");
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(&temp, path)
}

/// Whether `a == b`, in time that depends only on their lengths (`subtle`).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_entries_parse_env_equals_key() {
        let entry: ApiKeyEntry = "production=pk_live_1".parse().unwrap();
        assert_eq!(entry.environment, "production");
        assert_eq!(entry.key, "pk_live_1");
        let with_equals: ApiKeyEntry = "staging=a=b".parse().unwrap();
        assert_eq!(with_equals.key, "a=b");
        for bad in ["", "production", "=key", "prod=", "pro d=k", "p=k k"] {
            assert!(bad.parse::<ApiKeyEntry>().is_err(), "{bad}");
        }
        assert!(
            format!("{entry:?}").contains("production")
                && !format!("{entry:?}").contains("pk_live_1")
        );
    }

    #[test]
    fn keys_map_to_environments_and_may_not_be_shared() {
        let entry = |s: &str| s.parse::<ApiKeyEntry>().unwrap();
        let keys =
            ApiKeys::new(vec![entry("prod=k1"), entry("prod=k2"), entry("stage=k3")]).unwrap();
        assert_eq!(keys.environment_of("k2"), Some("prod"));
        assert_eq!(keys.environment_of("k3"), Some("stage"));
        assert_eq!(keys.environment_of("k"), None);
        assert_eq!(keys.environment_of(""), None);
        assert_eq!(keys.environments(), vec!["prod", "stage"]);
        assert!(matches!(
            ApiKeys::new(vec![entry("a=k"), entry("b=k")]),
            Err(KeyError::SharedKey { .. })
        ));
        assert_eq!(ApiKeys::new(vec![]).unwrap_err(), KeyError::NoApiKey);
    }

    #[test]
    fn admin_tokens_are_created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = load_or_create_admin_token(dir.path()).unwrap();
        assert!(matches!(source, AdminTokenSource::Created(_)));
        assert_eq!(first.expose().len(), 64);
        let (second, source) = load_or_create_admin_token(dir.path()).unwrap();
        assert!(matches!(source, AdminTokenSource::Stored(_)));
        assert!(second.matches(first.expose()));
        assert!(!second.matches("nope"));
        assert!(AdminToken::new("short").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(ADMIN_TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
