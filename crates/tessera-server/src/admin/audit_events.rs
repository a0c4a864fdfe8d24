//! `/admin/v1/audit-events`: the latest events of the audit table (`admin:audit`; what
//! `tessera audit tail` reads; written when `audit_to_database` is on).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::admin_scope::AUDIT;
use tessera_core::store::AuditStore;
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::{AdminError, ErrorBody};
use super::views::AuditEventView;
use crate::state::AppState;

/// The most events one answer holds.
pub const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How many of the most recent events (default 50, at most 1000).
    pub limit: Option<u32>,
    /// Only events of this kind (`token_issued`, `login_failed`, `admin_client_created`, …).
    pub event: Option<String>,
    /// Only events about this client.
    pub client_id: Option<String>,
}

/// The most recent events, oldest first, optionally filtered.
#[utoipa::path(operation_id = "listAuditEvents", get, path = "/admin/v1/audit-events", tag = "audit", params(AuditQuery),
    security(("tessera" = ["admin:audit"])),
    responses((status = 200, description = "Done", body = [AuditEventView]), (status = 400, description = "Bad input: `invalid_request`", body = ErrorBody),
        (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody), (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody)))]
pub async fn query(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, AdminError> {
    caller.require(AUDIT)?;
    let Query(query) = query.map_err(|e| AdminError::Invalid(e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(AdminError::Invalid(format!("limit is 1 to {MAX_LIMIT}")));
    }
    let events = state.store().recent_audit_events(limit).await?;
    let wanted = |e: &&tessera_core::store::AuditEvent| {
        query.event.as_ref().is_none_or(|k| *k == e.event)
            && query.client_id.as_ref().is_none_or(|c| Some(c) == e.client_id.as_ref())
    };
    let views: Vec<AuditEventView> =
        events.iter().filter(wanted).map(AuditEventView::from).collect();
    Ok(Json(views).into_response())
}
