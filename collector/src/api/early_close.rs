//! `Connection: close` on error answers to HTTP/1.1 requests that carry a body (ours: no
//! tower-http layer does this). Such an answer may leave the body unread (403 for the origin, 415,
//! 413 by the declared length, 429, 503, 408), and hyper then closes the connection; without the
//! header a keep-alive client (Node's agent, Python, curl) would see the close as a network
//! error and retry, instead of reading the status. HTTP/2 resets just the stream and needs none.

use axum::extract::Request;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use axum::http::{HeaderValue, Version};
use axum::middleware::Next;
use axum::response::Response;

/// Adds `Connection: close` to an error answer of an HTTP/1.x request with a body.
pub async fn close_on_error(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "0");
    let http1 = request.version() <= Version::HTTP_11;
    let mut response = next.run(request).await;
    let status = response.status();
    if http1 && has_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
