//! The login and consent pages in a real browser: headless Chromium, driven by playwright-core,
//! goes through the whole authorization code flow; the code is exchanged and the ID token
//! verified with panva/jose (OIDC Core §3.1, RFC 7636, RFC 9207).

use crate::common::node_tools::js_tools_available;
use crate::common::*;
use tessera_core::client::ClientRegistration;
use tessera_core::client_id::ClientId;
use tessera_core::grant_type::GrantType;
use tessera_core::keys::SigningAlg;
use tessera_core::redirect_uri::RedirectUri;
use tessera_core::scope::ScopeSet;
use tessera_core::secret::Secret;
use tessera_core::store::{ClientStore, UserStore};
use tessera_core::user::User;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signs_in_consents_and_the_id_token_verifies() {
    if !js_tools_available("the browser test", &["playwright-core", "jose"], true) {
        return;
    }
    let server = LiveServer::start(SigningAlg::ES256).await;
    let user = User::new(
        "alice",
        Some("alice@example.com".into()),
        None,
        &Secret::from_string("correct horse battery".into()),
        t0(),
    )
    .unwrap();
    server.store.create_user(&user).await.unwrap();
    // A loopback redirect URI on which nothing listens: the browser script catches it.
    let redirect = "http://127.0.0.1:9/callback";
    let (client, secret) = ClientRegistration {
        client_id: Some(ClientId::parse("browser-app").unwrap()),
        client_name: "Browser Test App".into(),
        redirect_uris: vec![RedirectUri::parse_for_registration(redirect).unwrap()],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: ScopeSet::parse("openid profile orders:read").unwrap(),
        ..Default::default()
    }
    .into_client(t0())
    .unwrap();
    server.store.create_client(&client).await.unwrap();

    let authorize_url = format!(
        "{}/authorize?response_type=code&client_id=browser-app&redirect_uri={}&scope=openid+profile+orders%3Aread&state=s-42&nonce=n-42&code_challenge={CHALLENGE}&code_challenge_method=S256",
        server.issuer,
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let config = serde_json::json!({
        "issuer": server.issuer,
        "authorize_url": authorize_url,
        "redirect_uri": redirect,
        "username": "alice",
        "password": "correct horse battery",
        "client_id": "browser-app",
        "client_secret": secret.unwrap().expose(),
        "code_verifier": VERIFIER,
        "nonce": "n-42",
        "screenshot_dir": std::env::var("TESSERA_SCREENSHOT_DIR").ok(),
    });
    let stdout = run_js("browser_flow.mjs", vec![config.to_string()]).await;
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["state"], "s-42");
    assert_eq!(result["iss"], server.issuer.as_str());
    let consent = result["consent_text"].as_str().unwrap();
    assert!(consent.contains("Browser Test App") && consent.contains("orders:read"), "{consent}");
    let claims = &result["id_token_claims"];
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(claims["aud"], "browser-app");
    assert_eq!(claims["nonce"], "n-42");
}
