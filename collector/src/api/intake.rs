//! The public intake of data-subject requests from the visitor's own browser (the SDK's
//! `requestData()`): `POST /v1/dsr` with the SDK's API key, and `GET /v1/dsr/{id}?secret=…`
//! for its status.
//!
//! Threat model: nothing but the anonymous id says who the caller is, so **the anonymous id
//! works as a bearer secret**: whoever holds it may have that id's data exported or erased.
//! That is safe only because the SDK's anonymous ids are unguessable (122 random bits from a
//! ChaCha20 generator seeded by the browser's CSPRNG, `core/src/id.rs`) and never leave the
//! browser except to this collector. A request reaches exactly the ids it names, never the ids
//! linked to them: the anonymous id, and a user id only if an identify event linked it to that
//! anonymous id (else 403 naming `user_id`). The same gates as `POST /v1/batch` apply (origin,
//! CORS, per-address limit as a layer; API key and per-key limit here), so a flood is 429. The
//! answer carries a status URL with a per-request secret (32 random bytes, only its SHA-256
//! stored); a wrong or missing secret is 404, as is an unknown request.

use super::{ApiError, App};
use crate::body::{check_content_type, check_declared_length, read_body};
use crate::rights::{is_uuid_v4, random_token, rfc3339};
use crate::store::dsr::{Created, NewRequest, Status};
use crate::store::dsr_handle::Actor;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The largest intake body.
const MAX_BODY: usize = 4096;

/// The fields an intake body may have.
const FIELDS: [&str; 4] = ["api_key", "type", "anonymous_id", "user_id"];

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// `POST /v1/dsr` with `{"api_key": "pk_…", "type": "access" | "portability" | "erasure",
/// "anonymous_id": "<uuid>", "user_id": "…"}`: 202 with the request id and its status URL.
pub async fn create(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_content_type(&headers).map_err(|e| ApiError::body(&e, MAX_BODY))?;
    check_declared_length(&headers, MAX_BODY).map_err(|e| ApiError::body(&e, MAX_BODY))?;
    let bytes = read_body(&headers, body, MAX_BODY)
        .await
        .map_err(|e| ApiError::body(&e, MAX_BODY))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            None,
            format!("body is not JSON: {e}"),
        )
    })?;
    let Value::Object(fields) = value else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            None,
            "body must be a JSON object",
        ));
    };
    let key = match fields.get("api_key") {
        Some(Value::String(key)) => Some(key.clone()),
        Some(_) => return Err(ApiError::unknown_api_key()),
        None => query_value(query.as_deref(), "api_key"),
    };
    let environment = key
        .as_deref()
        .and_then(|k| app.api_keys.environment_of(k))
        .map(str::to_owned)
        .ok_or_else(ApiError::unknown_api_key)?;
    if let Some(key) = &key {
        if let Err(wait) = app.key_limiter.check(key) {
            app.metrics
                .rate_limited
                .with_label_values(&["api_key"])
                .inc();
            return Err(ApiError::rate_limited("API key", wait));
        }
    }
    if let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_field(unknown, "is not a field of a request"));
    }
    let kind = match fields.get("type") {
        Some(Value::String(kind))
            if matches!(kind.as_str(), "access" | "portability" | "erasure") =>
        {
            kind.clone()
        }
        _ => {
            return Err(ApiError::bad_field(
                "type",
                "must be access, portability or erasure",
            ))
        }
    };
    let anonymous_id = match fields.get("anonymous_id") {
        Some(Value::String(id)) if is_uuid_v4(id) => id.clone(),
        _ => {
            return Err(ApiError::bad_field(
                "anonymous_id",
                "must be the SDK's anonymous id (a lower-case version 4 UUID)",
            ))
        }
    };
    let mut ids = vec![anonymous_id.clone()];
    match fields.get("user_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(user)) if !user.is_empty() && user.chars().count() <= 256 => {
            let linked = app
                .store
                .is_linked(anonymous_id.clone(), user.clone())
                .await
                .map_err(|e| ApiError::storage(&e))?;
            if !linked {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    Some("user_id".to_owned()),
                    "this user id was never identified with this anonymous id",
                ));
            }
            ids.push(user.clone());
        }
        Some(_) => {
            return Err(ApiError::bad_field(
                "user_id",
                "must be a string of 1 to 256 characters",
            ))
        }
    }
    let internal =
        |e: std::io::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string());
    let id = crate::rights::uuid_v4().map_err(internal)?;
    let secret = random_token().map_err(internal)?;
    let now = app.rights.clock.now_ms();
    let sla = i64::try_from(app.rights.settings.sla.as_millis()).unwrap_or(i64::MAX);
    let request = NewRequest {
        id: id.clone(),
        kind: kind.clone(),
        origin: "intake".to_owned(),
        regulation: "gdpr".to_owned(),
        controller_id: format!("intake:{environment}"),
        submitted_time: rfc3339::format(now),
        received_at_ms: now,
        expected_at_ms: now.saturating_add(sla),
        request_hash: crate::tokens::hex(&Sha256::digest(&bytes)),
        ids,
        callback_urls: Vec::new(),
        status_secret_hash: Some(crate::tokens::hash(&secret)),
    };
    let actor = Actor {
        name: format!("intake:{environment}"),
        role: "visitor".to_owned(),
    };
    let created = app
        .store
        .create_request(request, actor, app.rights.callback_body())
        .await
        .map_err(|e| ApiError::storage(&e))?;
    let Created::New(request) = created else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            None,
            "request id collision, try again",
        ));
    };
    app.metrics
        .dsr_requests
        .with_label_values(&[kind.as_str(), "intake"])
        .inc();
    app.rights.work.notify_one();
    let status_url = format!("{}/v1/dsr/{id}?secret={secret}", app.rights.public_url);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "request_id": id,
            "type": kind,
            "status": Status::Pending.as_str(),
            "expected_completion_time": rfc3339::format(request.expected_at_ms),
            "status_url": status_url,
        })),
    )
        .into_response())
}

/// `GET /v1/dsr/{id}?secret=…`: the status of a visitor's own request (and, once an export is
/// ready, its download URL).
pub async fn status(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, None, "no such request");
    let secret = query_value(query.as_deref(), "secret").ok_or_else(not_found)?;
    if !is_uuid_v4(&id) {
        return Err(not_found());
    }
    let found = app
        .store
        .request(id)
        .await
        .map_err(|e| ApiError::storage(&e))?;
    let Some((request, _)) = found else {
        return Err(not_found());
    };
    let expected = request.status_secret_hash.clone().unwrap_or_default();
    let given = crate::tokens::hash(&secret);
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return Err(not_found());
    }
    let mut body = json!({
        "request_id": request.id,
        "type": request.kind,
        "status": request.status.as_str(),
        "expected_completion_time": rfc3339::format(request.expected_at_ms),
    });
    if request.status == Status::Completed {
        if let Some(token) = &request.results_token {
            body["results_url"] = json!(app.rights.results_url(token));
        }
        if let Some(count) = request.results_count {
            body["results_count"] = json!(count);
        }
    }
    Ok(Json(body).into_response())
}
