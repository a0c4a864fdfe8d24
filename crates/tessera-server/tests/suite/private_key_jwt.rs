//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9): the client
//! signs a short-lived JWT with a key whose public half it registered, inline (`jwks`) or at a
//! URL (`jwks_uri`, fetched behind an SSRF guard).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::flow::page_text;
use crate::common::*;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tessera_core::client::{AuthMethod, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::clock::Clock;
use tessera_core::scope::ScopeSet;
use tessera_server::config::RawConfig;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CLIENT: &str = "pkjwt";

/// A client's ES256 key pair: the private key to sign with, the public JWK to register.
struct ClientKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl ClientKey {
    fn generate(kid: &str) -> ClientKey {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        let encoding = EncodingKey::from_ec_der(der.as_ref());
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        ClientKey { kid: kid.to_owned(), encoding, jwk }
    }

    /// Signs `claims` with this key, `kid` in the header.
    fn sign(&self, claims: &Value) -> String {
        let header = Header { kid: Some(self.kid.clone()), ..Header::new(Algorithm::ES256) };
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn jwks(keys: &[&ClientKey]) -> String {
    serde_json::to_string(&JwkSet { keys: keys.iter().map(|k| k.jwk.clone()).collect() }).unwrap()
}

/// Valid claims for `client_id`, issued now, for 60 s: `aud` is the issuer identifier.
fn claims(app: &TestApp, client_id: &str) -> Value {
    let now = app.clock.now();
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "iat": now,
        "exp": now + 60,
        "jti": tessera_core::secret::random_id::<16>(),
    })
}

fn assertion_form(assertion: &str) -> String {
    format!("client_assertion_type={}&client_assertion={assertion}", urlencode(ASSERTION_TYPE))
}

async fn token_with(app: &TestApp, assertion: &str) -> Response {
    app.token(None, &format!("grant_type=client_credentials&{}", assertion_form(assertion))).await
}

fn pkjwt_client(id: &str) -> ClientRegistration {
    ClientRegistration {
        client_id: Some(ClientId::parse(id).unwrap()),
        client_name: id.into(),
        scope: ScopeSet::parse("orders:read").unwrap(),
        default_scope: ScopeSet::parse("orders:read").unwrap(),
        auth_method: Some(AuthMethod::PrivateKeyJwt),
        introspection: true,
        ..Default::default()
    }
}

/// An app with client [`CLIENT`] registered with the inline JWKS of its key.
async fn app_with_key() -> (TestApp, ClientKey) {
    let app = spawn_app().await;
    let key = ClientKey::generate("client-key-1");
    let secret = app
        .register(ClientRegistration { jwks: Some(jwks(&[&key])), ..pkjwt_client(CLIENT) })
        .await;
    assert!(secret.is_none(), "a private_key_jwt client has no secret");
    (app, key)
}

fn assert_invalid_client(res: &Response, case: &str) {
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{case}: {}", page_text(res));
    assert_eq!(res.json()["error"], "invalid_client", "{case}");
    assert!(res.header("www-authenticate").is_some(), "{case}");
    assert!(res.json().get("access_token").is_none());
}

#[tokio::test]
async fn rfc7523_2_2_a_valid_assertion_authenticates_the_client() {
    let (app, key) = app_with_key().await;
    let res = token_with(&app, &key.sign(&claims(&app, CLIENT))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    let claims_of_token =
        verify_with_jwks_of(&app, res.json()["access_token"].as_str().unwrap()).await;
    assert_eq!(claims_of_token["client_id"], CLIENT);
    assert_eq!(claims_of_token["sub"], CLIENT);

    // A `client_id` parameter that agrees with `sub` is fine.
    let form = format!(
        "grant_type=client_credentials&client_id={CLIENT}&{}",
        assertion_form(&key.sign(&claims(&app, CLIENT)))
    );
    assert_eq!(app.token(None, &form).await.status, StatusCode::OK);
    // No `kid`: the client has a single key, which is used.
    let header = Header::new(Algorithm::ES256);
    let no_kid = jsonwebtoken::encode(&header, &claims(&app, CLIENT), &key.encoding).unwrap();
    assert_eq!(token_with(&app, &no_kid).await.status, StatusCode::OK);
}

/// RFC 7523 §3 item 3, narrowed by draft-ietf-oauth-rfc7523bis §4 after the 2025
/// audience-injection disclosure: `aud` is the issuer identifier as one string; an endpoint
/// URL or an array (even one holding the issuer) is refused, at every endpoint.
#[tokio::test]
async fn rfc7523bis_4_client_assertion_aud_must_be_the_issuer_as_a_single_string() {
    let (app, key) = app_with_key().await;
    let with_aud = |aud: Value| {
        let mut c = claims(&app, CLIENT);
        c["aud"] = aud;
        key.sign(&c)
    };
    for aud in [
        json!(format!("{ISSUER}/token")),
        json!([ISSUER]),
        json!([format!("{ISSUER}/token")]),
        json!(["https://other.example", ISSUER]),
        json!(format!("{ISSUER}/")),
    ] {
        let res = token_with(&app, &with_aud(aud.clone())).await;
        assert_invalid_client(&res, &aud.to_string());
        let description = res.json()["error_description"].as_str().unwrap_or_default().to_owned();
        assert!(description.contains("aud must be the issuer identifier"), "{aud}: {description}");
    }
    let res = token_with(&app, &with_aud(json!(ISSUER))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    let token = res.json()["access_token"].as_str().unwrap().to_owned();
    // The same audience at introspection, where an endpoint URL is refused as well.
    for (aud, active) in
        [(json!(format!("{ISSUER}/introspect")), None), (json!(ISSUER), Some(true))]
    {
        let form = format!("token={token}&{}", assertion_form(&with_aud(aud.clone())));
        let res = app.post_form("/introspect", None, &form).await;
        match active {
            None => assert_invalid_client(&res, &aud.to_string()),
            Some(active) => assert_eq!(res.json()["active"], active, "{}", page_text(&res)),
        }
    }
}

#[tokio::test]
async fn rfc7523_3_7_the_same_jti_is_accepted_once() {
    let (app, key) = app_with_key().await;
    let assertion = key.sign(&claims(&app, CLIENT));
    assert_eq!(token_with(&app, &assertion).await.status, StatusCode::OK);
    assert_invalid_client(&token_with(&app, &assertion).await, "replayed assertion");
    // Another assertion with the same jti, later and otherwise valid: still a replay.
    let mut c = claims(&app, CLIENT);
    c["jti"] = jsonwebtoken::dangerous::insecure_decode::<Value>(&assertion).unwrap().claims["jti"]
        .clone();
    app.clock.advance(10);
    c["exp"] = (app.clock.now() + 60).into();
    assert_invalid_client(&token_with(&app, &key.sign(&c)).await, "jti reused");
    // A fresh jti works.
    assert_eq!(token_with(&app, &key.sign(&claims(&app, CLIENT))).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rfc7523_3_invalid_assertions_are_invalid_client() {
    let (app, key) = app_with_key().await;
    let now = app.clock.now();
    let valid = || claims(&app, CLIENT);
    let with = |name: &str, value: Value| {
        let mut c = valid();
        c[name] = value;
        c
    };
    let without = |name: &str| {
        let mut c = valid();
        c.as_object_mut().unwrap().remove(name);
        c
    };
    let other_key = ClientKey::generate(&key.kid);
    let unknown_kid = ClientKey { kid: "not-registered".into(), ..ClientKey::generate("x") };
    let hs256 = jsonwebtoken::encode(
        &Header { kid: Some(key.kid.clone()), ..Header::new(Algorithm::HS256) },
        &valid(),
        &EncodingKey::from_secret(b"a shared secret that nobody registered"),
    )
    .unwrap();
    // Header tricks on a correctly signed assertion: `alg` changed, or `none`.
    let signed = key.sign(&valid());
    let (_, rest) = signed.split_once('.').unwrap();
    let rs256_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"RS256","kid":"{}"}}"#, key.kid));
    let alg_swapped = format!("{rs256_header}.{rest}");
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    let payload = rest.split_once('.').unwrap().0;
    let alg_none = format!("{none_header}.{payload}.");
    let bad_signature = {
        let (head, _) = signed.rsplit_once('.').unwrap();
        let other = key.sign(&valid());
        format!("{head}.{}", other.rsplit_once('.').unwrap().1)
    };

    // The description names why, so each case is refused for its own reason.
    let claims_invalid = "signature, audience or claims are invalid";
    let only_issuer = "aud must be the issuer identifier";
    let cases: Vec<(&str, String, &str)> = vec![
        ("aud wrong", key.sign(&with("aud", "https://other.example/token".into())), only_issuer),
        (
            "aud is an endpoint",
            key.sign(&with("aud", format!("{ISSUER}/introspect").into())),
            only_issuer,
        ),
        ("aud missing", key.sign(&without("aud")), claims_invalid),
        ("exp more than 5 minutes ahead", key.sign(&with("exp", (now + 400).into())), "too long"),
        ("expired", key.sign(&with("exp", (now - 60).into())), "expired"),
        ("exp missing", key.sign(&without("exp")), claims_invalid),
        ("iss differs from sub", key.sign(&with("iss", "someone-else".into())), "iss and sub"),
        ("iss missing", key.sign(&without("iss")), claims_invalid),
        ("jti missing", key.sign(&without("jti")), claims_invalid),
        ("jti empty", key.sign(&with("jti", "".into())), "no jti"),
        ("not valid yet (nbf)", key.sign(&with("nbf", (now + 120).into())), "not valid yet"),
        ("issued in the future", key.sign(&with("iat", (now + 120).into())), "not valid yet"),
        ("HS256", hs256, "algorithm is not allowed"),
        ("alg swapped to RS256", alg_swapped, "differs from its key"),
        ("alg none", alg_none, "no readable sub"),
        ("unknown kid", unknown_kid.sign(&valid()), "key is not registered"),
        ("registered kid, another key", other_key.sign(&valid()), claims_invalid),
        ("signature of another assertion", bad_signature, claims_invalid),
        ("not a JWT", "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln".into(), "no readable sub"),
    ];
    for (case, assertion, reason) in cases {
        let res = token_with(&app, &assertion).await;
        assert_invalid_client(&res, case);
        let description = res.json()["error_description"].as_str().unwrap_or_default().to_owned();
        assert!(description.contains(reason), "{case}: {description}");
    }
    // `sub` naming another, existing client (iss too): verified with that client's keys.
    let other = app.register(ClientRegistration {
        jwks: Some(jwks(&[&ClientKey::generate("k")])),
        ..pkjwt_client("other")
    });
    other.await;
    let mut c = valid();
    c["iss"] = "other".into();
    c["sub"] = "other".into();
    assert_invalid_client(&token_with(&app, &key.sign(&c)).await, "sub of another client");
    // `client_id` parameter contradicting `sub`.
    let form = format!(
        "grant_type=client_credentials&client_id=other&{}",
        assertion_form(&key.sign(&valid()))
    );
    assert_invalid_client(&app.token(None, &form).await, "client_id differs from sub");
    // After all of that, a valid assertion still works.
    assert_eq!(token_with(&app, &key.sign(&valid())).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rfc7523_2_2_a_wrong_client_assertion_type_is_invalid_request() {
    let (app, key) = app_with_key().await;
    for assertion_type in ["urn:ietf:params:oauth:client-assertion-type:saml2-bearer", "jwt"] {
        let form = format!(
            "grant_type=client_credentials&client_assertion_type={}&client_assertion={}",
            urlencode(assertion_type),
            key.sign(&claims(&app, CLIENT))
        );
        let res = app.token(None, &form).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
        assert_eq!(res.json()["error"], "invalid_request");
    }
    let form = format!(
        "grant_type=client_credentials&client_assertion={}",
        key.sign(&claims(&app, CLIENT))
    );
    let res = app.token(None, &form).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_request");
}

#[tokio::test]
async fn rfc6749_2_3_an_assertion_with_a_secret_is_invalid_request() {
    let (app, key) = app_with_key().await;
    let svc = app.client("svc", AuthMethod::ClientSecretPost, "orders:read", "orders:read").await;
    // An assertion and a client_secret in the form.
    let form = format!(
        "grant_type=client_credentials&client_secret={svc}&{}",
        assertion_form(&key.sign(&claims(&app, CLIENT)))
    );
    let res = app.token(None, &form).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
    assert_eq!(res.json()["error"], "invalid_request");
    // An assertion and Basic credentials.
    let form = format!(
        "grant_type=client_credentials&{}",
        assertion_form(&key.sign(&claims(&app, CLIENT)))
    );
    let res = app.token(Some((CLIENT, "whatever")), &form).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_request");
}

#[tokio::test]
async fn rfc7523_a_private_key_jwt_client_authenticates_only_with_assertions() {
    let (app, key) = app_with_key().await;
    assert_invalid_client(
        &app.token(Some((CLIENT, "guess")), "grant_type=client_credentials").await,
        "Basic",
    );
    assert_invalid_client(
        &app.token(None, &format!("grant_type=client_credentials&client_id={CLIENT}")).await,
        "client_id alone",
    );
    // And a secret client cannot switch to an assertion, even one signed with a key it might
    // hold.
    app.client("svc", AuthMethod::ClientSecretBasic, "orders:read", "orders:read").await;
    let assertion = key.sign(&claims(&app, "svc"));
    assert_invalid_client(&token_with(&app, &assertion).await, "secret client with assertion");
}

#[tokio::test]
async fn rfc7523_assertions_authenticate_at_introspection_and_revocation() {
    let (app, key) = app_with_key().await;
    let res = token_with(&app, &key.sign(&claims(&app, CLIENT))).await;
    let token = res.json()["access_token"].as_str().unwrap().to_owned();
    let post = |path: &'static str, assertion: String| {
        let form = format!("token={token}&{}", assertion_form(&assertion));
        let app = &app;
        async move { app.post_form(path, None, &form).await }
    };
    let res = post("/introspect", key.sign(&claims(&app, CLIENT))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    assert_eq!(res.json()["active"], true);
    assert_eq!(res.json()["client_id"], CLIENT);
    let res = post("/revoke", key.sign(&claims(&app, CLIENT))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    let res = post("/introspect", key.sign(&claims(&app, CLIENT))).await;
    assert_eq!(res.json(), json!({ "active": false }));
}

/// A JWKS document served on a loopback port, counting fetches; stopped when dropped.
struct JwksServer {
    url: String,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_jwks(document: String) -> JwksServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = document.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    JwksServer { url: format!("http://127.0.0.1:{port}/jwks.json"), fetches, task }
}

#[tokio::test]
async fn rfc7523_keys_at_a_jwks_uri_are_fetched_and_cached() {
    let key = ClientKey::generate("remote-key");
    let server = serve_jwks(jwks(&[&key])).await;
    // Loopback is reachable only with `outbound_allow_private_networks` (tests, development).
    let app = spawn_app_configured(RawConfig {
        outbound_allow_private_networks: Some(true),
        ..Default::default()
    })
    .await;
    app.register(ClientRegistration { jwks_uri: Some(server.url.clone()), ..pkjwt_client(CLIENT) })
        .await;
    let res = token_with(&app, &key.sign(&claims(&app, CLIENT))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1);
    // Cached: the next request does not fetch again.
    let res = token_with(&app, &key.sign(&claims(&app, CLIENT))).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1);
    // An unknown kid may trigger a refetch, but not within seconds of the last one: a client
    // cannot make the server hammer its (or anyone's) URL.
    let stranger = ClientKey::generate("not-published");
    for _ in 0..3 {
        let res = token_with(&app, &stranger.sign(&claims(&app, CLIENT))).await;
        assert_invalid_client(&res, "unknown kid at the jwks_uri");
    }
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn ssrf_a_loopback_jwks_uri_is_refused_without_outbound_allow_private_networks() {
    let key = ClientKey::generate("remote-key");
    let server = serve_jwks(jwks(&[&key])).await;
    let app = spawn_app().await;
    assert!(!app.state.settings().outbound_allow_private_networks, "the production default");
    let port = server.url.split(':').nth(2).unwrap().split('/').next().unwrap().to_owned();
    let uris = [
        server.url.clone(),
        format!("https://127.0.0.1:{port}/jwks.json"),
        format!("https://localhost:{port}/jwks.json"),
        format!("https://[::1]:{port}/jwks.json"),
    ];
    for (i, uri) in uris.iter().enumerate() {
        let id = format!("client-{i}");
        app.register(ClientRegistration { jwks_uri: Some(uri.clone()), ..pkjwt_client(&id) }).await;
        let res = token_with(&app, &key.sign(&claims(&app, &id))).await;
        assert_invalid_client(&res, uri);
    }
    assert_eq!(server.fetches.load(Ordering::SeqCst), 0, "no request left the server");
}
