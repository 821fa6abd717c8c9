//! One connection's life: the cap on how many are open, the TLS handshake deadline, the protocol
//! chosen from ALPN (never by reading first bytes without a deadline), and a watchdog that closes
//! what a hostile or forgotten client leaves open.
//!
//! - **Protocol:** `h2` when TLS negotiated it, HTTP/1.1 otherwise (plain HTTP is HTTP/1.1 only).
//!   hyper-util's auto-detection reads the first bytes with no deadline; hyper's own HTTP/1
//!   header timeout starts as soon as the connection is served, so a client that completes the
//!   handshake and sends nothing is closed after [`ConnectionLimits::header_timeout`].
//! - **Cap:** at most [`ConnectionLimits::max_connections`] at once (also bounded by the
//!   descriptor limit, raised at start), and [`ConnectionLimits::max_connections_per_address`]
//!   from one address ([`crate::peers`]); one more is closed on accept and counted.
//! - **Watchdog:** a connection with no request in flight for
//!   [`ConnectionLimits::idle_timeout`] (HTTP/2 has no idle timeout of its own), or older than
//!   [`ConnectionLimits::max_age`], is asked to close gracefully (GOAWAY on HTTP/2), and dropped
//!   if it has not closed [`ConnectionLimits::request_timeout`] later (an idle one
//!   [`ConnectionLimits::header_timeout`] later). HTTP/2 keep-alive pings
//!   find peers that vanished.

use crate::api::{DropConnection, PeerAddr};
use crate::metrics::Metrics;
use crate::peers::PeerSlot;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Descriptors kept free of connections: the database, its WAL, certificates, logs.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// How long connections may take and how many there may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections one client address (an IPv6 /64) may hold at once; 0 for no cap. Trusted
    /// proxies are exempt.
    pub max_connections_per_address: usize,
    /// To finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// To send a request's headers (HTTP/1.1), from the moment the connection is served or the
    /// previous response was sent.
    pub header_timeout: Duration,
    /// With no request in flight before the connection is closed.
    pub idle_timeout: Duration,
    /// The oldest a connection gets before it is closed gracefully.
    pub max_age: Duration,
    /// The whole of one request, body included (408 after it), and the grace a closing
    /// connection gets.
    pub request_timeout: Duration,
    /// Bytes of request bodies held in memory at once, across all requests.
    pub max_body_memory: usize,
    /// Of which one client address may hold this much (`None`: an eighth, and at least two
    /// bodies of the largest size).
    pub max_body_memory_per_client: Option<usize>,
    /// The longest wait for the next piece of a request body (408 after it).
    pub body_idle_timeout: Duration,
}

impl ConnectionLimits {
    /// What one client address may hold of the body memory, given the largest body.
    pub fn body_memory_per_client(&self, max_body_bytes: usize) -> usize {
        self.max_body_memory_per_client
            .unwrap_or_else(|| (self.max_body_memory / 8).max(max_body_bytes.saturating_mul(2)))
            .min(self.max_body_memory)
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            max_connections_per_address: 256,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_age: Duration::from_secs(3600),
            request_timeout: Duration::from_secs(15),
            max_body_memory: 64 * 1024 * 1024,
            max_body_memory_per_client: None,
            body_idle_timeout: Duration::from_secs(5),
        }
    }
}

/// Raises the soft descriptor limit to the hard one and returns how many connections fit
/// under it (`wanted` at most).
pub fn connection_capacity(wanted: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the descriptor limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let fits = usize::try_from(limit.saturating_sub(RESERVED_DESCRIPTORS)).unwrap_or(usize::MAX);
    let capacity = wanted.min(fits).max(1);
    if capacity < wanted {
        tracing::warn!(
            descriptors = limit,
            capacity,
            "the descriptor limit allows fewer connections than --max-connections"
        );
    }
    capacity
}

/// What every connection shares.
#[derive(Clone)]
pub struct Shared {
    /// The API.
    pub router: Router,
    /// TLS, unless plain HTTP.
    pub tls: Option<TlsAcceptor>,
    /// Timeouts and caps.
    pub limits: ConnectionLimits,
    /// Becomes `true` when the server shuts down.
    pub stopping: watch::Receiver<bool>,
    /// Connection counts.
    pub metrics: Metrics,
}

/// Serves one accepted connection until it closes; `places` are its places under the global
/// cap and its address's.
pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Shared,
    places: (OwnedSemaphorePermit, PeerSlot),
) {
    let _places = places;
    shared.metrics.connections_open.inc();
    let _open = OpenConnection(shared.metrics.connections_open.clone());
    let _ = tcp.set_nodelay(true);
    match &shared.tls {
        None => drive(TokioIo::new(tcp), false, peer, &shared).await,
        Some(acceptor) => {
            let handshake = acceptor.accept(tcp);
            match tokio::time::timeout(shared.limits.handshake_timeout, handshake).await {
                Ok(Ok(stream)) => {
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                    drive(TokioIo::new(stream), h2, peer, &shared).await;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

fn builder(h2: bool, limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10))
        .max_concurrent_streams(100);
    if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    }
}

async fn drive<I>(io: TokioIo<I>, h2: bool, peer: SocketAddr, shared: &Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = ConnectionService {
        router: shared.router.clone(),
        activity: Arc::clone(&activity),
        peer,
    };
    let builder = builder(h2, &shared.limits);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let limits = &shared.limits;
    let born = Instant::now();
    let mut stopping = shared.stopping.clone();
    let mut drop_at: Option<Instant> = None;
    loop {
        let deadline = drop_at.unwrap_or_else(|| {
            activity
                .idle_deadline(limits.idle_timeout)
                .min(born + limits.max_age)
        });
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection closed with an error");
                }
                return;
            }
            _ = stopping.changed(), if drop_at.is_none() => {
                connection.as_mut().graceful_shutdown();
                drop_at = Some(Instant::now() + limits.request_timeout);
            }
            _ = tokio::time::sleep_until(deadline) => {
                if drop_at.is_some() {
                    tracing::debug!("connection did not close in time; dropped");
                    return;
                }
                let reason = if Instant::now() >= born + limits.max_age { "max_age" } else { "idle" };
                if reason == "max_age" || activity.is_idle(limits.idle_timeout) {
                    tracing::debug!(reason, "closing the connection");
                    connection.as_mut().graceful_shutdown();
                    // An idle connection has nothing to finish (an HTTP/2 client that never
                    // sent its preface does not answer the GOAWAY either).
                    let grace = if activity.is_idle(Duration::ZERO) {
                        limits.header_timeout
                    } else {
                        limits.request_timeout
                    };
                    drop_at = Some(Instant::now() + grace);
                }
            }
        }
    }
}

/// Requests in flight on one connection, and when that last changed.
struct Activity {
    in_flight: AtomicUsize,
    changed: Mutex<Instant>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            changed: Mutex::new(Instant::now()),
        }
    }

    fn touch(&self) {
        *self.changed.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.touch();
    }

    fn finish(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.touch();
    }

    /// When the connection will have been idle for `idle` (later than now while busy).
    fn idle_deadline(&self, idle: Duration) -> Instant {
        let changed = *self.changed.lock().unwrap_or_else(PoisonError::into_inner);
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            Instant::now() + idle
        } else {
            changed + idle
        }
    }

    fn is_idle(&self, idle: Duration) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
            && self
                .changed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .elapsed()
                >= idle
    }
}

/// Counts the connection as closed when dropped.
struct OpenConnection(prometheus::IntGauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Ends a request's activity when dropped (answered, failed or cancelled).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// The connection was closed on purpose (the `drop` fault).
#[derive(Debug)]
struct Dropped;

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

/// The router as a hyper service: adds the peer's address to each request and tracks
/// activity. A response marked [`DropConnection`] becomes a service error, on which hyper closes
/// the connection (HTTP/1.1) or resets the stream (HTTP/2) without writing anything.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    activity: Arc<Activity>,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Dropped;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Dropped>> + Send>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let router = self.router.clone();
        self.activity.start();
        let in_flight = InFlight(Arc::clone(&self.activity));
        request.extensions_mut().insert(PeerAddr(self.peer));
        Box::pin(async move {
            let _in_flight = in_flight;
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.extensions().get::<DropConnection>().is_some() {
                Err(Dropped)
            } else {
                Ok(response)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_limit_is_raised_and_bounds_the_connections() {
        let capacity = connection_capacity(usize::MAX);
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(soft, hard, "raised to the hard limit");
        assert_eq!(capacity as u64, soft - RESERVED_DESCRIPTORS);
        assert_eq!(connection_capacity(4), 4);
    }

    #[test]
    fn a_connection_is_idle_only_with_nothing_in_flight() {
        let activity = Activity::new();
        assert!(activity.is_idle(Duration::ZERO));
        activity.start();
        assert!(!activity.is_idle(Duration::ZERO));
        assert!(activity.idle_deadline(Duration::from_secs(5)) > Instant::now());
        activity.finish();
        assert!(activity.is_idle(Duration::ZERO));
    }
}
