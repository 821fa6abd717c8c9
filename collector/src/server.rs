//! The server: data directory, credentials, TLS, database, the accept loop, and graceful
//! shutdown.
//!
//! Each connection runs on its own task (TLS handshake with a deadline, then HTTP/1.1 or HTTP/2
//! by ALPN). Shutdown stops accepting, asks every connection to finish its in-flight requests
//! (bounded by [`Settings::shutdown_grace`]), then closes the database (WAL checkpoint).

use crate::api::routes::RouteInfo;
use crate::api::{self, App};
use crate::audit::{NewAuditEntry, SYSTEM_ACTOR};
use crate::body_budget::BodyBudget;
use crate::config::{ConfigError, Settings, Transport};
use crate::connection::{self, Shared};
use crate::consent_check::SalePurposes;
use crate::crypto;
use crate::faults::FaultQueue;
use crate::keys::{load_or_create_admin_token, AdminTokenSource};
use crate::metrics::Metrics;
use crate::network::Limiter;
use crate::peers::PeerCounts;
use crate::rights::signing::Signer;
use crate::rights::{callbacks, fulfil, retention, Rights};
use crate::store::{Codec, Location, Store, StoreCloser, StoreError};
use crate::tls::{self, LocalCa, TlsError};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Why the server did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The settings break a rule.
    Config(ConfigError),
    /// The data directory or admin token file.
    DataDir(PathBuf, io::Error),
    /// Certificates.
    Tls(TlsError),
    /// The database.
    Store(StoreError),
    /// The listen address.
    Bind(SocketAddr, io::Error),
    /// The encryption key.
    Encryption(String),
    /// The metrics registry.
    Metrics(String),
    /// The OpenDSR signing key or the callbacks' TLS roots.
    Rights(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => e.fmt(f),
            StartError::DataDir(path, e) => write!(f, "data directory {}: {e}", path.display()),
            StartError::Tls(e) => e.fmt(f),
            StartError::Store(e) => write!(f, "database: {e}"),
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            StartError::Encryption(e) => write!(f, "encryption key: {e}"),
            StartError::Metrics(e) => write!(f, "metrics: {e}"),
            StartError::Rights(e) => write!(f, "data-subject requests: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A failure while stopping.
#[derive(Debug)]
#[non_exhaustive]
pub enum StopError {
    /// Closing the database failed.
    Store(StoreError),
    /// The server task failed.
    Task(String),
}

impl fmt::Display for StopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopError::Store(e) => write!(f, "closing the database: {e}"),
            StopError::Task(e) => write!(f, "server task: {e}"),
        }
    }
}

impl std::error::Error for StopError {}

/// A started server: where it listens and what to tell the operator.
#[derive(Debug)]
pub struct Running {
    /// The bound address (the real port when asked for port 0).
    pub local_addr: SocketAddr,
    /// `https://host:port` (or `http://` with plain HTTP).
    pub url: String,
    /// The leaf certificate's SPKI pin, with TLS.
    pub spki_pin: Option<String>,
    /// Whether the local CA was created or reused, when it is used.
    pub local_ca: Option<LocalCa>,
    /// The local CA certificate to trust, when it is used.
    pub ca_path: Option<PathBuf>,
    /// Where the admin token came from.
    pub admin_token_source: AdminTokenSource,
    /// The environments API keys write to.
    pub environments: Vec<String>,
    /// Every route it serves, with who may call it.
    pub routes: Vec<RouteInfo>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), StopError>>,
}

impl Running {
    /// Stops accepting, drains in-flight requests (bounded), closes the database.
    pub async fn shutdown(self) -> Result<(), StopError> {
        let _ = self.shutdown.send(());
        self.task
            .await
            .map_err(|e| StopError::Task(e.to_string()))?
    }
}

/// Starts the server described by `settings` and returns once it is listening.
pub async fn start(settings: Settings) -> Result<Running, StartError> {
    settings.check().map_err(StartError::Config)?;
    let dir = settings.data_dir.clone();
    create_data_dir(&dir).map_err(|e| StartError::DataDir(dir.clone(), e))?;
    let (admin_token, admin_token_source) = match settings.admin_token.clone() {
        Some(token) => (token, AdminTokenSource::Given),
        None => {
            load_or_create_admin_token(&dir).map_err(|e| StartError::DataDir(dir.clone(), e))?
        }
    };
    let tls = match &settings.transport {
        Transport::TlsFiles { cert, key } => Some(tls::from_files(cert, key)),
        Transport::TlsLocalCa => Some(tls::local(&dir)),
        Transport::PlainHttp => None,
    }
    .transpose()
    .map_err(StartError::Tls)?;

    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| StartError::Bind(settings.listen, e))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind(settings.listen, e))?;
    let codec = match crypto::keyring_for(&settings.encryption, &dir) {
        Ok(Some(keyring)) => {
            keyring.current().set_limit(settings.seal_limit);
            Codec::encrypted(keyring)
        }
        Ok(None) => {
            tracing::warn!("--insecure-no-encryption: personal data is stored in clear");
            Codec::plain()
        }
        Err(e) => return Err(StartError::Encryption(e)),
    };
    let metrics = Metrics::new().map_err(|e| StartError::Metrics(e.to_string()))?;
    let location = settings.store_location();
    let (store, closer) = Store::open(
        location.clone(),
        codec,
        metrics.store_commit_seconds.clone(),
    )
    .await
    .map_err(StartError::Store)?;
    if let Location::Sqlite(path) = &location {
        restrict_database_files(path).map_err(|e| StartError::DataDir(dir.clone(), e))?;
    }
    store
        .audit(system_entry("collector.start"))
        .await
        .map_err(StartError::Store)?;
    if store
        .is_revoked(crate::tokens::hash(admin_token.expose()))
        .await
        .map_err(StartError::Store)?
    {
        tracing::warn!("the admin token was revoked: it opens nothing; give a new --admin-token");
    }

    let scheme = if tls.is_some() { "https" } else { "http" };
    let rights = &settings.rights;
    let signer = Signer::load(&dir, rights.signing.as_ref(), &rights.processor_domain)
        .map_err(StartError::Rights)?;
    let callback_tls = callbacks::tls_config(&rights.callback_cas).map_err(StartError::Rights)?;
    let rights = Arc::new(Rights {
        public_url: rights
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{local_addr}")),
        settings: settings.rights.clone(),
        signer,
        exports_dir: dir.join("exports"),
        clock: settings.clock.clone(),
        work: Notify::new(),
        callbacks: Notify::new(),
        tls: Arc::new(callback_tls),
    });
    let (stopping, stopping_rx) = watch::channel(false);
    let environments = settings
        .api_keys
        .environments()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let app = Arc::new(App {
        store: store.clone(),
        api_keys: settings.api_keys,
        admin_token,
        ingest_origins: settings.ingest_origins,
        admin_origins: settings.admin_origins,
        sale_purposes: SalePurposes::new(settings.sale_purposes),
        faults: settings.fault_injection.then(FaultQueue::default),
        max_body_bytes: settings.max_body_bytes,
        body_budget: BodyBudget::new(
            settings.limits.max_body_memory,
            settings
                .limits
                .body_memory_per_client(settings.max_body_bytes),
        ),
        request_timeout: settings.limits.request_timeout,
        body_idle_timeout: settings.limits.body_idle_timeout,
        trusted_proxies: settings.trusted_proxies.clone(),
        admin_allow: settings.admin_allow,
        ip_limiter: Limiter::new(settings.ip_rate),
        key_limiter: Limiter::new(settings.key_rate),
        auth_throttle: crate::auth_throttle::AuthThrottle::new(settings.auth_failure_rate),
        metrics: metrics.clone(),
        stopping: stopping_rx.clone(),
        rights,
        sessions: api::console::Sessions::default(),
    });
    tokio::spawn(forget_idle_buckets(Arc::clone(&app)));
    if app.rights.settings.worker {
        tokio::spawn(fulfil::run(Arc::clone(&app)));
    }
    tokio::spawn(callbacks::run(Arc::clone(&app)));
    tokio::spawn(retention::run(Arc::clone(&app)));
    let (shutdown, shutdown_rx) = oneshot::channel();
    let acceptor = tls
        .as_ref()
        .map(|t| TlsAcceptor::from(Arc::clone(&t.server_config)));
    let (router, routes) = api::router(Arc::clone(&app));
    let mut limits = settings.limits.clone();
    limits.max_connections = connection::connection_capacity(limits.max_connections);
    let peers = PeerCounts::new(limits.max_connections_per_address, settings.trusted_proxies);
    let shared = Shared {
        router,
        tls: acceptor,
        limits,
        stopping: stopping_rx,
        metrics,
    };
    let task = tokio::spawn(serve(
        listener,
        (shared, peers),
        shutdown_rx,
        settings.shutdown_grace,
        stopping,
        (store, closer),
    ));
    tracing::info!(address = %local_addr, scheme, "listening");
    Ok(Running {
        local_addr,
        url: format!("{scheme}://{local_addr}"),
        spki_pin: tls.as_ref().map(|t| t.spki_pin.clone()),
        local_ca: tls.as_ref().and_then(|t| t.local_ca.clone()),
        ca_path: tls.and_then(|t| t.ca_path),
        admin_token_source,
        environments,
        routes,
        shutdown,
        task,
    })
}

/// Creates the data directory, readable only by its owner when we create it.
fn create_data_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if std::fs::metadata(dir)?.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %dir.display(),
                    "the data directory is open to other users: chmod 700 it"
                );
            }
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

async fn serve(
    listener: TcpListener,
    (shared, peers): (Shared, Arc<PeerCounts>),
    mut shutdown: oneshot::Receiver<()>,
    grace: Duration,
    stopping: watch::Sender<bool>,
    (store, closer): (Store, StoreCloser),
) -> Result<(), StopError> {
    let capacity = shared.limits.max_connections;
    let permits = Arc::new(Semaphore::new(capacity));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    // Counted, and logged only at debug: a flood must not flood the log too.
                    tracing::debug!(capacity, "connection refused: too many open");
                    shared.metrics.connections_refused.with_label_values(&["total"]).inc();
                    drop(tcp);
                    continue;
                };
                let Some(slot) = peers.take(peer.ip()) else {
                    tracing::debug!("connection refused: too many open from one address");
                    shared.metrics.connections_refused.with_label_values(&["address"]).inc();
                    drop(tcp);
                    continue;
                };
                tokio::spawn(connection::serve(tcp, peer, shared.clone(), (permit, slot)));
            }
        }
    }
    drop(listener);
    let open = capacity - permits.available_permits();
    tracing::info!(
        connections = open,
        "shutting down: stopped accepting, draining in-flight requests"
    );
    let _ = stopping.send(true);
    let all = u32::try_from(capacity).unwrap_or(u32::MAX);
    match tokio::time::timeout(grace, permits.acquire_many(all)).await {
        Ok(_) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "drain timed out; abandoning the remaining connections"
        ),
    }
    if let Err(e) = store.audit(system_entry("collector.stop")).await {
        tracing::error!(error = %e, "cannot record the stop in the audit log");
    }
    closer.close().await.map_err(StopError::Store)
}

/// Every minute, drops the rate-limit buckets of clients that have not been seen for a while.
async fn forget_idle_buckets(app: Arc<App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        if Arc::strong_count(&app) == 1 {
            return;
        }
        app.ip_limiter.forget_idle();
        app.key_limiter.forget_idle();
        app.auth_throttle.forget_idle();
    }
}

/// Makes the database and its WAL and shared-memory files readable by their owner only (SQLite
/// creates them under the process's umask; the WAL and shm files it makes later copy the
/// database file's mode).
fn restrict_database_files(database: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut path = database.as_os_str().to_owned();
            path.push(suffix);
            match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = database;
    Ok(())
}

/// An audit entry for what the collector does by itself.
fn system_entry(action: &str) -> NewAuditEntry {
    NewAuditEntry {
        at_ms: crate::clock::now_ms(),
        actor: SYSTEM_ACTOR.to_owned(),
        role: SYSTEM_ACTOR.to_owned(),
        action: action.to_owned(),
        target: env!("CARGO_PKG_VERSION").to_owned(),
        outcome: "ok".to_owned(),
    }
}
