//! Health for load balancers and orchestrators, and the metrics page.
//!
//! `GET /healthz` (liveness): 200 `ok` when the store thread answers and the database reads
//! within two seconds, else 503. `GET /readyz` (readiness): the same, and 503 once shutdown has
//! begun, so a load balancer stops sending before connections close.

use super::{ApiError, App};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// How long the store may take to answer a health check.
const STORE_DEADLINE: Duration = Duration::from_secs(2);

async fn store_answers(app: &App) -> Result<(), ApiError> {
    match tokio::time::timeout(STORE_DEADLINE, app.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ApiError::storage(&e)),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "the store did not answer in time",
        )),
    }
}

/// `GET /healthz`.
pub async fn healthz(State(app): State<Arc<App>>) -> Result<&'static str, ApiError> {
    store_answers(&app).await?;
    Ok("ok")
}

/// `GET /readyz`.
pub async fn readyz(State(app): State<Arc<App>>) -> Result<&'static str, ApiError> {
    if *app.stopping.borrow() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "shutting down",
        ));
    }
    store_answers(&app).await?;
    Ok("ready")
}

/// `GET /metrics`: the Prometheus text format.
pub async fn metrics(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let metrics = &app.metrics;
    metrics
        .store_queue_depth
        .set(i64::try_from(app.store.queue_depth()).unwrap_or(i64::MAX));
    let length = app
        .store
        .audit_length()
        .await
        .map_err(|e| ApiError::storage(&e))?;
    metrics.audit_chain_length.set(length);
    if let Some(sealed) = app.store.sealed_values() {
        metrics
            .encryption_sealed_values
            .set(i64::try_from(sealed).unwrap_or(i64::MAX));
    }
    let text = metrics
        .render()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e))?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
