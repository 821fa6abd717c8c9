//! One structured log line per request: method, path (never the query, which may hold an API
//! key), status, latency, and for batches the events stored, duplicate and refused. Never event
//! content.

use super::error::RejectedField;
use super::{DropConnection, IngestOutcome, InjectedFault};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// Logs the request once it is answered.
pub async fn requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
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
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms,
        stored = outcome.map(|o| o.stored),
        duplicates = outcome.map(|o| o.duplicates),
        refused = outcome.map(|o| o.refused),
        field = extensions.get::<RejectedField>().map(|f| f.0.as_str()),
        fault,
        "request"
    );
    response
}
