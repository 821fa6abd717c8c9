//! The audit layer (ours): every call of an authenticated route is appended to the audit log
//! with who made it (token name and role), the route's action, its target and the status,
//! before the answer leaves. If the entry cannot be written the answer is 503 instead: nothing
//! is read or changed through the API without a record. Calls without a valid token (401) have
//! no actor to record; they are counted in the metrics and logged.
//!
//! A handler that changes something (a token made or revoked, data deleted) writes its entry
//! itself, in the transaction of the change, through the [`Auditor`] it is given, and marks its
//! answer [`Audited`]: the change and its record commit together or not at all.
//!
//! Targets never hold a person's id in clear: path parameters and the query parameters that
//! name a person (`anonymous_id`, `user_id`, `email`, `identity`) are written as the id's
//! keyed-hash index (`anonymous_id_index=…`), whatever the outcome.

use super::routes::Guard;
use super::{ApiError, App};
use crate::audit::NewAuditEntry;
use crate::tokens::Principal;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Query parameters whose values name a person.
const IDENTITY_PARAMETERS: [&str; 4] = ["anonymous_id", "user_id", "email", "identity"];

/// Response marker: what the call acted on, when the handler knows better than the path and
/// query (e.g. the id of a token it made).
#[derive(Clone, Debug)]
pub struct AuditTarget(pub String);

/// Response marker: the handler appended the call's audit entry with its change.
#[derive(Clone, Copy, Debug)]
pub struct Audited;

/// Given to a handler (a request extension): who calls, and what the audit log calls the
/// route, so the handler can write its entry in the transaction of its change.
#[derive(Clone, Debug)]
pub struct Auditor {
    /// Who calls.
    pub principal: Principal,
    /// The route's audit action.
    pub action: &'static str,
}

impl Auditor {
    /// The entry for this call on `target` ending with `outcome` (an HTTP status).
    pub fn entry(&self, target: impl Into<String>, outcome: u16) -> NewAuditEntry {
        entry(&self.principal, self.action, target.into(), outcome)
    }
}

fn entry(principal: &Principal, action: &str, target: String, outcome: u16) -> NewAuditEntry {
    NewAuditEntry {
        at_ms: crate::clock::now_ms(),
        actor: principal.actor(),
        role: principal.role.as_str().to_owned(),
        action: action.to_owned(),
        target,
        outcome: outcome.to_string(),
    }
}

/// The route's pattern with its parameters, and its query, ids replaced by their index.
fn default_target(app: &App, pattern: &str, params: &[(String, String)], query: &str) -> String {
    let mut out = pattern.to_owned();
    let mut extras: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}_index={}", app.store.index_of(value)))
        .collect();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if IDENTITY_PARAMETERS.contains(&&*name) {
            extras.push(format!("{name}_index={}", app.store.index_of(&value)));
        } else {
            extras.push(
                form_urlencoded::Serializer::new(String::new())
                    .append_pair(&name, &value)
                    .finish(),
            );
        }
    }
    if !extras.is_empty() {
        out.push('?');
        out.push_str(&extras.join("&"));
    }
    out
}

/// Records the call once it is answered.
pub async fn record(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let pattern = parts
        .extensions
        .get::<MatchedPath>()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let params: Vec<(String, String)> = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .map(|raw| {
            raw.iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let default_target = default_target(
        &guard.app,
        &pattern,
        &params,
        parts.uri.query().unwrap_or_default(),
    );
    let response = next.run(Request::from_parts(parts, body)).await;
    if response.extensions().get::<Audited>().is_some() {
        return response;
    }
    let Some(principal) = response.extensions().get::<Principal>() else {
        return response;
    };
    let target = response
        .extensions()
        .get::<AuditTarget>()
        .map_or(default_target, |t| t.0.clone());
    let entry = entry(principal, guard.action, target, response.status().as_u16());
    match guard.app.store.audit(entry).await {
        Ok(_) => response,
        Err(error) => ApiError::storage(&error).into_response(),
    }
}
