//! `/admin/v1/users/{username}/consents`: a user's consents, and withdrawing one, which
//! revokes every grant of that user to that client with its refresh and access tokens
//! (`admin:grants`; the same store operation as `tessera user revoke-consent`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tessera_core::admin_scope::GRANTS;
use tessera_core::store::{ConsentStore, UserStore};

use super::auth::Caller;
use super::error::{AdminError, ErrorBody};
use super::views::ConsentView;
use super::{audit_change, client_id, publish_user_revocations};
use crate::state::AppState;

#[utoipa::path(operation_id = "listConsents", get, path = "/admin/v1/users/{username}/consents", tag = "grants",
    params(("username" = String, Path)),
    security(("tessera" = ["admin:grants"])),
    responses((status = 200, description = "Done", body = [ConsentView]), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody),
        (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody), (status = 404, description = "No such record: `not_found`", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Response, AdminError> {
    caller.require(GRANTS)?;
    let user = user_id(&state, &username).await?;
    let consents = state.store().list_consents(&user).await?;
    Ok(Json(consents.iter().map(ConsentView::from).collect::<Vec<_>>()).into_response())
}

/// Withdraws the consent and revokes every grant of that user to that client.
#[utoipa::path(operation_id = "revokeConsent", delete, path = "/admin/v1/users/{username}/consents/{client_id}", tag = "grants",
    params(("username" = String, Path), ("client_id" = String, Path)),
    security(("tessera" = ["admin:grants"])),
    responses((status = 204, description = "Done, no content"), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody), (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody),
        (status = 404, description = "No such record: `not_found`", body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((username, id)): Path<(String, String)>,
) -> Result<Response, AdminError> {
    caller.require(GRANTS)?;
    let user = user_id(&state, &username).await?;
    let id = client_id(&id)?;
    if !state.store().revoke_consent(&user, &id, state.0.clock.now()).await? {
        return Err(AdminError::NotFound(format!("`{username}` has no consent for `{id}`")));
    }
    publish_user_revocations(&state, &user, Some(&id)).await;
    audit_change(&state, &caller, "admin_consent_revoked", Some(id.as_str()), Some(&user));
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn user_id(state: &AppState, username: &str) -> Result<String, AdminError> {
    let user = state.store().find_user_by_username(username).await?;
    user.map(|u| u.id).ok_or_else(|| AdminError::NotFound(format!("no user `{username}`")))
}
