//! Token management over the API (admin): make one (its secret is in this answer only), list
//! them, revoke one. The command line does the same on the database directly. A token change
//! and its audit entry commit together.

use super::audit::{Audited, Auditor};
use super::{ApiError, App};
use crate::roles::Role;
use crate::tokens::{self, TokenRecord};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: String,
    role: String,
}

/// A new token: its record and, this once, its secret.
#[derive(Serialize)]
struct Created {
    #[serde(flatten)]
    record: TokenRecord,
    token: String,
}

/// `POST /v1/tokens` with `{"name": "...", "role": "viewer"}`: 201 with the token.
pub async fn create(
    State(app): State<Arc<App>>,
    Extension(auditor): Extension<Auditor>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            None,
            format!("expected {{\"name\": \"...\", \"role\": \"viewer\"}}: {e}"),
        )
    })?;
    let role: Role = request
        .role
        .parse()
        .map_err(|e: crate::roles::UnknownRole| ApiError::bad_field("role", e.to_string()))?;
    tokens::check_name(&request.name).map_err(|e| ApiError::bad_field("name", e.to_string()))?;
    let new = tokens::generate(&request.name, role, crate::clock::now_ms())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string()))?;
    let audit = auditor.entry(new.record.id.clone(), StatusCode::CREATED.as_u16());
    app.store
        .create_token(new.record.clone(), audit)
        .await
        .map_err(|e| ApiError::storage(&e))?;
    let mut response = (
        StatusCode::CREATED,
        Json(Created {
            record: new.record,
            token: new.secret,
        }),
    )
        .into_response();
    response.extensions_mut().insert(Audited);
    Ok(response)
}

/// The token list.
#[derive(Serialize)]
pub struct TokenList {
    tokens: Vec<TokenRecord>,
}

/// `GET /v1/tokens`: every token (never a secret or hash), revoked ones with their time.
pub async fn list(State(app): State<Arc<App>>) -> Result<Json<TokenList>, ApiError> {
    let tokens = app
        .store
        .tokens()
        .await
        .map_err(|e| ApiError::storage(&e))?;
    Ok(Json(TokenList { tokens }))
}

/// `DELETE /v1/tokens/{id}`: revokes it at once; 404 if there is no such live token.
/// `admin-token` revokes the configured `--admin-token` (404 if it already was).
pub async fn revoke(
    State(app): State<Arc<App>>,
    Extension(auditor): Extension<Auditor>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let target = id.clone();
    let now = crate::clock::now_ms();
    let status = |revoked| if revoked { 200 } else { 404 };
    let revoked = if id == tokens::CONFIGURED_ADMIN {
        let hash = tokens::hash(app.admin_token.expose());
        app.store
            .revoke_configured_admin(hash, now, move |revoked| {
                auditor.entry(target, status(revoked))
            })
            .await
    } else {
        app.store
            .revoke_token(id, now, move |revoked| {
                auditor.entry(target, status(revoked))
            })
            .await
    }
    .map_err(|e| ApiError::storage(&e))?;
    let mut response = if revoked {
        Json(serde_json::json!({"revoked": true})).into_response()
    } else {
        ApiError::new(
            StatusCode::NOT_FOUND,
            Some("id".to_owned()),
            "no such live token",
        )
        .into_response()
    };
    response.extensions_mut().insert(Audited);
    Ok(response)
}
