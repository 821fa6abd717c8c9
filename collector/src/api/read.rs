//! The read API for tests and the demo inspector: stored events page by page, and counters.

use super::{ApiError, App};
use crate::store::{EventsPage, Stats};
use axum::extract::{RawQuery, State};
use axum::Json;
use std::sync::Arc;

/// The most events one page holds.
pub const MAX_PAGE: u32 = 1000;

/// The page size when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 100;

/// `GET /v1/events?since=<seq>&limit=<n>`: events with `seq > since`, oldest first.
pub async fn events(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Json<EventsPage>, ApiError> {
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
    let page = app
        .store
        .events(since, limit)
        .await
        .map_err(|e| ApiError::storage(&e))?;
    Ok(Json(page))
}

/// `GET /v1/stats`.
pub async fn stats(State(app): State<Arc<App>>) -> Result<Json<Stats>, ApiError> {
    let stats = app.store.stats().await.map_err(|e| ApiError::storage(&e))?;
    Ok(Json(stats))
}
