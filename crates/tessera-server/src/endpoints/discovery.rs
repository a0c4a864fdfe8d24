//! Authorization server metadata (RFC 8414 §2) at `/.well-known/oauth-authorization-server`
//! and `/.well-known/openid-configuration`. Only what the server actually serves is listed:
//! endpoints come from the endpoint registry (`routes::advertised`, the list the router is
//! built from) and grant types from the grant registry, so a disabled feature or a grant that
//! is not registered is not advertised.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use tessera_core::client::AuthMethod;
use tessera_core::grants::GrantRegistry;
use tessera_core::id_token::ID_TOKEN_ALGS;

use crate::config::Settings;
use crate::features::Feature;

use crate::state::AppState;

/// An advertised endpoint: the metadata member that names its URL, and its path.
pub struct Advertised {
    pub member: &'static str,
    pub path: &'static str,
    /// For an endpoint that authenticates clients, which methods it accepts: advertised as
    /// `<member>_auth_methods_supported` and `<member>_auth_signing_alg_values_supported`
    /// (RFC 8414 §2).
    pub client_auth: Option<ClientAuthentication>,
}

/// The client authentication methods an endpoint accepts.
#[derive(Clone, Copy, Debug)]
pub enum ClientAuthentication {
    /// Every method, `none` (public clients) included.
    AnyMethod,
    /// Every method but `none`.
    Confidential,
}

/// Renders the metadata document once, at start (RFC 8414 §2, OIDC Discovery §3), with the
/// `advertised` endpoints.
pub fn render(
    settings: &Settings,
    grants: &GrantRegistry,
    advertised: impl IntoIterator<Item = Advertised>,
) -> String {
    let issuer = &settings.issuer;
    let grant_types: Vec<&str> = grants.grant_types().map(|g| g.as_str()).collect();
    let scopes: Vec<&str> = settings.scope_descriptions.keys().map(String::as_str).collect();
    let assertion_algs = tessera_core::client_assertion::ALLOWED_NAMES;
    let mut document = serde_json::json!({
        "issuer": issuer.as_str(),
        "grant_types_supported": grant_types,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        // RFC 8707: `resource` is accepted at /authorize and /token (not an RFC 8414 member).
        "resource_indicators_supported": true,
        "scopes_supported": scopes,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ID_TOKEN_ALGS.map(|a| a.as_str()),
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "name", "preferred_username", "email", "email_verified"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        // RFC 9449 §5.1: DPoP proofs are checked at /token with this allow-list.
        "dpop_signing_alg_values_supported": assertion_algs,
        // RFC 9207 §3: `iss` is in every authorization response.
        "authorization_response_iss_parameter_supported": true,
    });
    let mut aliases = serde_json::Map::new();
    if let Some(members) = document.as_object_mut() {
        // draft-ietf-oauth-client-id-metadata-document: advertised only when accepted.
        if settings.registration.metadata_documents {
            members.insert("client_id_metadata_document_supported".into(), true.into());
        }
        if settings.features.is_on(Feature::PushedAuthorization) {
            // RFC 9126 §5: pushing is required per client, not by the server.
            members.insert("require_pushed_authorization_requests".into(), false.into());
        }
        // RFC 8705 §3.3: certificate-bound tokens, whenever a certificate can reach us.
        if settings.mtls.certificates() {
            members.insert("tls_client_certificate_bound_access_tokens".into(), true.into());
        }
        for endpoint in advertised {
            // RFC 8705 §5: with TLS here, the endpoints that read a client certificate are
            // their own mTLS aliases (the same URLs, which request a certificate).
            let reads_certificate = endpoint.client_auth.is_some()
                || endpoint.member == "pushed_authorization_request_endpoint";
            if settings.mtls.listener.is_some() && reads_certificate {
                aliases.insert(endpoint.member.into(), issuer.endpoint(endpoint.path).into());
            }
            members.insert(endpoint.member.into(), issuer.endpoint(endpoint.path).into());
            let Some(client_auth) = endpoint.client_auth else { continue };
            let methods: Vec<&str> = AuthMethod::ALL
                .iter()
                .filter(|m| match client_auth {
                    ClientAuthentication::AnyMethod => true,
                    ClientAuthentication::Confidential => **m != AuthMethod::None,
                })
                // RFC 8705 §2: only when a certificate can reach the request (and, for
                // tls_client_auth, a CA can vouch for it).
                .filter(|m| match m {
                    AuthMethod::TlsClientAuth => settings.mtls.tls_client_auth(),
                    AuthMethod::SelfSignedTlsClientAuth => settings.mtls.certificates(),
                    _ => true,
                })
                .map(|m| m.as_str())
                .collect();
            let member = endpoint.member;
            members.insert(format!("{member}_auth_methods_supported"), methods.into());
            members.insert(
                format!("{member}_auth_signing_alg_values_supported"),
                serde_json::json!(assertion_algs),
            );
        }
    }
    if let Some(members) = document.as_object_mut()
        && !aliases.is_empty()
    {
        members.insert("mtls_endpoint_aliases".into(), aliases.into());
    }
    document.to_string()
}

pub async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.0.metadata.clone())
}
