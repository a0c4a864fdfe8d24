//! `/healthz` (the process is up) and `/readyz` (it can serve: the database answers).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;

use crate::state::AppState;

/// The longest `/readyz` takes: a probe that hangs is as bad as one that fails (an
/// orchestrator's probe gives up after its own timeout, often 1 s), so an unanswered ping
/// counts as not ready.
pub const READINESS_BOUND: Duration = Duration::from_millis(900);

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(READINESS_BOUND, state.store().ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
        Err(_) => {
            tracing::warn!(
                bound_ms = READINESS_BOUND.as_millis() as u64,
                "readiness check timed out"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}
