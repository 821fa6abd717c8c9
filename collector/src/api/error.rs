//! Error responses: `{"error": "...", "field": "events[3].purposes[0]" | null}` with the status
//! that says whether a retry can help.

use crate::body::BodyError;
use crate::store::StoreError;
use crate::validate::ValidationError;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// A request the API refuses or cannot serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    field: Option<String>,
    message: String,
    retry_after: Option<u64>,
}

/// Response marker: the field a 400 named, for the request log (never the message, which may
/// quote input).
#[derive(Clone, Debug)]
pub struct RejectedField(pub String);

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    field: Option<&'a str>,
}

impl ApiError {
    /// An error with this status, field and message.
    pub fn new(status: StatusCode, field: Option<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            field,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 naming `field`.
    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, Some(field.to_owned()), message)
    }

    /// 401 for a batch whose API key is missing or unknown.
    pub fn unknown_api_key() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            Some("api_key".to_owned()),
            "unknown or missing API key",
        )
    }

    /// 401 for the read/admin API.
    pub fn admin_unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            None,
            "missing or wrong bearer token",
        )
    }

    /// 403 for a browser origin that is not allowed.
    pub fn forbidden_origin() -> Self {
        ApiError::new(StatusCode::FORBIDDEN, None, "origin not allowed")
    }

    /// The status for a body that could not be read.
    pub fn body(error: &BodyError, limit: usize) -> Self {
        let status = match error {
            BodyError::UnsupportedType | BodyError::UnsupportedEncoding => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, None, error.message(limit))
    }

    /// 503 when storage failed: the client should retry later. The cause goes to the log.
    pub fn storage(error: &StoreError) -> Self {
        tracing::error!(error = %error, "storage unavailable");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, None, "storage unavailable")
    }

    /// 503 when the memory for request bodies is spent: retry shortly.
    pub fn busy() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "too many request bodies in flight",
        )
    }

    /// 429: over a rate limit; retry after `wait` (whole seconds).
    pub fn rate_limited(what: &str, wait: std::time::Duration) -> Self {
        ApiError {
            retry_after: Some(wait.as_secs().max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                None,
                format!("too many requests from this {what}"),
            )
        }
    }

    /// 403 for a client address outside `--admin-allow-ip`.
    pub fn address_not_allowed() -> Self {
        ApiError::new(StatusCode::FORBIDDEN, None, "address not allowed")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, e.field, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: &self.message,
            field: self.field.as_deref(),
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED && self.field.is_none() {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Some(field) = self.field {
            response.extensions_mut().insert(RejectedField(field));
        }
        response
    }
}
