//! The HTTP API: routes, shared state and the markers middleware reads off responses.
//!
//! | route | who | what |
//! | --- | --- | --- |
//! | `POST /v1/batch` | browsers (CORS: `--allow-origin`), servers | ingest a batch |
//! | `GET /v1/events`, `GET /v1/stats` | admin token (CORS: `--admin-origin`) | read what was stored |
//! | `POST`/`DELETE /v1/admin/faults`, `POST /v1/admin/reset` | admin, `--fault-injection` only | tests |
//! | `GET /healthz` | anyone | liveness |
//!
//! Layers, outermost first: request log → (ingestion) rejection counter → CORS →
//! (admin) bearer auth → handler.

mod admin;
mod auth;
mod cors;
mod error;
mod ingest;
mod log;
mod read;
mod rejections;

pub use error::ApiError;
pub use ingest::IngestOutcome;

use crate::consent_check::SalePurposes;
use crate::faults::FaultQueue;
use crate::keys::{AdminToken, ApiKeys};
use crate::origin::OriginPolicy;
use crate::store::Store;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// What every handler shares.
#[derive(Debug)]
pub struct App {
    /// The database handle.
    pub store: Store,
    /// API keys and their environments.
    pub api_keys: ApiKeys,
    /// The read/admin API's bearer token.
    pub admin_token: AdminToken,
    /// Origins granted CORS on ingestion.
    pub ingest_origins: OriginPolicy,
    /// Origins granted CORS on the read/admin API.
    pub admin_origins: OriginPolicy,
    /// Purposes that count as a sale under CCPA.
    pub sale_purposes: SalePurposes,
    /// The fault queue, when fault injection is on.
    pub faults: Option<FaultQueue>,
    /// Largest body, before and after gzip.
    pub max_body_bytes: usize,
}

/// Response marker: close the connection instead of sending this response (the `drop` fault).
/// The server turns it into a connection error; nothing is written.
#[derive(Clone, Copy, Debug)]
pub struct DropConnection;

/// Response marker: this response is an injected fault, not a verdict on the request.
#[derive(Clone, Copy, Debug)]
pub struct InjectedFault;

/// The whole API over `app`.
pub fn router(app: Arc<App>) -> Router {
    let ingest = Router::new()
        .route("/v1/batch", post(ingest::handle).options(no_content))
        .route_layer(from_fn_with_state(Arc::clone(&app), cors::ingest))
        .route_layer(from_fn_with_state(Arc::clone(&app), rejections::count));

    let mut admin = Router::new()
        .route("/v1/events", get(read::events).options(no_content))
        .route("/v1/stats", get(read::stats).options(no_content));
    if app.faults.is_some() {
        admin = admin
            .route(
                "/v1/admin/faults",
                post(admin::set_faults)
                    .delete(admin::clear_faults)
                    .options(no_content),
            )
            .route("/v1/admin/reset", post(admin::reset).options(no_content));
    }
    let admin = admin
        .route_layer(from_fn_with_state(Arc::clone(&app), auth::require_admin))
        .route_layer(from_fn_with_state(Arc::clone(&app), cors::admin));

    Router::new()
        .route("/healthz", get(healthz))
        .merge(ingest)
        .merge(admin)
        .fallback(not_found)
        .with_state(app)
        .layer(from_fn(log::requests))
}

async fn healthz() -> &'static str {
    "ok"
}

/// `OPTIONS` without an `Origin` (not a CORS preflight).
async fn no_content() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, None, "not found")
}
