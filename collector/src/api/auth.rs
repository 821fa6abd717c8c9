//! Bearer authentication and the role check of the read/admin API (ours: the roles are).
//!
//! `Authorization: Bearer <token>`: the configured `--admin-token` (compared in constant time)
//! is an `admin` unless it was revoked (`token revoke admin-token`); any other token is looked up by its SHA-256 among the live tokens in the
//! store, on every request, so a revoked token fails at once. No token or an unknown one is 401;
//! a role without the route's permission is 403. An address that keeps failing is answered 429
//! before any lookup ([`crate::auth_throttle`]). The principal travels on the request (as an
//! [`Auditor`], for handlers that audit their own changes) and on the response, for the audit
//! layer. Tokens are never logged.

use super::audit::Auditor;
use super::gate::ClientIp;
use super::routes::Guard;
use super::{ApiError, App};
use crate::tokens::{self, Principal};
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Lets the request through only with a token whose role has the route's permission.
pub async fn authorize(
    State(guard): State<Arc<Guard>>,
    mut request: Request,
    next: Next,
) -> Response {
    let app = &guard.app;
    let client = request.extensions().get::<ClientIp>().map(|c| c.0);
    if let Some(wait) = client.and_then(|ip| app.auth_throttle.blocked(ip)) {
        return throttled(app, wait);
    }
    let principal = match identify(app, request.headers()).await {
        Ok(Some(principal)) => principal,
        Ok(None) => {
            return match client.and_then(|ip| app.auth_throttle.failed(ip)) {
                Some(wait) => throttled(app, wait),
                None => ApiError::admin_unauthorized().into_response(),
            }
        }
        Err(error) => return error.into_response(),
    };
    if !principal.role.allows(guard.permission) {
        let mut response = ApiError::new(
            StatusCode::FORBIDDEN,
            None,
            format!("the {} role may not do this", principal.role),
        )
        .into_response();
        response.extensions_mut().insert(principal);
        return response;
    }
    request.extensions_mut().insert(Auditor {
        principal: principal.clone(),
        action: guard.action,
    });
    // Handlers that act for someone (an OpenDSR controller) read it off the request.
    request.extensions_mut().insert(principal.clone());
    let mut response = next.run(request).await;
    response.extensions_mut().insert(principal);
    response
}

/// 429 for an address over its failed-authentication allowance ([`crate::auth_throttle`]).
fn throttled(app: &App, wait: std::time::Duration) -> Response {
    app.metrics.rate_limited.with_label_values(&["auth"]).inc();
    ApiError::rate_limited("address", wait).into_response()
}

/// The principal of the request's bearer token, if it has a valid one.
pub async fn identify(app: &App, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    let Some(token) = bearer(headers) else {
        return Ok(None);
    };
    if app.admin_token.matches(token) {
        let revoked = app
            .store
            .is_revoked(tokens::hash(token))
            .await
            .map_err(|e| ApiError::storage(&e))?;
        return Ok((!revoked).then(Principal::configured_admin));
    }
    if !token.starts_with(tokens::TOKEN_PREFIX) {
        return Ok(None);
    }
    app.store
        .find_token(tokens::hash(token))
        .await
        .map_err(|e| ApiError::storage(&e))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
