//! Authorization server metadata (RFC 8414 §2) at `/.well-known/oauth-authorization-server`
//! and `/.well-known/openid-configuration`. Only what the server actually serves is listed:
//! grant types come from the grant registry, so a grant that is not registered is not
//! advertised.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use tessera_core::client::AuthMethod;
use tessera_core::grants::GrantRegistry;
use tessera_core::id_token::ID_TOKEN_ALG;

use crate::config::Settings;

use crate::state::AppState;

/// Renders the metadata document once, at start (RFC 8414 §2, OIDC Discovery §3).
pub fn render(settings: &Settings, grants: &GrantRegistry) -> String {
    let issuer = &settings.issuer;
    let grant_types: Vec<&str> = grants.grant_types().map(|g| g.as_str()).collect();
    let scopes: Vec<&str> = settings.scope_descriptions.keys().map(String::as_str).collect();
    let auth_methods: Vec<&str> = AuthMethod::ALL.iter().map(|m| m.as_str()).collect();
    let confidential_methods: Vec<&str> =
        AuthMethod::ALL.iter().filter(|m| **m != AuthMethod::None).map(|m| m.as_str()).collect();
    let assertion_algs = tessera_core::client_assertion::ALLOWED_NAMES;
    serde_json::json!({
        "issuer": issuer.as_str(),
        "authorization_endpoint": issuer.endpoint("/authorize"),
        "token_endpoint": issuer.endpoint("/token"),
        "userinfo_endpoint": issuer.endpoint("/userinfo"),
        "revocation_endpoint": issuer.endpoint("/revoke"),
        "device_authorization_endpoint": issuer.endpoint("/device_authorization"),
        "introspection_endpoint": issuer.endpoint("/introspect"),
        "end_session_endpoint": issuer.endpoint("/logout"),
        "jwks_uri": issuer.endpoint("/jwks.json"),
        "grant_types_supported": grant_types,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        // RFC 7009 §2.1 and RFC 7662 §2.1: the same client authentication as at /token.
        "revocation_endpoint_auth_methods_supported": confidential_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported": confidential_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        // RFC 8707: `resource` is accepted at /authorize and /token (not an RFC 8414 member).
        "resource_indicators_supported": true,
        "scopes_supported": scopes,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ID_TOKEN_ALG.as_str()],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "name", "preferred_username", "email", "email_verified"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        // RFC 9207 §3: `iss` is in every authorization response.
        "authorization_response_iss_parameter_supported": true,
    })
    .to_string()
}

pub async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.0.metadata.clone())
}
