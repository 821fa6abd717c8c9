//! The privacy console's sessions and pages (ours: nothing in tower-http does cookie sessions
//! tied to our tokens). The console is a few static files embedded in the binary, served at
//! `/console/` over the collector's own listener with a strict Content-Security-Policy; it
//! calls the same API as every other client, through the same route table and checks.
//!
//! Sessions: `POST /console/api/session` exchanges a bearer token (in the body as
//! `{"token": "…"}`, or in `Authorization`) for a cookie `consentry_session` (`HttpOnly;
//! Secure; SameSite=Strict; Path=/console`) and a CSRF token in the answer. The session id is
//! 32 random bytes; only its SHA-256 is kept, in memory (a restart signs everyone out). A
//! session ends after [`IDLE`] without a call, [`MAX_AGE`] after sign-in (on the collector's
//! [`crate::clock::Clock`], so tests move it by hand), at `DELETE
//! /console/api/session`, or when its token is revoked: the token's hash is looked up again on
//! every call, exactly as for a bearer token. `auth::identify` accepts the cookie;
//! anything but `GET`/`HEAD` also needs the session's CSRF token in `X-Consentry-CSRF`, so the
//! cookie alone never authorises a change. Sign-in and sign-out are audit entries
//! (`console.sign_in`, `console.sign_out`) in the token's name.

use super::{ApiError, App};
use crate::audit::NewAuditEntry;
use crate::keys::constant_time_eq;
use crate::tokens::{self, Principal};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, COOKIE, REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Where the console's page reaches the read/admin API: every route of it is nested under
/// this prefix too (`/console/api/v1/users/{id}`), because the session cookie is sent to
/// `/console` paths only. The nested routes are the same handlers with the same permission,
/// auth and audit layers.
pub const API_PREFIX: &str = "/console/api";

/// The session cookie's name.
pub const COOKIE_NAME: &str = "consentry_session";

/// The header that carries a session's CSRF token on a change.
pub const CSRF_HEADER: &str = "x-consentry-csrf";

/// A session ends after this long without a call.
pub const IDLE: Duration = Duration::from_secs(30 * 60);

/// A session ends this long after sign-in, however busy.
pub const MAX_AGE: Duration = Duration::from_secs(8 * 60 * 60);

/// The most sessions held at once (expired ones are dropped first).
const MAX_SESSIONS: usize = 10_000;

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'self'";

/// One signed-in session (kept under the SHA-256 of its id).
#[derive(Clone, Debug)]
struct Session {
    /// SHA-256 of the token it was made from: looked up again on every call.
    token_hash: String,
    /// Whether that token is the configured `--admin-token`.
    configured_admin: bool,
    /// Its CSRF token.
    csrf: String,
    /// When it was made (Unix ms, on the collector's clock).
    created_ms: i64,
    /// Its last call.
    last_ms: i64,
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Session {
    fn live(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.last_ms) < ms(IDLE)
            && now_ms.saturating_sub(self.created_ms) < ms(MAX_AGE)
    }
}

/// The live sessions, by the SHA-256 of their id; in memory only.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

/// What a session cookie on a request amounts to.
#[derive(Debug)]
pub enum SessionCheck {
    /// No session cookie, or one naming no live session.
    None,
    /// A live session whose change lacks its CSRF token.
    MissingCsrf,
    /// A live session: the hash of its token, and whether that is the configured admin token.
    Token {
        /// SHA-256 of the token.
        hash: String,
        /// Whether it is the configured `--admin-token`.
        configured_admin: bool,
    },
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a session for a token at `now`; answers its id and CSRF token, or `None` when
    /// full.
    fn start(
        &self,
        token_hash: String,
        configured_admin: bool,
        now: i64,
    ) -> Option<(String, String)> {
        let id = random_token()?;
        let csrf = random_token()?;
        let mut map = self.lock();
        map.retain(|_, s| s.live(now));
        if map.len() >= MAX_SESSIONS {
            return None;
        }
        map.insert(
            tokens::hash(&id),
            Session {
                token_hash,
                configured_admin,
                csrf: csrf.clone(),
                created_ms: now,
                last_ms: now,
            },
        );
        Some((id, csrf))
    }

    /// Ends the session with this id; whether there was one.
    fn end(&self, id: &str) -> bool {
        self.lock().remove(&tokens::hash(id)).is_some()
    }

    /// The session of a request at `now` (Unix ms), checked for expiry and, unless `method`
    /// is safe, for its CSRF header; a live one's idle time starts again.
    pub fn check(&self, method: &Method, headers: &HeaderMap, now: i64) -> SessionCheck {
        let Some(id) = session_cookie(headers) else {
            return SessionCheck::None;
        };
        let mut map = self.lock();
        let key = tokens::hash(id);
        let Some(session) = map.get_mut(&key) else {
            return SessionCheck::None;
        };
        if !session.live(now) {
            map.remove(&key);
            return SessionCheck::None;
        }
        if !matches!(*method, Method::GET | Method::HEAD) {
            let given = headers
                .get(CSRF_HEADER)
                .map(HeaderValue::as_bytes)
                .unwrap_or_default();
            if !constant_time_eq(session.csrf.as_bytes(), given) {
                return SessionCheck::MissingCsrf;
            }
        }
        session.last_ms = now;
        SessionCheck::Token {
            hash: session.token_hash.clone(),
            configured_admin: session.configured_admin,
        }
    }

    /// The CSRF token of the request's live session.
    fn csrf_of(&self, headers: &HeaderMap, now: i64) -> Option<String> {
        let id = session_cookie(headers)?;
        let map = self.lock();
        map.get(&tokens::hash(id))
            .filter(|s| s.live(now))
            .map(|s| s.csrf.clone())
    }
}

/// 32 random bytes, base64url.
fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The value of the session cookie, if the request has one.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

fn cookie(value: &str, max_age: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; HttpOnly; Secure; SameSite=Strict; Path=/console; Max-Age={max_age}"
    ))
    .ok()
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn audit(
    app: &App,
    principal: &Principal,
    action: &str,
    outcome: StatusCode,
) -> Result<(), ApiError> {
    let entry = NewAuditEntry {
        at_ms: crate::clock::now_ms(),
        actor: principal.actor(),
        role: principal.role.as_str().to_owned(),
        action: action.to_owned(),
        target: "/console/api/session".to_owned(),
        outcome: outcome.as_u16().to_string(),
    };
    app.store
        .audit(entry)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::storage(&e))
}

fn session_body(principal: &Principal, csrf: &str) -> serde_json::Value {
    json!({
        "name": principal.name,
        "role": principal.role.as_str(),
        "csrf": csrf,
        "idle_seconds": IDLE.as_secs(),
        "max_seconds": MAX_AGE.as_secs(),
    })
}

/// `POST /console/api/session` with `{"token": "cst_…"}` (or `Authorization: Bearer`): 201,
/// the session cookie, and `{"name", "role", "csrf", …}`. 401 for no valid token; 403 for the
/// `dsr` role, which has no console.
pub async fn sign_in(
    State(app): State<Arc<App>>,
    client: Option<axum::Extension<super::gate::ClientIp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Sign-in checks tokens itself: the failed-authentication throttle applies here too.
    let client = client.map(|axum::Extension(ip)| ip.0);
    if let Some(wait) = client.and_then(|ip| app.auth_throttle.blocked(ip)) {
        return super::auth::throttled(&app, wait);
    }
    let from_body = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_owned));
    let token = from_body.or_else(|| super::auth::bearer(&headers).map(str::to_owned));
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return no_store(ApiError::admin_unauthorized().into_response());
    };
    let principal = match super::auth::principal_of_token(&app, &token).await {
        Ok(Some(principal)) => principal,
        Ok(None) => {
            return match client.and_then(|ip| app.auth_throttle.failed(ip)) {
                Some(wait) => super::auth::throttled(&app, wait),
                None => no_store(ApiError::admin_unauthorized().into_response()),
            }
        }
        Err(error) => return error.into_response(),
    };
    if principal.role == crate::roles::Role::Dsr {
        if let Err(error) = audit(&app, &principal, "console.sign_in", StatusCode::FORBIDDEN).await
        {
            return error.into_response();
        }
        return ApiError::new(
            StatusCode::FORBIDDEN,
            None,
            "the dsr role has no console: it opens the OpenDSR API only",
        )
        .into_response();
    }
    let configured_admin = principal.token_id.is_none();
    let Some((id, csrf)) = app.sessions.start(
        tokens::hash(&token),
        configured_admin,
        app.rights.clock.now_ms(),
    ) else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "cannot start a session now",
        )
        .into_response();
    };
    if let Err(error) = audit(&app, &principal, "console.sign_in", StatusCode::CREATED).await {
        app.sessions.end(&id);
        return error.into_response();
    }
    let mut response = (StatusCode::CREATED, Json(session_body(&principal, &csrf))).into_response();
    if let Some(value) = cookie(&id, MAX_AGE.as_secs()) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    no_store(response)
}

/// `GET /console/api/session`: who the session is and its CSRF token (so a reloaded page
/// need not sign in again); 401 without a live session. Only a same-origin page can read it.
pub async fn current(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let principal = match super::auth::identify(&app, &Method::GET, &headers).await {
        Ok(Some(principal)) if super::auth::bearer(&headers).is_none() => principal,
        Ok(_) => return no_store(ApiError::admin_unauthorized().into_response()),
        Err(error) => return error.into_response(),
    };
    match app.sessions.csrf_of(&headers, app.rights.clock.now_ms()) {
        Some(csrf) => no_store(Json(session_body(&principal, &csrf)).into_response()),
        None => no_store(ApiError::admin_unauthorized().into_response()),
    }
}

/// `DELETE /console/api/session` (with the CSRF header): ends the session at once and clears
/// the cookie. 401 without a live session, 403 without its CSRF token.
pub async fn sign_out(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let principal = match super::auth::identify(&app, &Method::DELETE, &headers).await {
        Ok(Some(principal)) if super::auth::bearer(&headers).is_none() => principal,
        Ok(_) => return no_store(ApiError::admin_unauthorized().into_response()),
        Err(error) => return error.into_response(),
    };
    if let Some(id) = session_cookie(&headers) {
        app.sessions.end(id);
    }
    if let Err(error) = audit(&app, &principal, "console.sign_out", StatusCode::OK).await {
        return error.into_response();
    }
    let mut response = Json(json!({"signed_out": true})).into_response();
    if let Some(value) = cookie("", 0) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    no_store(response)
}

/// The console's files, embedded at build time: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../console/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/app.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/pages.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/ui.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/console.css"),
    ),
];

/// The headers every console page and file carries.
fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, kind, bytes)) => secured(
            (
                [(CONTENT_TYPE, HeaderValue::from_static(kind))],
                Bytes::from_static(bytes),
            )
                .into_response(),
        ),
        None => secured(ApiError::new(StatusCode::NOT_FOUND, None, "not found").into_response()),
    }
}

/// `GET /console/`: the console's page.
pub async fn index() -> Response {
    asset("index.html")
}

/// `GET /console/{file}`: one of the console's files; 404 for any other name.
pub async fn file(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    asset(&name)
}
