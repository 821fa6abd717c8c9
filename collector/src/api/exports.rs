//! `GET /v1/exports/{token}`: an access or portability export, by the unguessable token of its
//! download URL (32 random bytes; only its SHA-256 is stored). It is served for 7 days, then
//! answered 410 Gone and its file deleted. Every download, and every refused one, is in the
//! audit log (actor `export-link`, target the request id).

use super::App;
use crate::audit::NewAuditEntry;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

fn plain(status: StatusCode, message: &'static str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": message, "field": "token"})),
    )
        .into_response()
}

/// The handler.
pub async fn download(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    let status = |s: StatusCode| s.as_u16().to_string();
    if token.len() != 43
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        app.metrics
            .export_downloads
            .with_label_values(&["404"])
            .inc();
        return plain(StatusCode::NOT_FOUND, "no such export");
    }
    let found = match app.store.export(crate::tokens::hash(&token)).await {
        Ok(found) => found,
        Err(e) => return super::ApiError::storage(&e).into_response(),
    };
    let Some(export) = found else {
        app.metrics
            .export_downloads
            .with_label_values(&["404"])
            .inc();
        return plain(StatusCode::NOT_FOUND, "no such export");
    };
    let now = app.rights.clock.now_ms();
    let response = if export.file.is_empty() || now >= export.expires_at_ms {
        if let Err(e) = app.store.expire_exports(now, 100).await {
            return super::ApiError::storage(&e).into_response();
        }
        plain(StatusCode::GONE, "this export has expired and was deleted")
    } else {
        match std::fs::read(&export.file)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                app.store
                    .open_export(&export.request_id, &bytes)
                    .map_err(|e| e.to_string())
            }) {
            Ok(text) => {
                let mut response = text.into_response();
                let headers = response.headers_mut();
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                );
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                if let Ok(value) = HeaderValue::from_str(&format!(
                    "attachment; filename=\"{}.ndjson\"",
                    export.request_id
                )) {
                    headers.insert(CONTENT_DISPOSITION, value);
                }
                response
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read an export");
                plain(StatusCode::GONE, "this export is no longer available")
            }
        }
    };
    let code = status(response.status());
    app.metrics
        .export_downloads
        .with_label_values(&[code.as_str()])
        .inc();
    let entry = NewAuditEntry {
        at_ms: now,
        actor: "export-link".to_owned(),
        role: "public".to_owned(),
        action: "export.download".to_owned(),
        target: export.request_id,
        outcome: code,
    };
    match app.store.audit(entry).await {
        Ok(_) => response,
        Err(e) => super::ApiError::storage(&e).into_response(),
    }
}
