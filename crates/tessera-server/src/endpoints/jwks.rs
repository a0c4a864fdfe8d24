//! `/jwks.json`: the published signing keys (RFC 7517 §5, requirements R2.5).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

/// How long a client may cache the JWKS: short enough that a rotated-in key (published
/// `key_publish_ahead_seconds`, 5 minutes by default, before it signs) is seen in time.
const CACHE_CONTROL: &str = "public, max-age=60";

pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let keys = state.0.keys.snapshot();
    (
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, CACHE_CONTROL)],
        keys.jwks_json().to_owned(),
    )
}
