//! The request log, on tower-http's `TraceLayer`: every request gets a span carrying its
//! request id (`x-request-id`, made here when the client sent none, and echoed in the answer),
//! method and route pattern (`/v1/tokens/{id}`, recorded once routed: never the path itself,
//! whose segments may be a person's id, nor the query, which may hold an API key), so every line
//! logged while it is served names it; one line when it is answered adds the status, latency and, for batches,
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
        route = tracing::field::Empty,
    )
}

/// Records the matched route's pattern on the request's span.
pub async fn route(
    axum::extract::State(pattern): axum::extract::State<&'static str>,
    request: axum::extract::Request,
) -> axum::extract::Request {
    Span::current().record("route", pattern);
    request
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
