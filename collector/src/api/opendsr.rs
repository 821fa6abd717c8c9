//! The OpenDSR processor API (`opengdpr/OpenDSR` `specification.md`): discovery (section 6),
//! the processor certificate it names, requests (7), status (8) and cancellation (9).
//!
//! Requests, status and cancellation need a token with [`crate::roles::Permission::OpenDsr`]
//! (the `dsr` role; spec 4.3 leaves authentication to the processor); the token's name is the
//! `controller_id`, and a controller sees only its own requests. Every answer of these three
//! is signed (`X-OpenDSR-Signature` over the exact body, with `X-OpenDSR-Processor-Domain`, and
//! the same under the prior `X-OpenGDPR-` names, section 10.1); 201 and 202 bodies also carry
//! `processor_signature`, the signature of the body without that field. Errors are the spec's
//! error object (7.6) with the offending field named in `message` and in `errors[0].field`.

use super::{ApiError, App};
use crate::rights::{callbacks, is_uuid_v4, rfc3339, API_VERSION};
use crate::store::dsr::{Cancelled, Created, NewRequest, Request, Status};
use crate::store::dsr_handle::Actor;
use crate::tokens::Principal;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Most callback URLs one request may name.
const MAX_CALLBACKS: usize = 10;

/// Most identities one request may name.
const MAX_IDENTITIES: usize = 20;

/// The spec's error answer, naming `field`.
fn error(status: StatusCode, field: Option<&str>, message: &str) -> Response {
    let text = match field {
        Some(field) => format!("{field}: {message}"),
        None => message.to_owned(),
    };
    let body = json!({
        "error": {
            "code": status.as_u16(),
            "message": text,
            "errors": [{
                "domain": "Validation",
                "reason": if status == StatusCode::BAD_REQUEST { "InvalidArgument" } else { status.canonical_reason().unwrap_or("Error") },
                "message": text,
                "field": field,
            }],
        }
    });
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("pragma", HeaderValue::from_static("no-cache"));
    if let Some(field) = field {
        response
            .extensions_mut()
            .insert(super::error::RejectedField(field.to_owned()));
    }
    response
}

/// A 400 naming a field, before it becomes the spec's error answer.
pub(super) struct Invalid {
    field: Option<String>,
    message: String,
}

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        error(
            StatusCode::BAD_REQUEST,
            self.field.as_deref(),
            &self.message,
        )
    }
}

fn bad(field: &str, message: &str) -> Invalid {
    Invalid {
        field: Some(field.to_owned()),
        message: message.to_owned(),
    }
}

fn invalid_body(message: String) -> Invalid {
    Invalid {
        field: None,
        message,
    }
}

/// The most bytes of an answer [`sign_unsigned`] reads to sign it (errors are small).
const MAX_SIGNED_ERROR_BYTES: usize = 64 * 1024;

/// Signs a handler's answer that is not signed yet (the spec's error objects), as
/// [`signed`] does: every answer a request route's handler makes carries the signature.
pub async fn sign_unsigned(State(app): State<Arc<App>>, response: Response) -> Response {
    if response.headers().contains_key("x-opendsr-signature") {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SIGNED_ERROR_BYTES).await else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, None, "cannot sign");
    };
    let mut response = Response::from_parts(parts, axum::body::Body::from(bytes.clone()));
    match app.rights.signer.sign(&bytes) {
        Ok(signature) => add_signature(&app, response.headers_mut(), &signature),
        Err(e) => tracing::error!(error = %e, "cannot sign an OpenDSR answer"),
    }
    response
}

/// The signature headers, under the current and the prior (OpenGDPR) names.
fn add_signature(app: &App, headers: &mut axum::http::HeaderMap, signature: &str) {
    let domain = &app.rights.settings.processor_domain;
    for (name, value) in [
        ("x-opendsr-processor-domain", domain.as_str()),
        ("x-opendsr-signature", signature),
        ("x-opengdpr-processor-domain", domain.as_str()),
        ("x-opengdpr-signature", signature),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
}

/// A signed JSON answer.
fn signed(app: &App, status: StatusCode, body: &Value) -> Response {
    let text = body.to_string();
    let signature = match app.rights.signer.sign(text.as_bytes()) {
        Ok(signature) => signature,
        Err(e) => {
            tracing::error!(error = %e, "cannot sign an OpenDSR answer");
            return error(StatusCode::INTERNAL_SERVER_ERROR, None, "cannot sign");
        }
    };
    let mut response = (status, text).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    add_signature(app, headers, &signature);
    response
}

/// Adds `processor_signature`: the signature of the body as it was without it.
fn with_processor_signature(app: &App, mut body: Value) -> Value {
    if let Ok(signature) = app.rights.signer.sign(body.to_string().as_bytes()) {
        body["processor_signature"] = json!(signature);
    }
    body
}

/// `GET /opendsr/v1/discovery` (public).
pub async fn discovery(State(app): State<Arc<App>>) -> Response {
    axum::Json(json!({
        "api_version": API_VERSION,
        "supported_identities": [
            {"identity_type": "controller_customer_id", "identity_format": "raw"},
            {"identity_type": "anonymous_id", "identity_format": "raw"},
            {"identity_type": "email", "identity_format": "raw"},
            {"identity_type": "email", "identity_format": "sha256"},
        ],
        "supported_subject_request_types": ["erasure", "access", "portability"],
        "processor_certificate": app.rights.certificate_url(),
    }))
    .into_response()
}

/// `GET /opendsr/v1/certificate.pem` (public): the signing certificate chain.
pub async fn certificate(State(app): State<Arc<App>>) -> Response {
    let mut response = app
        .rights
        .signer
        .certificate_pem()
        .to_owned()
        .into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    response
}

fn string<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a str, Invalid> {
    match body.get(field) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(bad(field, "must be a string")),
        None => Err(bad(field, "is required")),
    }
}

/// The ids an identity names: a user id, an anonymous id, or for an email both the address and
/// its SHA-256 (what the SDK sends as a user id when it pseudonymises an email).
fn identity_ids(identity: &Value, at: &str) -> Result<Vec<String>, Invalid> {
    let Value::Object(identity) = identity else {
        return Err(bad(at, "must be an identity object"));
    };
    let kind = string(identity, "identity_type")
        .map_err(|_| bad(&format!("{at}.identity_type"), "is required, a string"))?;
    let value = string(identity, "identity_value")
        .map_err(|_| bad(&format!("{at}.identity_value"), "is required, a string"))?;
    let format = string(identity, "identity_format")
        .map_err(|_| bad(&format!("{at}.identity_format"), "is required, a string"))?;
    let chars = value.chars().count();
    if chars == 0 || chars > 256 || value.chars().any(char::is_control) {
        return Err(bad(
            &format!("{at}.identity_value"),
            "must be 1 to 256 characters without control characters",
        ));
    }
    let bad_format = || {
        bad(
            &format!("{at}.identity_format"),
            "is not supported for this identity_type (see /opendsr/v1/discovery)",
        )
    };
    match (kind, format) {
        ("controller_customer_id" | "anonymous_id", "raw") => Ok(vec![value.to_owned()]),
        ("email", "raw") => {
            let normalised = value.trim().to_lowercase();
            let hashed = crate::tokens::hex(&Sha256::digest(normalised.as_bytes()));
            Ok(vec![value.to_owned(), normalised, hashed])
        }
        ("email", "sha256") => {
            let hex = value.to_ascii_lowercase();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(
                    &format!("{at}.identity_value"),
                    "must be 64 hex digits for sha256",
                ));
            }
            Ok(vec![hex])
        }
        ("controller_customer_id" | "anonymous_id" | "email", _) => Err(bad_format()),
        _ => Err(bad(
            &format!("{at}.identity_type"),
            "is not supported (see /opendsr/v1/discovery)",
        )),
    }
}

/// A checked request body.
pub(super) struct Checked {
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) regulation: String,
    pub(super) submitted_time: String,
    pub(super) ids: Vec<String>,
    pub(super) callback_urls: Vec<String>,
}

/// Checks an OpenDSR request body (the console's requests are checked the same way).
pub(super) fn check(app: &App, body: &[u8], route: Route) -> Result<Checked, Invalid> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| invalid_body(format!("body is not JSON: {e}")))?;
    let Value::Object(body) = value else {
        return Err(invalid_body("body must be a JSON object".to_owned()));
    };
    let id = string(&body, "subject_request_id")?;
    if !is_uuid_v4(id) {
        return Err(bad(
            "subject_request_id",
            "must be a lower-case version 4 UUID",
        ));
    }
    let kind = string(&body, "subject_request_type")?;
    if !matches!(kind, "erasure" | "access" | "portability") {
        return Err(bad(
            "subject_request_type",
            "must be erasure, access or portability",
        ));
    }
    // OpenGDPR 1.0 had no `regulation` (it was GDPR only); OpenDSR requires it.
    let regulation = match (route, body.get("regulation")) {
        (Route::OpenGdpr, None) => "gdpr",
        _ => string(&body, "regulation")?,
    };
    if !matches!(regulation, "gdpr" | "ccpa") {
        return Err(bad("regulation", "must be gdpr or ccpa"));
    }
    let submitted_time = string(&body, "submitted_time")?;
    if rfc3339::parse(submitted_time).is_none() {
        return Err(bad("submitted_time", "must be an RFC 3339 date-time"));
    }
    if let Some(version) = body.get("api_version") {
        if !version.is_string() {
            return Err(bad("api_version", "must be a string"));
        }
    }
    let identities = match body.get("subject_identities") {
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_IDENTITIES => list,
        Some(Value::Array(_)) => {
            return Err(bad(
                "subject_identities",
                "must hold 1 to 20 identity objects",
            ))
        }
        Some(_) => return Err(bad("subject_identities", "must be an array")),
        None => return Err(bad("subject_identities", "is required")),
    };
    let mut ids = Vec::new();
    for (i, identity) in identities.iter().enumerate() {
        for id in identity_ids(identity, &format!("subject_identities[{i}]"))? {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let mut callback_urls = Vec::new();
    match body.get("status_callback_urls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(urls)) if urls.len() <= MAX_CALLBACKS => {
            for (i, url) in urls.iter().enumerate() {
                let field = format!("status_callback_urls[{i}]");
                let Value::String(url) = url else {
                    return Err(bad(&field, "must be a string"));
                };
                callbacks::check_url(url, app.rights.settings.allow_loopback_http_callbacks)
                    .map_err(|why| bad(&field, why))?;
                if !callback_urls.contains(url) {
                    callback_urls.push(url.clone());
                }
            }
        }
        Some(Value::Array(_)) => {
            return Err(bad("status_callback_urls", "must hold at most 10 URLs"))
        }
        Some(_) => return Err(bad("status_callback_urls", "must be an array of URLs")),
    }
    if let Some(extensions) = body.get("extensions") {
        if !extensions.is_object() {
            return Err(bad(
                "extensions",
                "must be an object keyed by processor domain",
            ));
        }
    }
    Ok(Checked {
        id: id.to_owned(),
        kind: kind.to_owned(),
        regulation: regulation.to_owned(),
        submitted_time: submitted_time.to_owned(),
        ids,
        callback_urls,
    })
}

fn created_body(app: &App, request: &Request, body: &[u8]) -> Value {
    with_processor_signature(
        app,
        json!({
            "controller_id": request.controller_id,
            "expected_completion_time": rfc3339::format(request.expected_at_ms),
            "received_time": rfc3339::format(request.received_at_ms),
            "encoded_request": base64::engine::general_purpose::STANDARD.encode(body),
            "subject_request_id": request.id,
            "api_version": API_VERSION,
        }),
    )
}

/// Which name a request came in under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// `/opendsr/v1/requests`.
    OpenDsr,
    /// `/opendsr/v1/opengdpr_requests`, the prior name (spec 10.1): `regulation` may be absent.
    OpenGdpr,
}

/// `POST /opendsr/v1/requests`: 201, signed; the same request again answers the same.
pub async fn create(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    body: Bytes,
) -> Response {
    create_as(&app, &principal, &body, Route::OpenDsr).await
}

/// `POST /opendsr/v1/opengdpr_requests`: the same under the prior OpenGDPR name, where a
/// request without `regulation` is a GDPR request.
pub async fn create_opengdpr(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    body: Bytes,
) -> Response {
    create_as(&app, &principal, &body, Route::OpenGdpr).await
}

async fn create_as(app: &Arc<App>, principal: &Principal, body: &Bytes, route: Route) -> Response {
    let (app, body) = (Arc::clone(app), body.clone());
    let checked = match check(&app, &body, route) {
        Ok(checked) => checked,
        Err(invalid) => return invalid.into_response(),
    };
    let now = app.rights.clock.now_ms();
    let sla = i64::try_from(app.rights.settings.sla.as_millis()).unwrap_or(i64::MAX);
    let request = NewRequest {
        id: checked.id.clone(),
        kind: checked.kind.clone(),
        origin: "opendsr".to_owned(),
        regulation: checked.regulation,
        controller_id: principal.name.clone(),
        submitted_time: checked.submitted_time,
        received_at_ms: now,
        expected_at_ms: now.saturating_add(sla),
        request_hash: crate::tokens::hex(&Sha256::digest(&body)),
        ids: checked.ids,
        callback_urls: checked.callback_urls,
        status_secret_hash: None,
    };
    let actor = Actor {
        name: principal.name.clone(),
        role: principal.role.as_str().to_owned(),
    };
    let created = match app
        .store
        .create_request(request, actor, app.rights.callback_body())
        .await
    {
        Ok(created) => created,
        Err(e) => return ApiError::storage(&e).into_response(),
    };
    let mut response = match created {
        Created::New(request) => {
            app.metrics
                .dsr_requests
                .with_label_values(&[request.kind.as_str(), "opendsr"])
                .inc();
            app.rights.work.notify_one();
            app.rights.callbacks.notify_one();
            signed(
                &app,
                StatusCode::CREATED,
                &created_body(&app, &request, &body),
            )
        }
        Created::Again(request) if request.controller_id == principal.name => signed(
            &app,
            StatusCode::CREATED,
            &created_body(&app, &request, &body),
        ),
        // The spec answers every refused request 400 (7.5).
        Created::Again(_) | Created::Conflict => error(
            StatusCode::BAD_REQUEST,
            Some("subject_request_id"),
            "is already used by a different request",
        ),
    };
    response
        .extensions_mut()
        .insert(super::audit::AuditTarget(format!(
            "/opendsr/v1/requests {} {}",
            checked.id, checked.kind
        )));
    response
}

/// The request `id` if `principal` may see it (its controller, or an admin).
async fn visible(
    app: &App,
    principal: &Principal,
    id: &str,
) -> Result<(Request, Vec<crate::store::dsr::Callback>), Response> {
    if !is_uuid_v4(id) {
        return Err(
            bad("subject_request_id", "must be a lower-case version 4 UUID").into_response(),
        );
    }
    let found = app
        .store
        .request(id.to_owned())
        .await
        .map_err(|e| ApiError::storage(&e).into_response())?;
    match found {
        Some((request, callbacks))
            if request.controller_id == principal.name
                || principal.role == crate::roles::Role::Admin =>
        {
            Ok((request, callbacks))
        }
        _ => Err(error(
            StatusCode::NOT_FOUND,
            Some("subject_request_id"),
            "no such request",
        )),
    }
}

/// The status body (section 8.3), with every callback attempt.
pub fn status_body(
    app: &App,
    request: &Request,
    callbacks: &[crate::store::dsr::Callback],
) -> Value {
    let mut body = json!({
        "controller_id": request.controller_id,
        "expected_completion_time": rfc3339::format(request.expected_at_ms),
        "subject_request_id": request.id,
        "request_status": request.status.as_str(),
        "api_version": API_VERSION,
        "subject_request_type": request.kind,
        "callbacks": callbacks,
    });
    if request.status == Status::Completed {
        if let Some(token) = &request.results_token {
            body["results_url"] = json!(app.rights.results_url(token));
        }
        if let Some(count) = request.results_count {
            body["results_count"] = json!(count);
        }
    }
    body
}

/// `GET /opendsr/v1/requests/{id}`: status, signed.
pub async fn status(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    match visible(&app, &principal, &id).await {
        Ok((request, callbacks)) => signed(
            &app,
            StatusCode::OK,
            &status_body(&app, &request, &callbacks),
        ),
        Err(response) => response,
    }
}

/// `DELETE /opendsr/v1/requests/{id}`: cancels a pending request (202, signed); 409 once it
/// has started.
pub async fn cancel(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = visible(&app, &principal, &id).await {
        return response;
    }
    let now = app.rights.clock.now_ms();
    let actor = Actor {
        name: principal.name.clone(),
        role: principal.role.as_str().to_owned(),
    };
    let result = app
        .store
        .cancel_request(id.clone(), now, actor, app.rights.callback_body())
        .await;
    let accepted = |request: &Request| {
        let body = with_processor_signature(
            &app,
            json!({
                "controller_id": request.controller_id,
                "subject_request_id": request.id,
                "received_time": rfc3339::format(now),
                "api_version": API_VERSION,
            }),
        );
        signed(&app, StatusCode::ACCEPTED, &body)
    };
    match result {
        Ok(Cancelled::Done(request)) => {
            app.rights.callbacks.notify_one();
            accepted(&request)
        }
        Ok(Cancelled::TooLate(request)) if request.status == Status::Cancelled => {
            accepted(&request)
        }
        Ok(Cancelled::TooLate(request)) => error(
            StatusCode::CONFLICT,
            Some("subject_request_id"),
            &format!(
                "the request is {} and can no longer be cancelled",
                request.status.as_str()
            ),
        ),
        Ok(Cancelled::NotFound) => error(
            StatusCode::NOT_FOUND,
            Some("subject_request_id"),
            "no such request",
        ),
        Err(e) => ApiError::storage(&e).into_response(),
    }
}
