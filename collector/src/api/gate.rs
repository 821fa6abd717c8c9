//! The network gates (ours: they use the collector's own notion of the client address): the
//! client address put on every request, the admin address allowlist, and the per-address rate
//! limit of ingestion (the per-key limit is checked in the handler, once the key is known).

use super::{ApiError, App, PeerAddr};
use crate::network::{address_key, client_ip, ClientAddress};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// The client's address as decided by [`client_ip`], for limits; never stored, never logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Whether [`ClientIp`] is known to be the client's (see [`ClientAddress::vouched`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Vouched(bool);

/// Puts the [`ClientIp`] on the request.
pub async fn client(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    if let Some(PeerAddr(peer)) = request.extensions().get::<PeerAddr>().copied() {
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().ok());
        let ClientAddress { ip, vouched } = client_ip(peer.ip(), forwarded, &app.trusted_proxies);
        request.extensions_mut().insert(ClientIp(ip));
        request.extensions_mut().insert(Vouched(vouched));
    }
    next.run(request).await
}

/// 403 unless the client is inside `--admin-allow-ip` (when any is given) and its address is
/// vouched for.
pub async fn admin_allowlist(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    if app.admin_allow.is_empty() {
        return next.run(request).await;
    }
    let vouched = request.extensions().get::<Vouched>().is_some_and(|v| v.0);
    match request.extensions().get::<ClientIp>() {
        Some(ClientIp(ip)) if vouched && app.admin_allow.contains(*ip) => next.run(request).await,
        _ => ApiError::address_not_allowed().into_response(),
    }
}

/// 429 with `Retry-After` when the client address has used its bucket.
pub async fn ip_rate(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if let Some(ClientIp(ip)) = request.extensions().get::<ClientIp>() {
        if let Err(wait) = app.ip_limiter.check(&address_key(*ip)) {
            app.metrics
                .rate_limited
                .with_label_values(&["address"])
                .inc();
            return ApiError::rate_limited("address", wait).into_response();
        }
    }
    next.run(request).await
}
