//! The admin HTTP API under `/admin/v1` (issue 15 item 5, requirements R6.2): clients, users,
//! consents and grants, signing keys, the resource registry and the audit trail.
//!
//! - **Who may call it**: bearers of Tessera's own access tokens with the route's `admin:*`
//!   scope (`tessera_core::admin_scope`), which only clients flagged first-party admin by the
//!   CLI (`tessera client create … --admin`) can be granted ([`auth`]). The CLI keeps working
//!   on the database directly, for bootstrap.
//! - **One set of rules**: the operations shared with the CLI are in [`operations`], the
//!   shapes shown by both in [`views`]; deleting or disabling a user is the store operation
//!   the CLI uses (grants, tokens and sessions end).
//! - **Every change audited**: an `admin_*` event naming the calling client and user.
//! - **Errors**: JSON `{"error", "error_description"}` ([`error`]); bad input is a 400.
//! - **Its description**: an OpenAPI 3.1 document derived from the handlers with utoipa,
//!   served at `/admin/v1/openapi.json` ([`openapi`]).

pub mod audit_events;
pub mod auth;
pub mod clients;
pub mod consents;
pub mod error;
pub mod grants;
pub mod keys;
pub mod openapi;
pub mod operations;
pub mod resources;
pub mod users;
pub mod views;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::routing::{delete, get, post};
use tessera_core::client_id::ClientId;

use self::auth::Caller;
use self::error::AdminError;
use crate::audit::{self, AuditEvent};
use crate::state::AppState;

/// The routes of the admin API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi::document))
        .route("/admin/v1/clients", get(clients::list).post(clients::create))
        .route(
            "/admin/v1/clients/{client_id}",
            get(clients::show).put(clients::update).delete(clients::delete),
        )
        .route("/admin/v1/clients/{client_id}/secret", post(clients::rotate_secret))
        .route("/admin/v1/users", get(users::list).post(users::create))
        .route("/admin/v1/users/{username}", get(users::show).delete(users::delete))
        .route("/admin/v1/users/{username}/disable", post(users::disable))
        .route("/admin/v1/users/{username}/enable", post(users::enable))
        .route("/admin/v1/users/{username}/password", post(users::reset_password))
        .route("/admin/v1/users/{username}/consents", get(consents::list))
        .route("/admin/v1/users/{username}/consents/{client_id}", delete(consents::revoke))
        .route("/admin/v1/grants", get(grants::list))
        .route("/admin/v1/grants/{grant_id}", delete(grants::revoke))
        .route("/admin/v1/keys", get(keys::list))
        .route("/admin/v1/keys/rotate", post(keys::rotate))
        .route(
            "/admin/v1/resources",
            get(resources::list).post(resources::create).delete(resources::delete),
        )
        .route("/admin/v1/audit-events", get(audit_events::query))
}

/// A JSON body, or a 400 `invalid_request` saying what is wrong with it.
fn body<T>(parsed: Result<Json<T>, JsonRejection>) -> Result<T, AdminError> {
    parsed.map(|Json(value)| value).map_err(|e| AdminError::Invalid(e.body_text()))
}

/// A client_id from the path.
fn client_id(raw: &str) -> Result<ClientId, AdminError> {
    ClientId::parse(raw).map_err(|e| AdminError::Invalid(format!("client_id `{raw}` {e}")))
}

/// Publishes the unexpired access tokens of the user's revoked grants (of `client_id` only,
/// when given) to the revocation list, when one is configured (R7.4), as `tessera user
/// delete|disable|revoke-consent` does. The database stays the authority: a failed read is
/// logged and the revocation stands.
async fn publish_user_revocations(state: &AppState, user_id: &str, client_id: Option<&ClientId>) {
    use tessera_core::store::GrantStore;
    let Some(list) = &state.0.revocation_list else { return };
    let now = state.0.clock.now();
    match state.store().revoked_user_access_tokens(user_id, client_id, now).await {
        Ok(jtis) => list.publish(&jtis, now).await,
        Err(e) => tracing::error!(error = %e, "cannot read the user's revoked access tokens"),
    }
}

/// Records a change made through the API (requirements R4.4).
fn audit_change(
    state: &AppState,
    caller: &Caller,
    event: &str,
    client_id: Option<&str>,
    sub: Option<&str>,
) {
    audit_with(state, caller, event, client_id, sub, None);
}

/// [`audit_change`] with a detail (a resource identifier, a key id).
fn audit_with(
    state: &AppState,
    caller: &Caller,
    event: &str,
    client_id: Option<&str>,
    sub: Option<&str>,
    detail: Option<&str>,
) {
    audit::emit(
        state,
        AuditEvent {
            event: event.into(),
            outcome: "success".into(),
            client_id: client_id.map(str::to_owned),
            sub: sub.map(str::to_owned),
            reason: detail.map(str::to_owned),
            actor: Some(caller.actor()),
            ..Default::default()
        },
    );
}
