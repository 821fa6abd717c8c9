//! CORS, separately for ingestion (`--allow-origin`, `--allow-loopback-origins`) and for the
//! read/admin API (`--admin-origin`).
//!
//! A request without `Origin` (servers, curl) passes untouched. A request from an allowed
//! origin gets `Access-Control-Allow-Origin: <origin>`, `Vary: Origin` and, so the SDK can
//! honour it, `Access-Control-Expose-Headers: Retry-After`; its preflight is answered here. A
//! request or preflight from any other origin is refused with 403 and no grant.
//!
//! Kept by hand rather than tower-http's `CorsLayer` (a contract reason, not a measured one):
//! `CorsLayer` never refuses a request, it only leaves out the grant, while this collector
//! answers 403 to a disallowed origin before reading the body or storing anything, so a
//! misconfigured site sees a clear error instead of events stored from an unknown page.

use super::{ApiError, App};
use crate::origin::OriginPolicy;
use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

struct Preflight {
    methods: &'static str,
    headers: &'static str,
}

const INGEST: Preflight = Preflight {
    methods: "POST, OPTIONS",
    headers: "content-type, content-encoding",
};

const ADMIN: Preflight = Preflight {
    methods: "GET, POST, DELETE, OPTIONS",
    headers: "authorization, content-type",
};

/// CORS for `POST /v1/batch`.
pub async fn ingest(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    apply(&app.ingest_origins, &INGEST, request, next).await
}

/// CORS for the read/admin API.
pub async fn admin(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    apply(&app.admin_origins, &ADMIN, request, next).await
}

async fn apply(
    policy: &OriginPolicy,
    preflight: &Preflight,
    request: Request,
    next: Next,
) -> Response {
    let Some(origin) = request.headers().get(ORIGIN).cloned() else {
        let mut response = next.run(request).await;
        response
            .headers_mut()
            .append(VARY, HeaderValue::from_static("Origin"));
        return response;
    };
    let allowed = origin.to_str().is_ok_and(|o| policy.allows(o));
    if !allowed {
        return ApiError::forbidden_origin().into_response();
    }
    if request.method() == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        grant(headers, origin);
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(preflight.methods),
        );
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(preflight.headers),
        );
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        return response;
    }
    let mut response = next.run(request).await;
    grant(response.headers_mut(), origin);
    response
}

fn grant(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Retry-After"),
    );
}
