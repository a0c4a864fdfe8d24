//! `/admin/v1/grants`: the grants users made to clients (each one a refresh-token family and
//! the access tokens issued from it), and revoking one (`admin:grants`). Revoking goes
//! through the store operation `/revoke` uses: its refresh tokens stop working and its access
//! tokens are reported revoked; with a revocation list configured (R7.4) their `jti`s are
//! published to it, as `/revoke` does.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::admin_scope::GRANTS;
use tessera_core::store::{AdminStore, GrantStore, UserStore};
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::{AdminError, ErrorBody};
use super::views::GrantView;
use super::{audit_with, client_id};
use crate::state::AppState;

/// The most grants one answer holds.
pub const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrantQuery {
    /// Only grants of this user (by username).
    pub username: Option<String>,
    /// Only grants of the user with this `sub` (for users deleted since, or known by `sub`).
    pub sub: Option<String>,
    /// Only grants to this client.
    pub client_id: Option<String>,
    /// How many of the newest grants (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Grants, newest first, revoked ones included, optionally of one user and/or one client.
#[utoipa::path(operation_id = "listGrants", get, path = "/admin/v1/grants", tag = "grants", params(GrantQuery),
    security(("tessera" = ["admin:grants"])),
    responses((status = 200, description = "Done", body = [GrantView]), (status = 400, description = "Bad input: `invalid_request`", body = ErrorBody),
        (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody), (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody),
        (status = 404, description = "No such user: `not_found`", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<GrantQuery>, QueryRejection>,
) -> Result<Response, AdminError> {
    caller.require(GRANTS)?;
    let Query(query) = query.map_err(|e| AdminError::Invalid(e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(AdminError::Invalid(format!("limit is 1 to {MAX_LIMIT}")));
    }
    let user = match (query.username, query.sub) {
        (Some(_), Some(_)) => {
            return Err(AdminError::Invalid("give username or sub, not both".into()));
        }
        (Some(username), None) => {
            let user = state.store().find_user_by_username(&username).await?;
            Some(user.ok_or_else(|| AdminError::NotFound(format!("no user `{username}`")))?.id)
        }
        (None, sub) => sub,
    };
    let client = query.client_id.as_deref().map(client_id).transpose()?;
    let grants = state.store().list_grants(user.as_deref(), client.as_ref(), limit).await?;
    Ok(Json(grants.iter().map(GrantView::from).collect::<Vec<_>>()).into_response())
}

/// Revokes a grant: its refresh tokens stop working and its access tokens are revoked (and
/// published to the revocation list, when one is configured). Revoking a revoked grant
/// changes nothing.
#[utoipa::path(operation_id = "revokeGrant", delete, path = "/admin/v1/grants/{grant_id}", tag = "grants",
    params(("grant_id" = String, Path)),
    security(("tessera" = ["admin:grants"])),
    responses((status = 204, description = "Done, no content"), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody), (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody),
        (status = 404, description = "No such record: `not_found`", body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(grant_id): Path<String>,
) -> Result<Response, AdminError> {
    caller.require(GRANTS)?;
    let record = state
        .store()
        .find_grant(&grant_id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no grant `{grant_id}`")))?;
    let now = state.0.clock.now();
    state.store().revoke_grant(&grant_id, now).await?;
    if let Some(list) = &state.0.revocation_list {
        // The database stays the authority: a failed read is logged, the revocation stands.
        match state.store().grant_access_tokens(&grant_id, now).await {
            Ok(jtis) => list.publish(&jtis, now).await,
            Err(e) => tracing::error!(error = %e, "cannot read the revoked grant's access tokens"),
        }
    }
    let grant = &record.grant;
    audit_with(
        &state,
        &caller,
        "admin_grant_revoked",
        Some(grant.client_id.as_str()),
        Some(&grant.user_id),
        Some(&format!("grant {grant_id}")),
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}
