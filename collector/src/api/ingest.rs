//! `POST /v1/batch`: fault (if queued) → content type → declared size → a key in the query →
//! body memory reserved → body (size, gzip, deadline) → the body's API key → schema rules →
//! consent re-check → one transaction → answer.
//!
//! The rule: a batch that breaks any schema rule is rejected whole (400 naming the field,
//! nothing stored). A valid batch is stored in one SQLite transaction and acknowledged only
//! after COMMIT; within it, events whose purposes the batch's own consent state does not grant
//! are refused (not stored, listed by id), and events whose id is already stored are counted as
//! duplicates.

use super::gate::ClientIp;
use super::{ApiError, App, DropConnection, InjectedFault};
use crate::body::{check_content_type, check_declared_length, memory_needed, read_body};
use crate::consent_check::check_event;
use crate::faults::Fault;
use crate::store::{NewBatch, NewEvent};
use crate::validate::{check_batch, parse_batch};
use crate::wire::Batch;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;

/// Response marker: what one batch did, for the request log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Events stored.
    pub stored: u64,
    /// Events already stored before.
    pub duplicates: u64,
    /// Events refused by the consent check.
    pub refused: u64,
}

/// The 200 answer.
#[derive(Debug, Serialize)]
struct Accepted {
    stored: u64,
    duplicates: u64,
    refused: Vec<Refused>,
}

#[derive(Debug, Serialize)]
struct Refused {
    id: String,
    reason: &'static str,
}

/// The handler.
pub async fn handle(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    client: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(fault) = app.faults.as_ref().and_then(|f| f.next()) {
        return fault_response(fault);
    }
    let client = client.map(|Extension(ClientIp(ip))| crate::network::address_key(ip));
    match ingest(&app, query.as_deref(), client, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn ingest(
    app: &App,
    query: Option<&str>,
    client: Option<IpAddr>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = app.max_body_bytes;
    check_content_type(headers).map_err(|e| ApiError::body(&e, limit))?;
    let declared = check_declared_length(headers, limit).map_err(|e| ApiError::body(&e, limit))?;
    // A key in the query is checked before the body is read. The SDK sends it in the body,
    // which is then read only within the shared body budget and the request deadline.
    let from_query = match query_key(query) {
        Some(key) => {
            let environment = environment_of(app, &key)?;
            Some((key, environment))
        }
        None => None,
    };
    let needed = memory_needed(headers, declared, limit).map_err(|e| ApiError::body(&e, limit))?;
    let Some(_reserved) = app.body_budget.reserve(client, needed) else {
        return Err(ApiError::busy());
    };
    let bytes = read_body(headers, body, limit)
        .await
        .map_err(|e| ApiError::body(&e, limit))?;
    // A valid batch is parsed once and its key read from it; only a body that does not parse
    // is read again for its key alone, so a sender without a valid key still learns nothing
    // about what else is wrong with it.
    let parsed = parse_batch(&bytes);
    let in_body = match &parsed {
        Ok(batch) => batch.api_key.clone(),
        Err(_) => body_key(&bytes)?,
    };
    let (key, environment) = match (in_body, from_query) {
        (Some(key), _) => {
            let environment = environment_of(app, &key)?;
            (key, environment)
        }
        (None, Some(from_query)) => from_query,
        (None, None) => return Err(ApiError::unknown_api_key()),
    };
    if let Err(wait) = app.key_limiter.check(&key) {
        app.metrics
            .rate_limited
            .with_label_values(&["api_key"])
            .inc();
        return Err(ApiError::rate_limited("API key", wait));
    }
    let batch = parsed?;
    check_batch(&batch)?;
    let (new_batch, refused) = prepare(app, batch, environment)?;
    let counts = app
        .store
        .ingest(new_batch)
        .await
        .map_err(|e| ApiError::storage(&e))?;
    let metrics = &app.metrics;
    metrics.events_accepted.inc_by(counts.stored);
    metrics.events_duplicate.inc_by(counts.duplicates);
    metrics.events_suppressed.inc_by(counts.suppressed);
    for r in &refused {
        tracing::info!(event_id = %r.id, reason = r.reason, "event refused");
        metrics.events_refused.with_label_values(&[r.reason]).inc();
    }
    let outcome = IngestOutcome {
        stored: counts.stored,
        duplicates: counts.duplicates,
        refused: refused.len() as u64,
    };
    // Events of suppressed identities are answered as stored: the browser must not retry them,
    // and the answer does not tell a page that its visitor is suppressed.
    let mut response = Json(Accepted {
        stored: counts.stored + counts.suppressed,
        duplicates: counts.duplicates,
        refused,
    })
    .into_response();
    response.extensions_mut().insert(outcome);
    Ok(response)
}

/// Just the key, read before the rest is checked: a sender without a valid key learns nothing
/// about what else is wrong with its batch.
#[derive(Deserialize)]
struct KeyProbe {
    #[serde(default)]
    api_key: Option<serde_json::Value>,
}

/// `?api_key=` from the query, if given.
fn query_key(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "api_key")
        .map(|(_, value)| value.into_owned())
}

/// The environment `key` writes to, or 401.
fn environment_of(app: &App, key: &str) -> Result<String, ApiError> {
    app.api_keys
        .environment_of(key)
        .map(str::to_owned)
        .ok_or_else(ApiError::unknown_api_key)
}

/// The body's `api_key`, if it has one (the query's key applies when not); 400 for a body
/// that is not a JSON object, 401 for a key that is not a string.
fn body_key(body: &Bytes) -> Result<Option<String>, ApiError> {
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !is_object && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            None,
            "body must be a JSON object",
        ));
    }
    let probe: KeyProbe = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            None,
            if e.is_data() {
                "body must be a JSON object".to_owned()
            } else {
                format!("body is not JSON: {e}")
            },
        )
    })?;
    match probe.api_key {
        Some(serde_json::Value::String(key)) => Ok(Some(key)),
        Some(_) => Err(ApiError::unknown_api_key()),
        None => Ok(None),
    }
}

/// Splits the batch into what to store and what the consent check refuses.
fn prepare(
    app: &App,
    batch: Batch,
    environment: String,
) -> Result<(NewBatch, Vec<Refused>), ApiError> {
    let mut events = Vec::with_capacity(batch.events.len());
    let mut refused = Vec::new();
    for event in batch.events {
        if let Err(reason) = check_event(&event.purposes, &batch.consent_state, &app.sale_purposes)
        {
            refused.push(Refused {
                id: event.id,
                reason: reason.as_str(),
            });
            continue;
        }
        let consent = match &event.consent {
            Some(c) => Some((json(&c.current)?, json(&c.previous)?)),
            None => None,
        };
        events.push(NewEvent {
            kind: event.kind.as_str(),
            purposes: json(&event.purposes)?,
            page: event.page.as_ref().map(json).transpose()?,
            consent,
            properties: event.properties.get().to_owned(),
            event_id: event.id,
            name: event.name,
            timestamp_ms: event.timestamp_unixtime_ms,
            anonymous_id: event.anonymous_id,
            user_id: event.user_id,
        });
    }
    let new_batch = NewBatch {
        consent_state: json(&batch.consent_state)?,
        batch_id: batch.batch_id,
        environment,
        received_at_ms: u64::try_from(app.rights.clock.now_ms()).unwrap_or(0),
        sent_at_ms: batch.sent_at,
        sdk_name: batch.sdk.name,
        sdk_version: batch.sdk.version,
        events,
        refused: refused.len() as u64,
    };
    Ok((new_batch, refused))
}

fn json<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            format!("cannot encode: {e}"),
        )
    })
}

fn fault_response(fault: Fault) -> Response {
    let mut response = match fault {
        Fault::Drop => {
            let mut response = StatusCode::SERVICE_UNAVAILABLE.into_response();
            response.extensions_mut().insert(DropConnection);
            response
        }
        Fault::Status {
            status,
            retry_after,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = ApiError::new(status, None, "injected fault").into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
    };
    response.extensions_mut().insert(InjectedFault);
    response
}
