//! Bearer authentication and the role check of the read/admin API (ours: the roles are).
//!
//! `Authorization: Bearer <token>`: the configured `--admin-token` (compared in constant time)
//! is an `admin` unless it was revoked (`token revoke admin-token`); any other token is looked up by its SHA-256 among the live tokens in the
//! store, on every request, so a revoked token fails at once. No token or an unknown one is 401;
//! a role without the route's permission is 403. An address that keeps failing is answered 429
//! before any lookup ([`crate::auth_throttle`]). The principal travels on the request (as an
//! [`Auditor`], for handlers that audit their own changes) and on the response, for the audit
//! layer. Tokens are never logged.
//!
//! The console's session cookie stands in for the bearer token it was made from (see
//! [`super::console`]): the token's hash is looked up again on every call, so revoking the
//! token ends its sessions; a change (any method but `GET`/`HEAD`) also needs the session's
//! CSRF header, or it is 403.

use super::audit::Auditor;
use super::console::{SessionCheck, CSRF_HEADER};
use super::gate::ClientIp;
use super::routes::Guard;
use super::{ApiError, App};
use crate::tokens::{self, Principal};
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method, StatusCode};
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
    let principal = match identify(app, request.method(), request.headers()).await {
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
pub fn throttled(app: &App, wait: std::time::Duration) -> Response {
    app.metrics.rate_limited.with_label_values(&["auth"]).inc();
    ApiError::rate_limited("address", wait).into_response()
}

/// The principal of the request's bearer token or, without one, of its console session, if
/// it has a valid one. A session's change without its CSRF token is a 403.
pub async fn identify(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    if let Some(token) = bearer(headers) {
        return principal_of_token(app, token).await;
    }
    match app
        .sessions
        .check(method, headers, app.rights.clock.now_ms())
    {
        SessionCheck::None => Ok(None),
        SessionCheck::MissingCsrf => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            None,
            format!("a console change needs its session's {CSRF_HEADER} header"),
        )),
        SessionCheck::Token {
            hash,
            configured_admin,
        } => principal_of_hash(app, hash, configured_admin).await,
    }
}

/// The principal of a presented token, if it is valid and not revoked.
pub async fn principal_of_token(app: &App, token: &str) -> Result<Option<Principal>, ApiError> {
    if app.admin_token.matches(token) {
        return principal_of_hash(app, tokens::hash(token), true).await;
    }
    if !token.starts_with(tokens::TOKEN_PREFIX) {
        return Ok(None);
    }
    principal_of_hash(app, tokens::hash(token), false).await
}

/// The principal of the token whose SHA-256 is `hash`, looked up now.
async fn principal_of_hash(
    app: &App,
    hash: String,
    configured_admin: bool,
) -> Result<Option<Principal>, ApiError> {
    if configured_admin {
        if tokens::hash(app.admin_token.expose()) != hash {
            return Ok(None);
        }
        let revoked = app
            .store
            .is_revoked(hash)
            .await
            .map_err(|e| ApiError::storage(&e))?;
        return Ok((!revoked).then(Principal::configured_admin));
    }
    app.store
        .find_token(hash)
        .await
        .map_err(|e| ApiError::storage(&e))
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
