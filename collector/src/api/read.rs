//! The read API: stored events page by page, counters, and the audit log page by page.

use super::audit::Auditor;
use super::{ApiError, App};
use crate::audit::AuditEntry;
use crate::roles::Permission;
use crate::store::Stats;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use std::sync::Arc;

/// The most entries one page holds.
pub const MAX_PAGE: u32 = 1000;

/// The page size when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 100;

/// `since` (default 0) and `limit` (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]) from a
/// query; other parameters are ignored.
pub(super) fn page(query: Option<&str>) -> Result<(i64, u32), ApiError> {
    let mut since = 0i64;
    let mut limit = DEFAULT_PAGE;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*name {
            "since" => {
                since = value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| ApiError::bad_field("since", "must be a whole number"))?;
            }
            "limit" => {
                limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_field("limit", format!("must be from 1 to {MAX_PAGE}"))
                    })?;
            }
            _ => {}
        }
    }
    Ok((since, limit))
}

/// `GET /v1/events?since=<seq>&limit=<n>[&anonymous_id=<id>]`: events with `seq > since`,
/// oldest first; with `anonymous_id`, only that visitor's (an indexed lookup by keyed hash).
/// Paging through everyone's events is an export: it needs [`Permission::ExportData`]; a
/// `viewer` may read one visitor's.
pub async fn events(
    State(app): State<Arc<App>>,
    Extension(auditor): Extension<Auditor>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (since, limit) = page(query.as_deref())?;
    let anonymous_id = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "anonymous_id")
        .map(|(_, value)| value.into_owned());
    let page = match anonymous_id {
        Some(id) if id.is_empty() || id.chars().count() > 256 => {
            return Err(ApiError::bad_field(
                "anonymous_id",
                "must be 1 to 256 characters",
            ))
        }
        Some(id) => app.store.events_of_anonymous_id(id, since, limit).await,
        None if !auditor.principal.role.allows(Permission::ExportData) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                Some("anonymous_id".to_owned()),
                format!(
                    "the {} role reads one visitor's events (give anonymous_id); paging through                      everyone's is an export",
                    auditor.principal.role
                ),
            ))
        }
        None => app.store.events(since, limit).await,
    }
    .map_err(|e| ApiError::storage(&e))?;
    Ok(Json(page).into_response())
}

/// `GET /v1/stats`.
pub async fn stats(State(app): State<Arc<App>>) -> Result<Json<Stats>, ApiError> {
    let stats = app.store.stats().await.map_err(|e| ApiError::storage(&e))?;
    Ok(Json(stats))
}

/// A page of the audit log.
#[derive(Debug, Serialize)]
pub struct AuditPage {
    /// Entries with `seq > since`, oldest first.
    entries: Vec<AuditEntry>,
    /// The cursor for the next page.
    next_since: i64,
}

/// `GET /v1/audit?since=<seq>&limit=<n>`: audit entries with `seq > since`, oldest first.
pub async fn audit(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Json<AuditPage>, ApiError> {
    let (since, limit) = page(query.as_deref())?;
    let entries = app
        .store
        .audit_page(since, limit)
        .await
        .map_err(|e| ApiError::storage(&e))?;
    let next_since = entries.last().map_or(since, |e| e.seq);
    Ok(Json(AuditPage {
        entries,
        next_since,
    }))
}
