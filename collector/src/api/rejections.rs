//! Counting rejected ingestion requests by status (4xx), for `GET /v1/stats`. Injected faults
//! are not verdicts on a request and are not counted.

use super::{App, InjectedFault};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// Counts the response's status when it is a 4xx.
pub async fn count(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status().is_client_error() && response.extensions().get::<InjectedFault>().is_none()
    {
        app.store.count_rejected(response.status().as_u16());
        app.metrics
            .batches_rejected
            .with_label_values(&[response.status().as_str()])
            .inc();
    }
    response
}
