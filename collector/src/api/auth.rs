//! The read/admin API's bearer token check.

use super::{ApiError, App};
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Lets the request through only with `Authorization: Bearer <admin token>`.
pub async fn require_admin(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match presented {
        Some(token) if app.admin_token.matches(token) => next.run(request).await,
        _ => ApiError::admin_unauthorized().into_response(),
    }
}
