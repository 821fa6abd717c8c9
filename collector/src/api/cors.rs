//! CORS, separately for ingestion (`--allow-origin`, `--allow-loopback-origins`) and for the
//! read/admin API (`--admin-origin`): tower-http's `CorsLayer` grants, behind a gate of ours.
//!
//! A request without `Origin` (servers, curl) passes untouched. A request from an allowed
//! origin gets `Access-Control-Allow-Origin: <origin>`, `Vary: Origin` and, so the SDK can
//! honour it, `Access-Control-Expose-Headers: Retry-After`; its preflight is answered by the
//! layer. The gate is ours because `CorsLayer` never refuses a request, it only leaves out the
//! grant: a request or preflight from any other origin is answered 403 with no grant before the
//! body is read or anything stored, so a misconfigured site sees a clear error instead of events
//! stored from an unknown page.

use super::{ApiError, App};
use crate::origin::OriginPolicy;
use axum::extract::{Request, State};
use axum::http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HOST, ORIGIN, RETRY_AFTER,
};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

fn layer(policy: &OriginPolicy) -> CorsLayer {
    let policy = policy.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| policy.allows(o))
        }))
        .expose_headers([RETRY_AFTER])
        .max_age(PREFLIGHT_MAX_AGE)
        .vary([ORIGIN])
}

/// The grant for `POST /v1/batch`: what `fetch` and `sendBeacon` may send.
pub fn ingest_layer(policy: &OriginPolicy) -> CorsLayer {
    layer(policy)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([CONTENT_TYPE, CONTENT_ENCODING])
}

/// The grant for the read/admin API.
pub fn admin_layer(policy: &OriginPolicy) -> CorsLayer {
    layer(policy)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([AUTHORIZATION, CONTENT_TYPE])
}

/// Refuses an ingestion request from an origin `--allow-origin` does not allow.
pub async fn ingest_gate(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    gate(&app.ingest_origins, request, next).await
}

/// Refuses an admin request from an origin `--admin-origin` does not allow. A same-origin
/// request (its `Origin` is this server, as `Host` names it: the console's own page) needs no
/// grant and passes.
pub async fn admin_gate(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if same_origin(&request) {
        return next.run(request).await;
    }
    gate(&app.admin_origins, request, next).await
}

/// Whether `Origin` names the host the request was sent to (`Host` in HTTP/1.1, the
/// `:authority` in HTTP/2).
fn same_origin(request: &Request) -> bool {
    let headers = request.headers();
    let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

async fn gate(policy: &OriginPolicy, request: Request, next: Next) -> Response {
    let allowed = match request.headers().get(ORIGIN) {
        None => true,
        Some(origin) => origin.to_str().is_ok_and(|o| policy.allows(o)),
    };
    if allowed {
        next.run(request).await
    } else {
        ApiError::forbidden_origin().into_response()
    }
}
