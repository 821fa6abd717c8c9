//! The console's own routes, for what the rest of the API lacks: the overview's aggregates,
//! the list of data-subject requests and one request's timeline, requests made and cancelled
//! by hand (by an `editor` or `admin`, without the OpenDSR role), the audit chain's
//! verification, and the settings as configured. Each is registered in the route table with
//! its permission and audited like every other authenticated route.

use super::audit::Auditor;
use super::opendsr::{self, Route};
use super::{ApiError, App};
use crate::rights::rfc3339;
use crate::roles::Permission;
use crate::store::console::{RequestFilter, MAX_REQUESTS};
use crate::store::dsr::{Cancelled, Created, NewRequest, Status};
use crate::store::dsr_handle::Actor;
use crate::store::retention::Scope;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use prometheus::core::Collector;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Days of events the overview shows.
const OVERVIEW_DAYS: i64 = 14;

/// A counter vector's values by its one label.
fn by_label(vec: &prometheus::IntCounterVec) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for family in vec.collect() {
        for metric in family.get_metric() {
            let label = metric
                .get_label()
                .first()
                .map(|l| l.value().to_owned())
                .unwrap_or_default();
            // Counters hold whole numbers.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let value = metric.get_counter().get_value() as u64;
            out.insert(label, value);
        }
    }
    out
}

/// `GET /console/api/summary`: events per day by purpose and environment (last 14 days),
/// duplicates and refusals (stored counters), refusals by reason and retention deletions (since
/// this process started), requests by status, failed callbacks.
pub async fn summary(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    let now = app.rights.clock.now_ms();
    let overview = app
        .store
        .console_overview(now, OVERVIEW_DAYS)
        .await
        .map_err(|e| ApiError::storage(&e))?;
    let stats = app.store.stats().await.map_err(|e| ApiError::storage(&e))?;
    Ok(Json(json!({
        "days": OVERVIEW_DAYS,
        "events_by_day": overview.events_by_day,
        "events": stats.events,
        "duplicates": stats.duplicates,
        "refused": stats.refused,
        "suppressed": stats.suppressed,
        "refused_by_reason_since_start": by_label(&app.metrics.events_refused),
        "retention_deleted_since_start": by_label(&app.metrics.retention_deleted),
        "requests_by_status": overview.requests_by_status,
        "callbacks_failed": overview.callbacks_failed,
    })))
}

fn status_of(text: &str) -> Result<Status, ApiError> {
    Status::parse(text).map_err(|_| {
        ApiError::bad_field(
            "status",
            "must be pending, in_progress, completed or cancelled",
        )
    })
}

/// `GET /console/api/requests?type=&status=&overdue=1&limit=`: requests, newest first.
pub async fn requests(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let mut filter = RequestFilter {
        limit: 100,
        ..RequestFilter::default()
    };
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*name {
            "type" if value.is_empty() => {}
            "type" if matches!(&*value, "erasure" | "access" | "portability") => {
                filter.kind = Some(value.into_owned());
            }
            "type" => {
                return Err(ApiError::bad_field(
                    "type",
                    "must be erasure, access or portability",
                ))
            }
            "status" if value.is_empty() => {}
            "status" => filter.status = Some(status_of(&value)?),
            "overdue" if value == "1" || value == "true" => {
                filter.overdue_at_ms = Some(app.rights.clock.now_ms());
            }
            "limit" => {
                filter.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_REQUESTS).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_field("limit", format!("must be from 1 to {MAX_REQUESTS}"))
                    })?;
            }
            _ => {}
        }
    }
    let list = app
        .store
        .console_requests(filter)
        .await
        .map_err(|e| ApiError::storage(&e))?;
    Ok(Json(json!({ "requests": list })))
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Some("id".to_owned()),
        "no such request",
    )
}

/// `GET /console/api/requests/{id}`: one request's timeline: received, every callback and its
/// attempts, completion or cancellation, and its export (link for roles that may export, and
/// expiry).
pub async fn request(
    State(app): State<Arc<App>>,
    Extension(auditor): Extension<Auditor>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !crate::rights::is_uuid_v4(&id) {
        return Err(not_found());
    }
    let Some((request, callbacks)) = app
        .store
        .request(id.clone())
        .await
        .map_err(|e| ApiError::storage(&e))?
    else {
        return Err(not_found());
    };
    let expiry = app
        .store
        .export_expiry(id)
        .await
        .map_err(|e| ApiError::storage(&e))?;
    let may_export = auditor.principal.role.allows(Permission::ExportData);
    let results_url = match (&request.results_token, request.status, may_export) {
        (Some(token), Status::Completed, true) if expiry.is_some() => {
            Some(app.rights.results_url(token))
        }
        _ => None,
    };
    Ok(Json(json!({
        "id": request.id,
        "type": request.kind,
        "origin": request.origin,
        "regulation": request.regulation,
        "status": request.status.as_str(),
        "controller_id": request.controller_id,
        "received_at_ms": request.received_at_ms,
        "received_time": rfc3339::format(request.received_at_ms),
        "expected_at_ms": request.expected_at_ms,
        "updated_at_ms": request.updated_at_ms,
        "results_count": request.results_count,
        "callbacks": callbacks,
        "export_expires_at_ms": expiry,
        "results_url": results_url,
    })))
}

/// `POST /console/api/requests` with `{"type", "regulation", "identity_type",
/// "identity_value"}`: a request made by hand, checked as an OpenDSR request is, with origin
/// `console` and the caller's token name as its controller. 201 with its id.
pub async fn create(
    State(app): State<Arc<App>>,
    Extension(auditor): Extension<Auditor>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let given: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_field("body", format!("is not JSON: {e}")))?;
    let field = |name: &str| given.get(name).cloned().unwrap_or(Value::Null);
    let id = crate::rights::uuid_v4()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string()))?;
    let now = app.rights.clock.now_ms();
    let opendsr_body = json!({
        "subject_request_id": id,
        "subject_request_type": field("type"),
        "regulation": field("regulation"),
        "submitted_time": rfc3339::format(now),
        "subject_identities": [{
            "identity_type": field("identity_type"),
            "identity_value": field("identity_value"),
            "identity_format": "raw",
        }],
    })
    .to_string();
    let checked = match opendsr::check(&app, opendsr_body.as_bytes(), Route::OpenDsr) {
        Ok(checked) => checked,
        Err(invalid) => return Ok(invalid.into_response()),
    };
    let principal = &auditor.principal;
    let sla = i64::try_from(app.rights.settings.sla.as_millis()).unwrap_or(i64::MAX);
    let new = NewRequest {
        id: checked.id.clone(),
        kind: checked.kind.clone(),
        origin: "console".to_owned(),
        regulation: checked.regulation,
        controller_id: principal.name.clone(),
        submitted_time: checked.submitted_time,
        received_at_ms: now,
        expected_at_ms: now.saturating_add(sla),
        request_hash: crate::tokens::hex(&Sha256::digest(opendsr_body.as_bytes())),
        ids: checked.ids,
        callback_urls: checked.callback_urls,
        status_secret_hash: None,
    };
    let actor = Actor {
        name: principal.actor(),
        role: principal.role.as_str().to_owned(),
    };
    let created = app
        .store
        .create_request(new, actor, app.rights.callback_body())
        .await
        .map_err(|e| ApiError::storage(&e))?;
    match created {
        Created::New(request) => {
            app.metrics
                .dsr_requests
                .with_label_values(&[request.kind.as_str(), "console"])
                .inc();
            app.rights.work.notify_one();
            let mut response = (
                StatusCode::CREATED,
                Json(json!({"id": request.id, "type": request.kind, "status": request.status.as_str()})),
            )
                .into_response();
            response
                .extensions_mut()
                .insert(super::audit::AuditTarget(format!(
                    "/console/api/requests {} {}",
                    request.id, request.kind
                )));
            Ok(response)
        }
        Created::Again(_) | Created::Conflict => Err(ApiError::new(
            StatusCode::CONFLICT,
            None,
            "a request with this id exists",
        )),
    }
}

/// `DELETE /console/api/requests/{id}`: cancels a pending request; 409 once it has started.
pub async fn cancel(
    State(app): State<Arc<App>>,
    Extension(auditor): Extension<Auditor>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !crate::rights::is_uuid_v4(&id) {
        return Err(not_found());
    }
    let actor = Actor {
        name: auditor.principal.actor(),
        role: auditor.principal.role.as_str().to_owned(),
    };
    let now = app.rights.clock.now_ms();
    let cancelled = app
        .store
        .cancel_request(id, now, actor, app.rights.callback_body())
        .await
        .map_err(|e| ApiError::storage(&e))?;
    match cancelled {
        Cancelled::Done(request) => {
            app.rights.callbacks.notify_one();
            Ok(Json(json!({"id": request.id, "status": "cancelled"})))
        }
        Cancelled::TooLate(request) if request.status == Status::Cancelled => {
            Ok(Json(json!({"id": request.id, "status": "cancelled"})))
        }
        Cancelled::TooLate(request) => Err(ApiError::new(
            StatusCode::CONFLICT,
            None,
            format!(
                "the request is {} and can no longer be cancelled",
                request.status.as_str()
            ),
        )),
        Cancelled::NotFound => Err(not_found()),
    }
}

/// `GET /console/api/audit/verify`: the same check as `audit verify`: `{"ok": true, "length",
/// "head"}` or `{"ok": false, "broken_seq", "reason"}`.
pub async fn verify(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    let verdict = app
        .store
        .verify_audit_chain()
        .await
        .map_err(|e| ApiError::storage(&e))?;
    Ok(Json(match verdict {
        Ok((length, head)) => json!({"ok": true, "length": length, "head": head}),
        Err(broken) => json!({"ok": false, "broken_seq": broken.seq, "reason": broken.reason}),
    }))
}

/// `GET /console/api/settings` (admin): retention schedules, the sweep interval, the
/// fulfilment deadline and the allowlists, as configured by flags (read-only).
pub async fn settings(State(app): State<Arc<App>>) -> Json<Value> {
    let retention = &app.rights.settings.retention;
    let rules: Vec<Value> = retention
        .rules
        .iter()
        .map(|rule| {
            let (kind, value) = match &rule.scope {
                Scope::Environment(e) => ("environment", e),
                Scope::Purpose(p) => ("purpose", p),
            };
            json!({"scope": kind, "value": value, "max_age_days": rule.max_age_ms / 86_400_000})
        })
        .collect();
    let origins = |policy: &crate::origin::OriginPolicy| -> Vec<String> {
        policy.origins().iter().map(ToString::to_string).collect()
    };
    Json(json!({
        "retention": rules,
        "sweep_interval_seconds": retention.sweep_interval.as_secs(),
        "sla_days": app.rights.settings.sla.as_secs() / 86_400,
        "admin_allow": app.admin_allow.ranges().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "admin_origins": origins(&app.admin_origins),
        "ingest_origins": origins(&app.ingest_origins),
    }))
}
