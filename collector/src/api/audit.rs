//! The audit layer (ours): every call of an authenticated route is appended to the audit log
//! with who made it (token name and role), the route's action, its target and the status,
//! before the answer leaves. If the entry cannot be written the answer is 503 instead: nothing
//! is read or changed through the API without a record. Calls without a valid token (401) have
//! no actor to record; they are counted in the metrics and logged.

use super::routes::Guard;
use super::ApiError;
use crate::audit::NewAuditEntry;
use crate::tokens::Principal;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Response marker: what the call acted on, when the handler knows better than the path and
/// query (e.g. the id of a token it made).
#[derive(Clone, Debug)]
pub struct AuditTarget(pub String);

/// Records the call once it is answered.
pub async fn record(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let uri = request.uri();
    let default_target = match uri.query() {
        Some(query) => format!("{}?{query}", uri.path()),
        None => uri.path().to_owned(),
    };
    let response = next.run(request).await;
    let Some(principal) = response.extensions().get::<Principal>() else {
        return response;
    };
    let target = response
        .extensions()
        .get::<AuditTarget>()
        .map_or(default_target, |t| t.0.clone());
    let entry = NewAuditEntry {
        at_ms: crate::clock::now_ms(),
        actor: principal.name.clone(),
        role: principal.role.as_str().to_owned(),
        action: guard.action.to_owned(),
        target,
        outcome: response.status().as_u16().to_string(),
    };
    match guard.app.store.audit(entry).await {
        Ok(_) => response,
        Err(error) => ApiError::storage(&error).into_response(),
    }
}
