//! The network gates (ours: they use the collector's own notion of the client address): the
//! client address put on every request, the admin address allowlist, and the per-address rate
//! limit of ingestion (the per-key limit is checked in the handler, once the key is known).

use super::{ApiError, App, PeerAddr};
use crate::network::client_ip;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// The client's address as decided by [`client_ip`]; never stored, never logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Puts the [`ClientIp`] on the request.
pub async fn client(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    if let Some(PeerAddr(peer)) = request.extensions().get::<PeerAddr>().copied() {
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let ip = client_ip(peer.ip(), forwarded, &app.trusted_proxies);
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}

/// 403 unless the client is inside `--admin-allow-ip` (when any is given).
pub async fn admin_allowlist(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    if app.admin_allow.is_empty() {
        return next.run(request).await;
    }
    match request.extensions().get::<ClientIp>() {
        Some(ClientIp(ip)) if app.admin_allow.contains(*ip) => next.run(request).await,
        _ => ApiError::address_not_allowed().into_response(),
    }
}

/// 429 with `Retry-After` when the client address has used its bucket.
pub async fn ip_rate(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if let Some(ClientIp(ip)) = request.extensions().get::<ClientIp>() {
        if let Err(wait) = app.ip_limiter.check(ip) {
            app.metrics
                .rate_limited
                .with_label_values(&["address"])
                .inc();
            return ApiError::rate_limited("address", wait).into_response();
        }
    }
    next.run(request).await
}
