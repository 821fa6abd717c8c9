//! Test controls, present only with `--fault-injection`: queue faults for the next batch
//! requests, clear them, and delete everything stored.

use super::audit::{Audited, Auditor};
use super::{ApiError, App};
use crate::faults::{Fault, FaultQueue};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsRequest {
    next: Vec<String>,
}

/// How many faults wait.
#[derive(Serialize)]
pub struct Queued {
    queued: usize,
}

/// Whether a reset happened.
#[derive(Serialize)]
pub struct ResetDone {
    reset: bool,
}

fn queue(app: &App) -> Result<&FaultQueue, ApiError> {
    app.faults
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, None, "not found"))
}

/// `POST /v1/admin/faults` with `{"next": ["500", "429:5", "drop"]}`: replaces the queue.
pub async fn set_faults(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Json<Queued>, ApiError> {
    let queue = queue(&app)?;
    let request: FaultsRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            Some("next".to_owned()),
            format!("expected {{\"next\": [\"500\", \"429:5\", \"drop\"]}}: {e}"),
        )
    })?;
    let faults = request
        .next
        .iter()
        .enumerate()
        .map(|(i, text)| {
            text.parse::<Fault>()
                .map_err(|e| ApiError::bad_field(&format!("next[{i}]"), e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let queued = faults.len();
    queue.set(faults);
    tracing::info!(queued, "faults queued");
    Ok(Json(Queued { queued }))
}

/// `DELETE /v1/admin/faults`: clears the queue.
pub async fn clear_faults(State(app): State<Arc<App>>) -> Result<Json<Queued>, ApiError> {
    queue(&app)?.clear();
    Ok(Json(Queued { queued: 0 }))
}

/// `POST /v1/admin/reset`: deletes every stored batch, event, consent change and counter, and
/// clears queued faults. The deletion and its audit entry commit together.
pub async fn reset(
    State(app): State<Arc<App>>,
    Extension(auditor): Extension<Auditor>,
) -> Result<Response, ApiError> {
    queue(&app)?.clear();
    app.store
        .reset(auditor.entry("all stored data", 200))
        .await
        .map_err(|e| ApiError::storage(&e))?;
    tracing::info!("all stored data deleted");
    let mut response = Json(ResetDone { reset: true }).into_response();
    response.extensions_mut().insert(Audited);
    Ok(response)
}
