//! `/admin/v1/clients`: register, list, show and delete clients, and rotate a secret
//! (`admin:clients`). The same operations as `tessera client …`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tessera_core::admin_scope::CLIENTS;
use tessera_core::client_id::ClientId;
use tessera_core::store::ClientStore;

use super::auth::Caller;
use super::error::{AdminError, ErrorBody};
use super::operations::{self, NewClient};
use super::views::{ClientSecretView, ClientView, CreatedClientView};
use super::{audit_change, body, client_id};
use crate::state::AppState;

/// Every registered client (dynamic ones included).
#[utoipa::path(operation_id = "listClients", get, path = "/admin/v1/clients", tag = "clients",
    security(("tessera" = ["admin:clients"])),
    responses((status = 200, description = "Done", body = [ClientView]), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody),
        (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, AdminError> {
    caller.require(CLIENTS)?;
    let clients = state.store().list_clients().await?;
    Ok(Json(clients.iter().map(ClientView::from).collect::<Vec<_>>()).into_response())
}

/// Registers a client; its secret, if it has one, is in this answer only.
#[utoipa::path(operation_id = "createClient", post, path = "/admin/v1/clients", tag = "clients", request_body = NewClient,
    security(("tessera" = ["admin:clients"])),
    responses((status = 201, description = "Created", body = CreatedClientView), (status = 400, description = "Bad input: `invalid_request`", body = ErrorBody),
        (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody), (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody),
        (status = 409, description = "Exists already: `conflict`", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    new: Result<Json<NewClient>, JsonRejection>,
) -> Result<Response, AdminError> {
    caller.require(CLIENTS)?;
    let new = body(new)?;
    let now = state.0.clock.now();
    let (client, secret, admin) = operations::create_client(state.store(), new, now).await?;
    audit_change(&state, &caller, "admin_client_created", Some(client.client_id.as_str()), None);
    let view = CreatedClientView {
        client: ClientView::from(&client),
        admin,
        client_secret: secret.map(|s| s.expose().to_owned()),
    };
    Ok((StatusCode::CREATED, no_store(Json(view))).into_response())
}

/// One client.
#[utoipa::path(operation_id = "getClient", get, path = "/admin/v1/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path)),
    security(("tessera" = ["admin:clients"])),
    responses((status = 200, description = "Done", body = ClientView), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody),
        (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody), (status = 404, description = "No such record: `not_found`", body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    caller.require(CLIENTS)?;
    let client = find(&state, &client_id(&id)?).await?;
    Ok(Json(ClientView::from(&client)).into_response())
}

/// Replaces what the operator set of a client (the body of a creation; omitted members take
/// their defaults). A confidential client keeps its secret; a client made confidential gets
/// one, in this answer only.
#[utoipa::path(operation_id = "updateClient", put, path = "/admin/v1/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path)), request_body = NewClient,
    security(("tessera" = ["admin:clients"])),
    responses((status = 200, description = "Done", body = CreatedClientView),
        (status = 400, description = "Bad input: `invalid_request`", body = ErrorBody),
        (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody),
        (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody),
        (status = 404, description = "No such record: `not_found`", body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    new: Result<Json<NewClient>, JsonRejection>,
) -> Result<Response, AdminError> {
    caller.require(CLIENTS)?;
    let id = client_id(&id)?;
    let new = body(new)?;
    let now = state.0.clock.now();
    let (client, secret, admin) = operations::update_client(state.store(), &id, new, now)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no client `{id}`")))?;
    state.0.clients.forget(&id);
    audit_change(&state, &caller, "admin_client_updated", Some(id.as_str()), None);
    let view = CreatedClientView {
        client: ClientView::from(&client),
        admin,
        client_secret: secret.map(|s| s.expose().to_owned()),
    };
    Ok(no_store(Json(view)))
}

/// Deletes a client; the server stops accepting it at once (other instances within 5 s).
#[utoipa::path(operation_id = "deleteClient", delete, path = "/admin/v1/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path)),
    security(("tessera" = ["admin:clients"])),
    responses((status = 204, description = "Done, no content"), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody), (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody),
        (status = 404, description = "No such record: `not_found`", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    caller.require(CLIENTS)?;
    let id = client_id(&id)?;
    if !state.store().delete_client(&id).await? {
        return Err(AdminError::NotFound(format!("no client `{id}`")));
    }
    state.0.clients.forget(&id);
    audit_change(&state, &caller, "admin_client_deleted", Some(id.as_str()), None);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Replaces a confidential client's secret; the new one is in this answer only, and the old
/// one stops working at once (other instances within 5 s).
#[utoipa::path(operation_id = "rotateClientSecret", post, path = "/admin/v1/clients/{client_id}/secret", tag = "clients",
    params(("client_id" = String, Path)),
    security(("tessera" = ["admin:clients"])),
    responses((status = 200, description = "Done", body = ClientSecretView), (status = 400, description = "Bad input: `invalid_request`", body = ErrorBody),
        (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody), (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody),
        (status = 404, description = "No such record: `not_found`", body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    caller.require(CLIENTS)?;
    let id = client_id(&id)?;
    let client = find(&state, &id).await?;
    if !client.token_endpoint_auth_method.uses_secret() {
        return Err(AdminError::Invalid(format!(
            "`{id}` authenticates with {}, not a secret",
            client.token_endpoint_auth_method
        )));
    }
    let secret = operations::rotate_client_secret(state.store(), &id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no client `{id}` with a secret")))?;
    state.0.clients.forget(&id);
    audit_change(&state, &caller, "admin_client_secret_rotated", Some(id.as_str()), None);
    let view = ClientSecretView {
        client_id: id.as_str().to_owned(),
        client_secret: secret.expose().to_owned(),
    };
    Ok(no_store(Json(view)).into_response())
}

async fn find(state: &AppState, id: &ClientId) -> Result<tessera_core::client::Client, AdminError> {
    state
        .store()
        .find_client(id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no client `{id}`")))
}

/// A response carrying a secret is never cached (RFC 6749 §5.1's rule for token answers).
fn no_store(json: Json<impl serde::Serialize>) -> Response {
    let mut response = json.into_response();
    tessera_http::no_store(&mut response);
    response
}
