//! oauth4webapi (Node.js), a client nobody here wrote, against a real listening server: a
//! DPoP-bound token (RFC 9449) from proofs it makes, and a pushed authorization request
//! (RFC 9126) whose `request_uri` `/authorize` then takes once.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_core::client::ClientRegistration;
use tessera_core::client_id::ClientId;
use tessera_core::grant_type::GrantType;
use tessera_core::keys::SigningAlg;
use tessera_core::redirect_uri::RedirectUri;
use tessera_core::scope::ScopeSet;
use tessera_core::store::ClientStore;
use tower::ServiceExt;

use crate::common::node_tools::js_tools_available;
use crate::common::*;

const REDIRECT: &str = "https://app.example/cb";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9449_rfc9126_oauth4webapi_gets_a_dpop_token_and_pushes_a_request() {
    if !js_tools_available("the oauth4webapi interop test", &["oauth4webapi", "jose"], false) {
        return;
    }
    let server = LiveServer::start(SigningAlg::ES256).await;
    let (client, secret) = ClientRegistration {
        client_id: Some(ClientId::parse("o4w").unwrap()),
        client_name: "o4w".into(),
        redirect_uris: vec![RedirectUri::parse_for_registration(REDIRECT).unwrap()],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::ClientCredentials],
        scope: ScopeSet::parse("openid a:r").unwrap(),
        default_scope: ScopeSet::parse("a:r").unwrap(),
        ..Default::default()
    }
    .into_client(t0())
    .unwrap();
    server.store.create_client(&client).await.unwrap();
    let secret = secret.unwrap().expose().to_owned();
    let args = vec![server.issuer.clone(), "o4w".into(), secret, REDIRECT.into()];
    let stdout = run_js("oauth4webapi_dpop_par.mjs", args).await;
    let out: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();

    // RFC 9449 §5: the library saw a DPoP token (it lower-cases token_type), bound to its key.
    assert_eq!(out["token_type"], "dpop");
    let token = out["access_token"].as_str().unwrap();
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["cnf"]["jkt"], out["jkt"]);

    // RFC 9126: the pushed request's request_uri works once at /authorize.
    assert!(out["expires_in"].as_i64().unwrap() <= 60);
    let request_uri = out["request_uri"].as_str().unwrap();
    let path = format!("/authorize?client_id=o4w&request_uri={}", urlencode(request_uri));
    let get = |path: String| {
        let router = tessera_server::router(server.state.clone());
        async move {
            router.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap().status()
        }
    };
    assert_eq!(get(path.clone()).await, StatusCode::OK, "the login page of the pushed request");
    assert_eq!(get(path).await, StatusCode::BAD_REQUEST, "a request_uri is used once");
}
