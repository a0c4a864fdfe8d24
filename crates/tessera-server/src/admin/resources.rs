//! `/admin/v1/resources`: the registry of resource servers (`admin:resources`; the same
//! operations as `tessera resource …`).

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::admin_scope::RESOURCES;
use tessera_core::store::ResourceStore;
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::{AdminError, ErrorBody};
use super::operations::{self, NewResource};
use super::views::ResourceView;
use super::{audit_with, body};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResourceQuery {
    /// The resource's identifier, in any spelling of it.
    pub resource: String,
}

#[utoipa::path(operation_id = "listResources", get, path = "/admin/v1/resources", tag = "resources",
    security(("tessera" = ["admin:resources"])),
    responses((status = 200, description = "Done", body = [ResourceView]), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody),
        (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, AdminError> {
    caller.require(RESOURCES)?;
    let resources = state.store().list_resources().await?;
    Ok(Json(resources.iter().map(ResourceView::from).collect::<Vec<_>>()).into_response())
}

#[utoipa::path(operation_id = "createResource", post, path = "/admin/v1/resources", tag = "resources", request_body = NewResource,
    security(("tessera" = ["admin:resources"])),
    responses((status = 201, description = "Created", body = ResourceView), (status = 400, description = "Bad input: `invalid_request`", body = ErrorBody),
        (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody), (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody),
        (status = 409, description = "Exists already: `conflict`", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    new: Result<Json<NewResource>, JsonRejection>,
) -> Result<Response, AdminError> {
    caller.require(RESOURCES)?;
    let new = body(new)?;
    let resource = operations::create_resource(state.store(), new, state.0.clock.now()).await?;
    state.0.resources.forget();
    audit_with(&state, &caller, "admin_resource_created", None, None, Some(&resource.resource));
    Ok((StatusCode::CREATED, Json(ResourceView::from(&resource))).into_response())
}

#[utoipa::path(operation_id = "deleteResource", delete, path = "/admin/v1/resources", tag = "resources", params(ResourceQuery),
    security(("tessera" = ["admin:resources"])),
    responses((status = 204, description = "Done, no content"), (status = 400, description = "Bad input: `invalid_request`", body = ErrorBody), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody),
        (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody), (status = 404, description = "No such record: `not_found`", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ResourceQuery>, QueryRejection>,
) -> Result<Response, AdminError> {
    caller.require(RESOURCES)?;
    let Query(query) = query.map_err(|e| AdminError::Invalid(e.body_text()))?;
    if !operations::delete_resource(state.store(), &query.resource).await? {
        return Err(AdminError::NotFound(format!("no resource `{}`", query.resource)));
    }
    state.0.resources.forget();
    audit_with(&state, &caller, "admin_resource_deleted", None, None, Some(&query.resource));
    Ok(StatusCode::NO_CONTENT.into_response())
}
