//! Authorization server metadata (RFC 8414 §2) at `/.well-known/oauth-authorization-server`
//! and `/.well-known/openid-configuration`. Only what the server actually serves is listed:
//! grant types come from the grant registry, so a grant that is not registered is not
//! advertised.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use tessera_core::client::AuthMethod;
use tessera_core::grants::GrantRegistry;
use tessera_core::issuer::Issuer;

use crate::state::AppState;

/// Renders the metadata document once, at start.
pub fn render(issuer: &Issuer, grants: &GrantRegistry) -> String {
    let grant_types: Vec<&str> = grants.grant_types().map(|g| g.as_str()).collect();
    serde_json::json!({
        "issuer": issuer.as_str(),
        "token_endpoint": issuer.endpoint("/token"),
        "jwks_uri": issuer.endpoint("/jwks.json"),
        "grant_types_supported": grant_types,
        // RFC 8414 §2 makes this REQUIRED; no response type is served until `/authorize` exists.
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": [
            AuthMethod::ClientSecretBasic.as_str(),
            AuthMethod::ClientSecretPost.as_str(),
        ],
    })
    .to_string()
}

pub async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.0.metadata.clone())
}
