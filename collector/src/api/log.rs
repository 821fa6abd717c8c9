//! The request log, on tower-http's `TraceLayer`: every request gets a span carrying its
//! request id (`x-request-id`, made here when the client sent none, and echoed in the answer),
//! method and path (never the query, which may hold an API key), so every line logged while it
//! is served names it; one line when it is answered adds the status, latency and, for batches,
//! the events stored, duplicate and refused. Never event content, never a header's value.

use super::error::RejectedField;
use super::{DropConnection, IngestOutcome, InjectedFault};
use axum::http::{Request, Response};
use std::time::Duration;
use tracing::Span;

/// The header that carries the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// The span of one request.
pub fn span<B>(request: &Request<B>) -> Span {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %redacted(request.uri().path()),
    )
}

/// Paths whose last segments are an id or a secret, and how many segments of them are kept.
const REDACTED: &[(&str, usize)] = &[
    ("/v1/users/", 3),
    ("/v1/suppressions/", 3),
    ("/v1/exports/", 3),
    ("/v1/dsr/", 3),
];

/// The path as logged: a user id, an identity or a download token in it becomes `{redacted}`.
fn redacted(path: &str) -> std::borrow::Cow<'_, str> {
    for (prefix, keep) in REDACTED {
        if path.starts_with(prefix) {
            let mut segments: Vec<&str> = path.split('/').collect();
            if let Some(segment) = segments.get_mut(*keep) {
                *segment = "{redacted}";
            }
            return segments.join("/").into();
        }
    }
    path.into()
}

/// The line logged when a request is answered.
pub fn answered<B>(response: &Response<B>, latency: Duration, _span: &Span) {
    let extensions = response.extensions();
    let outcome = extensions.get::<IngestOutcome>();
    let fault = match (
        extensions.get::<InjectedFault>(),
        extensions.get::<DropConnection>(),
    ) {
        (_, Some(_)) => Some("drop"),
        (Some(_), None) => Some("status"),
        _ => None,
    };
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        stored = outcome.map(|o| o.stored),
        duplicates = outcome.map(|o| o.duplicates),
        refused = outcome.map(|o| o.refused),
        field = extensions.get::<RejectedField>().map(|f| f.0.as_str()),
        fault,
        "request"
    );
}
