//! One data subject through the admin API: everything held about a user or anonymous id
//! (`GET /v1/users/{id}`), erasure at once (`DELETE /v1/users/{id}`, the same code path as an
//! OpenDSR erasure), rectification of traits (`PATCH /v1/users/{id}/traits`), and the
//! suppression list (`PUT`/`DELETE /v1/suppressions/{identity}`).
//!
//! The audit log and the request log name the subject by the id's keyed index, never the id
//! in clear (the request log records the route pattern, never the path). Every change writes
//! its audit entry in its own transaction: the change and its record commit together.

use super::audit::{AuditTarget, Audited, Auditor};
use super::read::page;
use super::{ApiError, App};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The longest id accepted (as the wire format's `user_id`).
const MAX_ID_CHARS: usize = 256;

fn check_id(id: &str, field: &str) -> Result<(), ApiError> {
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_ID_CHARS || id.chars().any(char::is_control) {
        return Err(ApiError::bad_field(
            field,
            format!("must be 1 to {MAX_ID_CHARS} characters without control characters"),
        ));
    }
    Ok(())
}

fn with_target(response: impl IntoResponse, target: String) -> Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(AuditTarget(target));
    response
}

fn audited(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(Audited);
    response
}

/// `GET /v1/users/{id}?since=<seq>&limit=<n>`: events (paged), consent history, identity
/// links, requests and their status, suppression and erasures of one id.
pub async fn read_user(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    check_id(&id, "id")?;
    let (since, limit) = page(query.as_deref())?;
    let target = format!(
        "/v1/users/index:{}?since={since}&limit={limit}",
        app.store.index_of(&id)
    );
    let view = app
        .store
        .user_view(id, since, limit)
        .await
        .map_err(|e| ApiError::storage(&e))?;
    Ok(with_target(Json(view), target))
}

/// `DELETE /v1/users/{id}`: erases at once every event, consent change, identity link and
/// export of the id and the ids linked to it; answers what was deleted and the tombstone's
/// request id.
pub async fn erase_user(
    State(app): State<Arc<App>>,
    Extension(auditor): Extension<Auditor>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_id(&id, "id")?;
    let request_id = crate::rights::uuid_v4()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string()))?;
    let index = app.store.index_of(&id);
    let now = app.rights.clock.now_ms();
    let tombstone = request_id.clone();
    let erased = app
        .store
        .erase(request_id.clone(), vec![id], now, move |erased| {
            let target = format!(
                "/v1/users/index:{index} erasure {tombstone} events={}",
                erased.events
            );
            auditor.entry(target, 200)
        })
        .await
        .map_err(|e| ApiError::storage(&e))?;
    app.metrics.events_erased.inc_by(erased.events);
    Ok(audited(Json(
        json!({"request_id": request_id, "erased": erased}),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraitsPatch {
    traits: serde_json::Map<String, serde_json::Value>,
}

/// `PATCH /v1/users/{id}/traits` with `{"traits": {"name": "Ada", "email": null}}`: sets
/// (or, with `null`, removes) traits on every identify event of the user.
pub async fn rectify_traits(
    State(app): State<Arc<App>>,
    Extension(auditor): Extension<Auditor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_id(&id, "id")?;
    let patch: TraitsPatch = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_field(
            "traits",
            format!("expected {{\"traits\": {{\"name\": value or null}}}}: {e}"),
        )
    })?;
    if patch.traits.is_empty() {
        return Err(ApiError::bad_field(
            "traits",
            "must name at least one trait",
        ));
    }
    for name in patch.traits.keys() {
        if name.is_empty() || name.chars().count() > MAX_ID_CHARS {
            return Err(ApiError::bad_field(
                &format!("traits.{name}"),
                "a trait name is 1 to 256 characters",
            ));
        }
    }
    let names: Vec<&str> = patch.traits.keys().map(String::as_str).collect();
    let target = format!(
        "/v1/users/index:{}/traits names={}",
        app.store.index_of(&id),
        names.join(",")
    );
    let updated = app
        .store
        .rectify_traits(id, patch.traits, move |updated| {
            auditor.entry(format!("{target} updated={updated}"), 200)
        })
        .await
        .map_err(|e| ApiError::storage(&e))?;
    Ok(audited(Json(json!({"updated_events": updated}))))
}

/// `PUT /v1/suppressions/{identity}`: from now on, events of this anonymous id or user id (and
/// of anonymous ids linked to a suppressed user id) are dropped before storage and answered
/// as stored. 201 when added, 200 when it was already on the list.
pub async fn suppress(
    State(app): State<Arc<App>>,
    Extension(auditor): Extension<Auditor>,
    Path(identity): Path<String>,
) -> Result<Response, ApiError> {
    check_id(&identity, "identity")?;
    let target = format!("/v1/suppressions/index:{}", app.store.index_of(&identity));
    let now = app.rights.clock.now_ms();
    let status = |added| {
        if added {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        }
    };
    let added = app
        .store
        .suppress(identity, now, move |added| {
            auditor.entry(target, status(added).as_u16())
        })
        .await
        .map_err(|e| ApiError::storage(&e))?;
    Ok(audited((
        status(added),
        Json(json!({"suppressed": true, "added": added})),
    )))
}

/// `DELETE /v1/suppressions/{identity}`: takes it off the list (200 either way; `removed`
/// says whether it was on it).
pub async fn unsuppress(
    State(app): State<Arc<App>>,
    Extension(auditor): Extension<Auditor>,
    Path(identity): Path<String>,
) -> Result<Response, ApiError> {
    check_id(&identity, "identity")?;
    let target = format!("/v1/suppressions/index:{}", app.store.index_of(&identity));
    let removed = app
        .store
        .unsuppress(identity, auditor.entry(target, 200))
        .await
        .map_err(|e| ApiError::storage(&e))?;
    Ok(audited(Json(
        json!({"suppressed": false, "removed": removed}),
    )))
}

/// `POST /v1/retention/sweep`: runs a retention sweep now; answers what it deleted.
pub async fn sweep(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let rules = &app.rights.settings.retention.rules;
    let swept =
        crate::rights::retention::sweep(&app.store, &app.metrics, rules, app.rights.clock.now_ms())
            .await
            .map_err(|e| ApiError::storage(&e))?;
    Ok(Json(json!({"deleted": swept, "schedules": rules.len()})).into_response())
}
