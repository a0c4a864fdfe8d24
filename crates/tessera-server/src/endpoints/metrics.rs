//! `/metrics` in the Prometheus text format.

use axum::http::header;
use axum::response::IntoResponse;

pub async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::metrics_handle().render(),
    )
}
