//! The admin API's OpenAPI 3.1 document, derived by utoipa from the handlers' `#[utoipa::path]`
//! attributes and the request and response types, with the security scheme added for this
//! issuer: OAuth 2.0 (client credentials or authorization code at this server's endpoints)
//! with the `admin:*` scopes.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::Server;
use utoipa::openapi::security::{
    AuthorizationCode, ClientCredentials, Flow, OAuth2, Scopes, SecurityScheme,
};

use super::{
    audit_events, clients, consents, error, grants, keys, operations, resources, users, views,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera admin API", version = "1",
        description = "Administration of a Tessera authorization server. Every route needs an \
            access token of this server with the route's admin:* scope, which only clients \
            flagged first-party admin (`tessera client create --admin`) can obtain."),
    paths(
        clients::list, clients::create, clients::show, clients::update, clients::delete, clients::rotate_secret,
        users::list, users::create, users::show, users::delete, users::disable, users::enable,
        users::reset_password,
        consents::list, consents::revoke, grants::list, grants::revoke,
        keys::list, keys::rotate,
        resources::list, resources::create, resources::delete,
        audit_events::query,
    ),
    components(schemas(
        views::ClientView, views::CreatedClientView, views::ClientSecretView, views::UserView,
        views::ConsentView, views::GrantView, views::KeyView, views::ResourceView, views::AuditEventView,
        operations::NewClient, operations::NewResource, users::NewUser, users::PasswordReset,
        keys::KeyRotation, error::ErrorBody,
    )),
    tags(
        (name = "clients", description = "admin:clients"),
        (name = "users", description = "admin:users"),
        (name = "grants", description = "admin:grants — consents and the grants they hold"),
        (name = "keys", description = "admin:keys"),
        (name = "resources", description = "admin:resources — the resource registry"),
        (name = "audit", description = "admin:audit"),
    )
)]
struct AdminApi;

/// What each admin scope allows, for the security scheme.
const SCOPES: [(&str, &str); 6] = [
    (tessera_core::admin_scope::CLIENTS, "register, read, delete clients; rotate secrets"),
    (tessera_core::admin_scope::USERS, "create, read, delete, disable users; reset passwords"),
    (tessera_core::admin_scope::GRANTS, "list and revoke consents and grants"),
    (tessera_core::admin_scope::KEYS, "list and rotate signing keys"),
    (tessera_core::admin_scope::RESOURCES, "manage the registry of resource servers"),
    (tessera_core::admin_scope::AUDIT, "read the audit trail"),
];

/// The document for the server at `issuer`.
pub fn document_for(issuer: &tessera_core::issuer::Issuer) -> utoipa::openapi::OpenApi {
    let mut doc = AdminApi::openapi();
    doc.servers = Some(vec![Server::new(issuer.as_str())]);
    let scopes = || Scopes::from_iter(SCOPES.iter().map(|(s, d)| (s.to_string(), d.to_string())));
    let flows = [
        Flow::ClientCredentials(ClientCredentials::new(issuer.endpoint("/token"), scopes())),
        Flow::AuthorizationCode(AuthorizationCode::new(
            issuer.endpoint("/authorize"),
            issuer.endpoint("/token"),
            scopes(),
        )),
    ];
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme("tessera", SecurityScheme::OAuth2(OAuth2::new(flows)));
    doc
}

/// `GET /admin/v1/openapi.json`: public, as a discovery document is.
pub async fn document(State(state): State<AppState>) -> impl IntoResponse {
    let doc = document_for(&state.settings().issuer);
    let body = doc.to_json().unwrap_or_else(|_| "{}".into());
    ([(header::CONTENT_TYPE, "application/json")], body)
}
