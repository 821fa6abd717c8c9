//! The command line (every flag also read from a `CONSENTRY_*` environment variable) and the
//! checked settings the server runs with.
//!
//! [`Cli`] is what clap parses; [`Settings`] is what [`crate::server::start`] takes, so tests and
//! the load benchmark build settings directly. [`Settings::check`] holds the rules that do not fit
//! one flag, such as "plain HTTP only on a loopback address".

use crate::clock::Clock;
use crate::commands::Command;
use crate::connection::ConnectionLimits;
use crate::keys::{AdminToken, ApiKeyEntry, ApiKeys, KeyError};
use crate::network::{parse_network, Networks, Rate};
use crate::origin::{Origin, OriginPolicy};
use crate::rights::retention::{self, RetentionConfig, Rule};
use crate::rights::RightsSettings;
use crate::store::sql::PostgresTarget;
use crate::store::Location;
use clap::Parser;
use ipnet::IpNet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `consentry-collector`: the Consentry ingestion endpoint.
#[derive(Parser, Clone, Debug)]
#[command(
    name = "consentry-collector",
    version,
    about,
    long_about = None,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// A tool to run instead of the server (`token`, `audit`, `key`).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on.
    #[arg(long, env = "CONSENTRY_LISTEN", default_value = "127.0.0.1:8444")]
    pub listen: SocketAddr,

    /// Directory for the database, the local certificates and the generated admin token.
    #[arg(
        long,
        env = "CONSENTRY_DATA_DIR",
        default_value = ".data/collector",
        global = true
    )]
    pub data_dir: PathBuf,

    /// The store: `sqlite:PATH`, or `postgres://USER@HOST:PORT/DB[?sslmode=require&sslrootcert=CA.pem]`
    /// shared by every instance (give it in the environment, and the password in PGPASSWORD:
    /// a password on the command line shows in `ps` and is refused). Default: SQLite in
    /// --data-dir.
    #[arg(long, env = "CONSENTRY_STORE", hide_env_values = true, global = true)]
    pub store: Option<String>,

    /// PEM certificate chain to serve (with --tls-key); without both, a local CA is used.
    #[arg(long, env = "CONSENTRY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "CONSENTRY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve plain HTTP instead of HTTPS; only allowed on a loopback address.
    #[arg(long, env = "CONSENTRY_PLAIN_HTTP", conflicts_with_all = ["tls_cert", "tls_key"])]
    pub plain_http: bool,

    /// An API key and the environment it writes to, as ENV=KEY (repeatable; at least one).
    #[arg(
        long = "api-key",
        env = "CONSENTRY_API_KEYS",
        value_name = "ENV=KEY",
        value_delimiter = ',',
        required = true,
        hide_env_values = true
    )]
    pub api_keys: Vec<ApiKeyEntry>,

    /// An origin allowed to send batches from a browser (repeatable), e.g. `https://shop.example`.
    #[arg(
        long = "allow-origin",
        env = "CONSENTRY_ALLOW_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub allow_origins: Vec<Origin>,

    /// Also allow any http(s) origin on localhost, 127.0.0.1 or ::1, any port (development, tests).
    #[arg(long, env = "CONSENTRY_ALLOW_LOOPBACK_ORIGINS")]
    pub allow_loopback_origins: bool,

    /// Bearer token of the read and admin API; generated and kept in the data directory if absent.
    #[arg(long, env = "CONSENTRY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// An origin allowed to call the read/admin API from a browser (repeatable; none by default).
    #[arg(
        long = "admin-origin",
        env = "CONSENTRY_ADMIN_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub admin_origins: Vec<Origin>,

    /// Purposes that count as a sale of data under CCPA, e.g. advertising,personalization.
    #[arg(
        long,
        env = "CONSENTRY_SALE_PURPOSES",
        value_name = "PURPOSES",
        value_delimiter = ',',
        value_parser = parse_purpose
    )]
    pub sale_purposes: Vec<String>,

    /// Enable POST/DELETE /v1/admin/faults and POST /v1/admin/reset (tests only).
    #[arg(long, env = "CONSENTRY_FAULT_INJECTION")]
    pub fault_injection: bool,

    /// Largest request body in bytes, both as received and after gzip.
    #[arg(long, env = "CONSENTRY_MAX_BODY_BYTES", default_value_t = crate::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// File with the data key that encrypts stored personal data (base64 of 32 random bytes).
    #[arg(
        long,
        env = "CONSENTRY_ENCRYPTION_KEY_FILE",
        value_name = "FILE",
        global = true
    )]
    pub encryption_key_file: Option<PathBuf>,

    /// The data key itself, base64 (set it in the environment, never on a command line).
    #[arg(
        long,
        env = "CONSENTRY_ENCRYPTION_KEY",
        hide = true,
        hide_env_values = true,
        global = true,
        conflicts_with = "encryption_key_file"
    )]
    pub encryption_key: Option<String>,

    /// An older data key that still decrypts (during a rotation); repeatable.
    #[arg(
        long = "old-encryption-key-file",
        env = "CONSENTRY_OLD_ENCRYPTION_KEY_FILES",
        value_name = "FILE",
        value_delimiter = ',',
        global = true
    )]
    pub old_encryption_key_files: Vec<PathBuf>,

    /// Make (once) and use a data key in the data directory: for the demo and tests only.
    #[arg(long, env = "CONSENTRY_GENERATE_ENCRYPTION_KEY", conflicts_with_all = ["encryption_key_file", "encryption_key"])]
    pub generate_encryption_key: bool,

    /// Store personal data in clear. Never in production.
    #[arg(
        long,
        env = "CONSENTRY_INSECURE_NO_ENCRYPTION",
        conflicts_with_all = ["encryption_key_file", "encryption_key", "generate_encryption_key"]
    )]
    pub insecure_no_encryption: bool,

    /// A proxy (address or CIDR) whose X-Forwarded-For is believed, for rate limits and the
    /// admin allowlist only; repeatable.
    #[arg(long = "trusted-proxy", env = "CONSENTRY_TRUSTED_PROXIES", value_name = "CIDR", value_delimiter = ',', value_parser = parse_network)]
    pub trusted_proxies: Vec<IpNet>,

    /// Client addresses (CIDR) the admin and read API answers; others get 403; repeatable.
    #[arg(long = "admin-allow-ip", env = "CONSENTRY_ADMIN_ALLOW_IPS", value_name = "CIDR", value_delimiter = ',', value_parser = parse_network)]
    pub admin_allow_ips: Vec<IpNet>,

    /// Batches a minute per client address, sustained (0: no limit).
    #[arg(long, env = "CONSENTRY_IP_RATE_PER_MINUTE", default_value_t = 600)]
    pub ip_rate_per_minute: u32,

    /// Batches per client address at once.
    #[arg(long, env = "CONSENTRY_IP_BURST", default_value_t = 60)]
    pub ip_burst: u32,

    /// Batches a minute per API key, sustained (0: no limit).
    #[arg(long, env = "CONSENTRY_KEY_RATE_PER_MINUTE", default_value_t = 60_000)]
    pub key_rate_per_minute: u32,

    /// Batches per API key at once.
    #[arg(long, env = "CONSENTRY_KEY_BURST", default_value_t = 1000)]
    pub key_burst: u32,

    /// Failed bearer authentications (401) a minute per client address, sustained, before
    /// the address gets 429 on the admin and DSR APIs (0: no limit).
    #[arg(long, env = "CONSENTRY_AUTH_FAILURES_PER_MINUTE", default_value_t = 10)]
    pub auth_failures_per_minute: u32,

    /// Failed bearer authentications per client address at once.
    #[arg(long, env = "CONSENTRY_AUTH_FAILURE_BURST", default_value_t = 20)]
    pub auth_failure_burst: u32,

    /// Connections open at once (also bounded by the descriptor limit, raised at start).
    #[arg(long, env = "CONSENTRY_MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_connections)]
    pub max_connections: usize,

    /// Connections one client address (an IPv6 /64) may hold at once; 0 for no cap. Peers in
    /// --trusted-proxy are exempt.
    #[arg(long, env = "CONSENTRY_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = ConnectionLimits::default().max_connections_per_address)]
    pub max_connections_per_address: usize,

    /// Seconds a connection may stay open with no request in flight.
    #[arg(long, env = "CONSENTRY_IDLE_TIMEOUT_SECS", default_value_t = ConnectionLimits::default().idle_timeout.as_secs())]
    pub idle_timeout_secs: u64,

    /// Seconds after which a connection is closed gracefully, however busy.
    #[arg(long, env = "CONSENTRY_MAX_CONNECTION_AGE_SECS", default_value_t = ConnectionLimits::default().max_age.as_secs())]
    pub max_connection_age_secs: u64,

    /// Seconds one request may take, body included (408 after that).
    #[arg(long, env = "CONSENTRY_REQUEST_TIMEOUT_SECS", default_value_t = ConnectionLimits::default().request_timeout.as_secs())]
    pub request_timeout_secs: u64,

    /// Of --max-body-memory-bytes, what one client address may hold (default: an eighth, and
    /// at least twice --max-body-bytes).
    #[arg(long, env = "CONSENTRY_MAX_BODY_MEMORY_PER_CLIENT_BYTES")]
    pub max_body_memory_per_client_bytes: Option<usize>,

    /// Bytes of request bodies held in memory at once across all requests (503 beyond).
    #[arg(long, env = "CONSENTRY_MAX_BODY_MEMORY_BYTES", default_value_t = ConnectionLimits::default().max_body_memory)]
    pub max_body_memory_bytes: usize,

    /// The OpenDSR processor domain (X-OpenDSR-Processor-Domain; the signing certificate's name).
    #[arg(
        long,
        env = "CONSENTRY_DSR_PROCESSOR_DOMAIN",
        default_value = "localhost"
    )]
    pub dsr_processor_domain: String,

    /// PEM certificate (chain) that signs OpenDSR answers and callbacks (with --dsr-signing-key).
    #[arg(long, env = "CONSENTRY_DSR_SIGNING_CERT", requires = "dsr_signing_key")]
    pub dsr_signing_cert: Option<PathBuf>,

    /// Its ECDSA P-256 private key (PKCS#8 PEM).
    #[arg(long, env = "CONSENTRY_DSR_SIGNING_KEY", requires = "dsr_signing_cert")]
    pub dsr_signing_key: Option<PathBuf>,

    /// The public base URL of this collector, for download and status links (default: the listening URL).
    #[arg(long, env = "CONSENTRY_DSR_PUBLIC_URL")]
    pub dsr_public_url: Option<String>,

    /// Hours promised for fulfilling a data-subject request (expected_completion_time).
    #[arg(long, env = "CONSENTRY_DSR_SLA_HOURS", default_value_t = 720)]
    pub dsr_sla_hours: u64,

    /// A CA certificate (PEM) callback servers may also be verified against; repeatable.
    #[arg(
        long = "dsr-callback-ca",
        env = "CONSENTRY_DSR_CALLBACK_CAS",
        value_name = "PEM",
        value_delimiter = ','
    )]
    pub dsr_callback_cas: Vec<PathBuf>,

    /// Allow http:// status callbacks to loopback addresses (tests only).
    #[arg(long, env = "CONSENTRY_DSR_ALLOW_LOOPBACK_HTTP_CALLBACKS")]
    pub dsr_allow_loopback_http_callbacks: bool,

    /// Attempts per status callback before it is marked failed.
    #[arg(long, env = "CONSENTRY_DSR_CALLBACK_ATTEMPTS", default_value_t = 8)]
    pub dsr_callback_attempts: u32,

    /// Milliseconds before a callback's first retry (doubling per attempt, at most an hour).
    #[arg(
        long,
        env = "CONSENTRY_DSR_CALLBACK_BACKOFF_MS",
        default_value_t = 1000
    )]
    pub dsr_callback_backoff_ms: u64,

    /// A retention schedule: purpose:NAME=AGE, environment:NAME=AGE or NAME=AGE (a purpose), AGE as 400d, 12h, 30m, 10s; repeatable.
    #[arg(
        long = "retention",
        env = "CONSENTRY_RETENTION",
        value_name = "SCHEDULE",
        value_delimiter = ','
    )]
    pub retention: Vec<Rule>,

    /// A file of retention schedules, one a line (`#` comments).
    #[arg(long, env = "CONSENTRY_RETENTION_FILE")]
    pub retention_file: Option<PathBuf>,

    /// Seconds between retention sweeps.
    #[arg(long, env = "CONSENTRY_RETENTION_SWEEP_SECS", default_value_t = 3600)]
    pub retention_sweep_secs: u64,

    /// Test only (needs --fault-injection): claim data-subject requests but never fulfil them.
    #[arg(long, hide = true, requires = "fault_injection")]
    pub dsr_hold_in_progress: bool,
}

fn parse_purpose(text: &str) -> Result<String, String> {
    if consentry_core::purpose::is_valid_name(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not a purpose name: a lower-case letter then up to 63 of a-z, 0-9, _ and -"
        ))
    }
}

/// How connections are secured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TLS with the operator's certificate chain and key (PEM files).
    TlsFiles {
        /// The certificate chain, leaf first.
        cert: PathBuf,
        /// The leaf's private key.
        key: PathBuf,
    },
    /// TLS with a local CA and `localhost` certificate kept in the data directory.
    TlsLocalCa,
    /// Plain HTTP, on a loopback address only.
    PlainHttp,
}

/// Where the data key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Encryption {
    /// An operator's key, and older keys that still decrypt.
    Keys {
        /// The key that encrypts.
        current: KeySource,
        /// Keys that only decrypt (during a rotation).
        old: Vec<PathBuf>,
    },
    /// A key made once in the data directory (`--generate-encryption-key`: demo, tests).
    GeneratedInDataDir,
    /// No encryption (`--insecure-no-encryption`).
    Insecure,
}

impl fmt::Debug for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encryption::Keys { current, old } => write!(f, "Keys({current:?}, old: {old:?})"),
            Encryption::GeneratedInDataDir => f.write_str("GeneratedInDataDir"),
            Encryption::Insecure => f.write_str("Insecure"),
        }
    }
}

/// Where one key is read from.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file holding its base64.
    File(PathBuf),
    /// Its base64 text (from `CONSENTRY_ENCRYPTION_KEY`).
    Text(String),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "File({})", path.display()),
            KeySource::Text(_) => f.write_str("Text(…)"),
        }
    }
}

impl Encryption {
    /// From the key flags; `None` when no key and no choice was given.
    pub fn from_flags(
        file: Option<PathBuf>,
        text: Option<String>,
        old: Vec<PathBuf>,
        generate: bool,
        insecure: bool,
    ) -> Option<Encryption> {
        match (file, text) {
            (Some(path), _) => Some(Encryption::Keys {
                current: KeySource::File(path),
                old,
            }),
            (None, Some(text)) => Some(Encryption::Keys {
                current: KeySource::Text(text),
                old,
            }),
            (None, None) if generate => Some(Encryption::GeneratedInDataDir),
            (None, None) if insecure => Some(Encryption::Insecure),
            (None, None) => None,
        }
    }
}

/// Everything the server runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Where the certificates, generated keys, exports and (by default) the database live.
    pub data_dir: PathBuf,
    /// The store; `None` is SQLite in the data directory.
    pub store: Option<Location>,
    /// TLS or plain HTTP.
    pub transport: Transport,
    /// API keys and their environments.
    pub api_keys: ApiKeys,
    /// Origins granted CORS on `POST /v1/batch`.
    pub ingest_origins: OriginPolicy,
    /// Origins granted CORS on the read and admin API.
    pub admin_origins: OriginPolicy,
    /// The admin token; `None` generates or reuses one in the data directory.
    pub admin_token: Option<AdminToken>,
    /// Purposes that count as a sale of data under CCPA.
    pub sale_purposes: Vec<String>,
    /// Whether the fault and reset endpoints exist.
    pub fault_injection: bool,
    /// Largest request body, before and after gzip.
    pub max_body_bytes: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Connection caps and timeouts.
    pub limits: ConnectionLimits,
    /// Where the data key comes from.
    pub encryption: Encryption,
    /// The most values the data key may seal ([`crate::crypto::SEAL_LIMIT`]; lower only in
    /// tests).
    pub seal_limit: u64,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Networks,
    /// Client addresses the admin API answers (all when empty).
    pub admin_allow: Networks,
    /// Ingestion per client address.
    pub ip_rate: Rate,
    /// Ingestion per API key.
    pub key_rate: Rate,
    /// Failed bearer authentications per client address.
    pub auth_failure_rate: Rate,
    /// Data subjects' rights: OpenDSR, callbacks, retention.
    pub rights: RightsSettings,
    /// The clock of data-subject work and of `received_at` (a virtual one in tests).
    pub clock: Clock,
}

/// A configuration the collector refuses to start with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `--plain-http` on an address that is not loopback.
    PlainHttpNotLoopback(SocketAddr),
    /// A body limit below what the SDK may send.
    BodyLimitTooSmall(usize),
    /// A problem with keys or the admin token.
    Keys(KeyError),
    /// A limit of zero or too little body memory for one body.
    Limit(&'static str),
    /// No data key and no `--insecure-no-encryption`.
    NoEncryptionKey,
    /// A data-subject or retention setting.
    Rights(String),
    /// A `--store` that does not parse, or shows its password on the command line.
    Store(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::PlainHttpNotLoopback(addr) => write!(
                f,
                "refusing plain HTTP on {addr}: --plain-http is only allowed on a loopback address \
                 (127.0.0.1, ::1); serve HTTPS with --tls-cert/--tls-key or the local CA instead"
            ),
            ConfigError::BodyLimitTooSmall(n) => write!(
                f,
                "--max-body-bytes {n} is below {}, the largest batch the SDK sends",
                consentry_core::limits::MAX_BATCH_BYTES
            ),
            ConfigError::Keys(e) => e.fmt(f),
            ConfigError::Limit(problem) => f.write_str(problem),
            ConfigError::Rights(problem) | ConfigError::Store(problem) => f.write_str(problem),
            ConfigError::NoEncryptionKey => f.write_str(
                "no encryption key: give --encryption-key-file FILE (32 random bytes, base64: \
                 `head -c 32 /dev/urandom | base64`) or CONSENTRY_ENCRYPTION_KEY, or \
                 --insecure-no-encryption to store personal data in clear",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<KeyError> for ConfigError {
    fn from(e: KeyError) -> Self {
        ConfigError::Keys(e)
    }
}

/// Reads `--store` (`from_env`: the value of `CONSENTRY_STORE`, if set): `sqlite:PATH` or a
/// PostgreSQL URL, whose password must not come from the command line.
pub fn store_location(store: &str, from_env: Option<&str>) -> Result<Location, String> {
    if let Some(path) = store.strip_prefix("sqlite:") {
        if path.is_empty() {
            return Err("--store sqlite:PATH needs a path".to_owned());
        }
        return Ok(Location::Sqlite(PathBuf::from(path)));
    }
    if store.starts_with("postgres://") || store.starts_with("postgresql://") {
        if PostgresTarget::url_has_password(store) && from_env != Some(store) {
            return Err(
                "--store: a password on the command line shows in `ps`; give it in \
                        PGPASSWORD (or the whole URL in CONSENTRY_STORE)"
                    .to_owned(),
            );
        }
        let password = std::env::var("PGPASSWORD").ok();
        return PostgresTarget::parse(store, password.as_deref())
            .map(|target| Location::Postgres(Box::new(target)));
    }
    Err(format!(
        "--store {store:?}: give sqlite:PATH or a postgres:// URL"
    ))
}

impl Settings {
    /// Where the store is: `--store`, or SQLite in the data directory.
    pub fn store_location(&self) -> Location {
        self.store
            .clone()
            .unwrap_or_else(|| Location::Sqlite(self.data_dir.join(crate::store::DATABASE_FILE)))
    }

    /// Settings with the defaults of the command line: TLS with the local CA, no origins, a
    /// generated admin token, no fault injection, 1 MiB bodies.
    pub fn new(listen: SocketAddr, data_dir: PathBuf, api_keys: ApiKeys) -> Settings {
        Settings {
            listen,
            data_dir,
            store: None,
            transport: Transport::TlsLocalCa,
            api_keys,
            ingest_origins: OriginPolicy::none(),
            admin_origins: OriginPolicy::none(),
            admin_token: None,
            sale_purposes: Vec::new(),
            fault_injection: false,
            max_body_bytes: crate::DEFAULT_MAX_BODY_BYTES,
            shutdown_grace: Duration::from_secs(10),
            limits: ConnectionLimits::default(),
            encryption: Encryption::GeneratedInDataDir,
            seal_limit: crate::crypto::SEAL_LIMIT,
            trusted_proxies: Networks::default(),
            admin_allow: Networks::default(),
            ip_rate: Rate {
                per_minute: 600,
                burst: 60,
            },
            key_rate: Rate {
                per_minute: 60_000,
                burst: 1000,
            },
            auth_failure_rate: Rate {
                per_minute: 10,
                burst: 20,
            },
            rights: RightsSettings::default(),
            clock: Clock::system(),
        }
    }

    /// Settings from a parsed command line, checked.
    pub fn from_cli(cli: Cli) -> Result<Settings, ConfigError> {
        let transport = match (cli.plain_http, cli.tls_cert, cli.tls_key) {
            (true, _, _) => Transport::PlainHttp,
            (false, Some(cert), Some(key)) => Transport::TlsFiles { cert, key },
            _ => Transport::TlsLocalCa,
        };
        let encryption = Encryption::from_flags(
            cli.encryption_key_file,
            cli.encryption_key,
            cli.old_encryption_key_files,
            cli.generate_encryption_key,
            cli.insecure_no_encryption,
        )
        .ok_or(ConfigError::NoEncryptionKey)?;
        let admin_token = cli
            .admin_token
            .as_deref()
            .map(AdminToken::new)
            .transpose()?;
        let mut rules = cli.retention;
        if let Some(path) = &cli.retention_file {
            rules.extend(retention::read_file(path).map_err(ConfigError::Rights)?);
        }
        if cli.dsr_sla_hours == 0 || cli.retention_sweep_secs == 0 || cli.dsr_callback_attempts == 0
        {
            return Err(ConfigError::Rights(
                "--dsr-sla-hours, --retention-sweep-secs and --dsr-callback-attempts must be at least 1"
                    .to_owned(),
            ));
        }
        let rights = RightsSettings {
            processor_domain: cli.dsr_processor_domain,
            signing: cli.dsr_signing_cert.zip(cli.dsr_signing_key),
            public_url: cli
                .dsr_public_url
                .map(|u| u.trim_end_matches('/').to_owned()),
            sla: Duration::from_secs(cli.dsr_sla_hours.saturating_mul(3600)),
            callback_cas: cli.dsr_callback_cas,
            allow_loopback_http_callbacks: cli.dsr_allow_loopback_http_callbacks,
            callback_attempts: cli.dsr_callback_attempts,
            callback_backoff: Duration::from_millis(cli.dsr_callback_backoff_ms),
            retention: RetentionConfig {
                rules,
                sweep_interval: Duration::from_secs(cli.retention_sweep_secs),
            },
            hold_in_progress: cli.dsr_hold_in_progress,
            ..RightsSettings::default()
        };
        let settings = Settings {
            rights,
            transport,
            ingest_origins: OriginPolicy::new(cli.allow_origins, cli.allow_loopback_origins),
            admin_origins: OriginPolicy::new(cli.admin_origins, false),
            admin_token,
            sale_purposes: cli.sale_purposes,
            fault_injection: cli.fault_injection,
            max_body_bytes: cli.max_body_bytes,
            encryption,
            trusted_proxies: Networks::new(cli.trusted_proxies),
            admin_allow: Networks::new(cli.admin_allow_ips),
            ip_rate: Rate {
                per_minute: cli.ip_rate_per_minute,
                burst: cli.ip_burst,
            },
            key_rate: Rate {
                per_minute: cli.key_rate_per_minute,
                burst: cli.key_burst,
            },
            auth_failure_rate: Rate {
                per_minute: cli.auth_failures_per_minute,
                burst: cli.auth_failure_burst,
            },
            limits: ConnectionLimits {
                max_connections: cli.max_connections,
                max_connections_per_address: cli.max_connections_per_address,
                idle_timeout: Duration::from_secs(cli.idle_timeout_secs),
                max_age: Duration::from_secs(cli.max_connection_age_secs),
                request_timeout: Duration::from_secs(cli.request_timeout_secs),
                max_body_memory: cli.max_body_memory_bytes,
                max_body_memory_per_client: cli.max_body_memory_per_client_bytes,
                ..ConnectionLimits::default()
            },
            store: cli
                .store
                .as_deref()
                .map(|store| {
                    store_location(store, std::env::var("CONSENTRY_STORE").ok().as_deref())
                })
                .transpose()
                .map_err(ConfigError::Store)?,
            ..Settings::new(cli.listen, cli.data_dir, ApiKeys::new(cli.api_keys)?)
        };
        settings.check()?;
        Ok(settings)
    }

    /// The rules across flags: plain HTTP only on loopback; a body limit the SDK fits in.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.transport == Transport::PlainHttp && !self.listen.ip().is_loopback() {
            return Err(ConfigError::PlainHttpNotLoopback(self.listen));
        }
        if self.max_body_bytes < consentry_core::limits::MAX_BATCH_BYTES {
            return Err(ConfigError::BodyLimitTooSmall(self.max_body_bytes));
        }
        let limits = &self.limits;
        if limits.max_connections == 0 {
            return Err(ConfigError::Limit("--max-connections must be at least 1"));
        }
        if [limits.idle_timeout, limits.max_age, limits.request_timeout].contains(&Duration::ZERO) {
            return Err(ConfigError::Limit(
                "--idle-timeout-secs, --max-connection-age-secs and --request-timeout-secs must be at least 1",
            ));
        }
        if limits.max_body_memory < self.max_body_bytes {
            return Err(ConfigError::Limit(
                "--max-body-memory-bytes must be at least --max-body-bytes",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, String> {
        let cli = Cli::try_parse_from(
            ["consentry-collector", "--generate-encryption-key"]
                .into_iter()
                .chain(args.iter().copied()),
        )
        .map_err(|e| e.to_string())?;
        Settings::from_cli(cli).map_err(|e| e.to_string())
    }

    #[test]
    fn flags_become_settings() {
        let s = parse(&[
            "--api-key",
            "production=pk1",
            "--api-key",
            "staging=pk2,dev=pk3",
            "--allow-origin",
            "https://shop.example/",
            "--sale-purposes",
            "advertising,personalization",
            "--admin-token",
            "0123456789abcdef",
        ])
        .unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8444");
        assert_eq!(s.transport, Transport::TlsLocalCa);
        assert_eq!(s.api_keys.environment_of("pk3"), Some("dev"));
        assert!(s.ingest_origins.allows("https://shop.example"));
        assert!(!s.ingest_origins.allows("http://localhost:1"));
        assert_eq!(s.sale_purposes, ["advertising", "personalization"]);
        assert!(s.admin_token.is_some());
    }

    #[test]
    fn bad_combinations_are_refused_with_a_reason() {
        for (args, needle) in [
            (&["--allow-origin", "https://x.example"][..], "--api-key"),
            (&["--api-key", "nokey"], "ENV=KEY"),
            (
                &["--api-key", "a=k", "--plain-http", "--listen", "0.0.0.0:80"],
                "loopback",
            ),
            (
                &["--api-key", "a=k", "--plain-http", "--tls-cert", "c.pem"],
                "cannot be used",
            ),
            (&["--api-key", "a=k", "--tls-cert", "c.pem"], "--tls-key"),
            (
                &["--api-key", "a=k", "--allow-origin", "shop.example"],
                "not an origin",
            ),
            (
                &["--api-key", "a=k", "--sale-purposes", "Ads"],
                "purpose name",
            ),
            (
                &["--api-key", "a=k", "--admin-token", "short"],
                "at least 16",
            ),
            (&["--api-key", "a=k", "--max-body-bytes", "1000"], "below"),
            (
                &["--api-key", "a=k", "--max-connections", "0"],
                "at least 1",
            ),
            (
                &["--api-key", "a=k", "--idle-timeout-secs", "0"],
                "at least 1",
            ),
            (
                &["--api-key", "a=k", "--max-body-memory-bytes", "1000"],
                "--max-body-bytes",
            ),
        ] {
            let error = parse(args).unwrap_err();
            assert!(error.contains(needle), "{args:?}: {error}");
        }
        assert!(parse(&["--api-key", "a=k", "--plain-http", "--listen", "[::1]:0"]).is_ok());
    }

    #[test]
    fn without_a_key_the_collector_refuses_unless_told_to_store_in_clear() {
        let parse_bare = |args: &[&str]| {
            let cli = Cli::try_parse_from(
                ["consentry-collector", "--api-key", "a=k"]
                    .into_iter()
                    .chain(args.iter().copied()),
            )
            .map_err(|e| e.to_string())?;
            Settings::from_cli(cli).map_err(|e| e.to_string())
        };
        let refused = parse_bare(&[]).unwrap_err();
        assert!(refused.contains("--insecure-no-encryption"), "{refused}");
        assert_eq!(
            parse_bare(&["--insecure-no-encryption"])
                .unwrap()
                .encryption,
            Encryption::Insecure
        );
        assert_eq!(
            parse_bare(&[
                "--encryption-key-file",
                "k",
                "--old-encryption-key-file",
                "o"
            ])
            .unwrap()
            .encryption,
            Encryption::Keys {
                current: KeySource::File("k".into()),
                old: vec!["o".into()]
            }
        );
        assert!(parse_bare(&["--encryption-key-file", "k", "--insecure-no-encryption"]).is_err());
    }
}
