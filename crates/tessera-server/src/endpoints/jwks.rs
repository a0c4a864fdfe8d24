//! `/jwks.json`: the published signing keys (RFC 7517 §5, requirements R2.5).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let keys = state.0.keys.snapshot();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            // Short enough that a rotated-in key (published minutes ahead) is seen in time.
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        keys.jwks_json().to_owned(),
    )
}
