//! `/admin/v1/users`: create, list, show, delete, disable and enable accounts, and reset a
//! password (`admin:users`). Deleting or disabling goes through the same store operations as
//! `tessera user delete|disable`: every grant and token of the user is revoked and every
//! session ended.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::admin_scope::USERS;
use tessera_core::secret::Secret;
use tessera_core::store::{AdminStore, StoreError, UserStore};
use tessera_core::user::{User, hash_password};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{AdminError, ErrorBody};
use super::views::UserView;
use super::{audit_change, body, publish_user_revocations};
use crate::state::AppState;

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// At least 8 characters; stored as an Argon2id hash.
    pub password: String,
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// At least 8 characters; stored as an Argon2id hash.
    pub password: String,
}

#[utoipa::path(operation_id = "listUsers", get, path = "/admin/v1/users", tag = "users",
    security(("tessera" = ["admin:users"])),
    responses((status = 200, description = "Done", body = [UserView]), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody),
        (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, AdminError> {
    caller.require(USERS)?;
    let users = state.store().list_users().await?;
    Ok(Json(users.iter().map(UserView::from).collect::<Vec<_>>()).into_response())
}

#[utoipa::path(operation_id = "createUser", post, path = "/admin/v1/users", tag = "users", request_body = NewUser,
    security(("tessera" = ["admin:users"])),
    responses((status = 201, description = "Created", body = UserView), (status = 400, description = "Bad input: `invalid_request`", body = ErrorBody),
        (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody), (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody),
        (status = 409, description = "Exists already: `conflict`", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    new: Result<Json<NewUser>, JsonRejection>,
) -> Result<Response, AdminError> {
    caller.require(USERS)?;
    let new = body(new)?;
    let now = state.0.clock.now();
    // Argon2id costs tens of milliseconds: off the async threads.
    let user = tokio::task::spawn_blocking(move || {
        User::new(&new.username, new.email, new.name, &Secret::from_string(new.password), now)
    })
    .await
    .map_err(|e| tessera_core::Error::Internal(tessera_core::InternalError::new("hashing", e)))?
    .map_err(AdminError::Invalid)?;
    match state.store().create_user(&user).await {
        Err(StoreError::Conflict(what)) => {
            return Err(AdminError::Conflict(format!("{what} already exists")));
        }
        other => other?,
    }
    audit_change(&state, &caller, "admin_user_created", None, Some(&user.id));
    Ok((StatusCode::CREATED, Json(UserView::from(&user))).into_response())
}

#[utoipa::path(operation_id = "getUser", get, path = "/admin/v1/users/{username}", tag = "users",
    params(("username" = String, Path)),
    security(("tessera" = ["admin:users"])),
    responses((status = 200, description = "Done", body = UserView), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody),
        (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody), (status = 404, description = "No such record: `not_found`", body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Response, AdminError> {
    caller.require(USERS)?;
    let user = find(&state, &username).await?;
    Ok(Json(UserView::from(&user)).into_response())
}

/// Deletes a user: every grant and token of theirs is revoked and every session ended.
#[utoipa::path(operation_id = "deleteUser", delete, path = "/admin/v1/users/{username}", tag = "users",
    params(("username" = String, Path)),
    security(("tessera" = ["admin:users"])),
    responses((status = 204, description = "Done, no content"), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody), (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody),
        (status = 404, description = "No such record: `not_found`", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Response, AdminError> {
    caller.require(USERS)?;
    let user = find(&state, &username).await?;
    if !state.store().delete_user(&username, state.0.clock.now()).await? {
        return Err(AdminError::NotFound(format!("no user `{username}`")));
    }
    publish_user_revocations(&state, &user.id, None).await;
    audit_change(&state, &caller, "admin_user_deleted", None, Some(&user.id));
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Disables a user: they cannot sign in, and every grant, token and session of theirs ends.
#[utoipa::path(operation_id = "disableUser", post, path = "/admin/v1/users/{username}/disable", tag = "users",
    params(("username" = String, Path)),
    security(("tessera" = ["admin:users"])),
    responses((status = 200, description = "Done", body = UserView), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody),
        (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody), (status = 404, description = "No such record: `not_found`", body = ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Response, AdminError> {
    set_disabled(state, caller, username, true).await
}

/// Enables a disabled user again (nothing revoked is restored).
#[utoipa::path(operation_id = "enableUser", post, path = "/admin/v1/users/{username}/enable", tag = "users",
    params(("username" = String, Path)),
    security(("tessera" = ["admin:users"])),
    responses((status = 200, description = "Done", body = UserView), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody),
        (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody), (status = 404, description = "No such record: `not_found`", body = ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Response, AdminError> {
    set_disabled(state, caller, username, false).await
}

async fn set_disabled(
    state: AppState,
    caller: Caller,
    username: String,
    disabled: bool,
) -> Result<Response, AdminError> {
    caller.require(USERS)?;
    if !state.store().set_user_disabled(&username, disabled, state.0.clock.now()).await? {
        return Err(AdminError::NotFound(format!("no user `{username}`")));
    }
    let user = find(&state, &username).await?;
    if disabled {
        publish_user_revocations(&state, &user.id, None).await;
    }
    let event = if disabled { "admin_user_disabled" } else { "admin_user_enabled" };
    audit_change(&state, &caller, event, None, Some(&user.id));
    Ok(Json(UserView::from(&user)).into_response())
}

/// Sets a new password and ends every login session of the user (a reset after a compromise
/// signs the intruder out).
#[utoipa::path(operation_id = "resetUserPassword", post, path = "/admin/v1/users/{username}/password", tag = "users",
    params(("username" = String, Path)), request_body = PasswordReset,
    security(("tessera" = ["admin:users"])),
    responses((status = 204, description = "Done, no content"), (status = 400, description = "Bad input: `invalid_request`", body = ErrorBody), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody),
        (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody), (status = 404, description = "No such record: `not_found`", body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
    reset: Result<Json<PasswordReset>, JsonRejection>,
) -> Result<Response, AdminError> {
    caller.require(USERS)?;
    let reset = body(reset)?;
    let user = find(&state, &username).await?;
    if reset.password.chars().count() < 8 {
        return Err(AdminError::Invalid("a password needs at least 8 characters".into()));
    }
    let hash =
        tokio::task::spawn_blocking(move || hash_password(&Secret::from_string(reset.password)))
            .await
            .map_err(|e| {
                tessera_core::Error::Internal(tessera_core::InternalError::new("hashing", e))
            })?
            .map_err(AdminError::Invalid)?;
    if !state.store().set_user_password(&username, &hash).await? {
        return Err(AdminError::NotFound(format!("no user `{username}`")));
    }
    audit_change(&state, &caller, "admin_user_password_reset", None, Some(&user.id));
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn find(state: &AppState, username: &str) -> Result<User, AdminError> {
    state
        .store()
        .find_user_by_username(username)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no user `{username}`")))
}
