//! DPoP at the token endpoint (RFC 9449 §5, §8, §11.1): proofs checked, tokens bound to the
//! proof's key (`cnf.jkt`, `token_type` DPoP), replays refused, server nonces.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tessera_core::client::{AccessTokenFormat, AuthMethod, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::clock::Clock;
use tessera_core::scope::ScopeSet;
use tessera_server::config::RawConfig;

use crate::common::*;

const TOKEN_URL: &str = "https://auth.test.example/token";

struct ProofKey {
    encoding: EncodingKey,
    jwk: Jwk,
}

impl ProofKey {
    fn generate() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let encoding = EncodingKey::from_ec_der(pair.to_pkcs8v1().unwrap().as_ref());
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        ProofKey { encoding, jwk }
    }

    fn jkt(&self) -> String {
        let jwk = serde_json::to_value(&self.jwk).unwrap();
        tessera_jose::dpop::thumbprint(jwk.as_object().unwrap()).unwrap()
    }

    fn proof(&self, claims: Value) -> String {
        let header = Header {
            typ: Some("dpop+jwt".into()),
            jwk: Some(self.jwk.clone()),
            ..Header::new(Algorithm::ES256)
        };
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

fn claims(app: &TestApp) -> Value {
    json!({
        "jti": tessera_core::secret::random_id::<16>(),
        "htm": "POST",
        "htu": TOKEN_URL,
        "iat": app.clock.now(),
    })
}

async fn token_with_proof(app: &TestApp, client: (&str, &str), proof: &str) -> Response {
    let request = Request::post("/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, basic_header(client.0, client.1))
        .header("dpop", proof)
        .body(Body::from("grant_type=client_credentials"))
        .unwrap();
    app.request(request).await
}

async fn app_with_client() -> (TestApp, String) {
    let app = spawn_app_configured(RawConfig::default()).await;
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    (app, secret)
}

/// RFC 9449 §5 and §6.1: a token issued with a proof is of type DPoP and carries the key's
/// thumbprint in `cnf.jkt`, also in introspection (§6.2); it is no bearer token at /userinfo.
#[tokio::test]
async fn rfc9449_6_token_is_bound_to_the_proofs_key() {
    let (app, secret) = app_with_client().await;
    let key = ProofKey::generate();
    let res = token_with_proof(&app, ("svc", &secret), &key.proof(claims(&app))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", String::from_utf8_lossy(&res.body));
    let body = res.json();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    let token_claims = verify_with_jwks_of(&app, token).await;
    assert_eq!(token_claims["cnf"], json!({"jkt": key.jkt()}));

    let rs = ClientRegistration {
        client_id: Some(ClientId::parse("rs").unwrap()),
        client_name: "rs".into(),
        introspection: true,
        ..Default::default()
    };
    let rs = app.register(rs).await.unwrap();
    let described =
        app.post_form("/introspect", Some(("rs", &rs)), &format!("token={token}")).await;
    assert_eq!(described.json()["token_type"], "DPoP");
    assert_eq!(described.json()["cnf"], json!({"jkt": key.jkt()}));
    assert_eq!(app.userinfo(token).await.status, StatusCode::UNAUTHORIZED);

    // Without a proof, a Bearer token as before.
    let plain = app.token(Some(("svc", &secret)), "grant_type=client_credentials").await.json();
    assert_eq!(plain["token_type"], "Bearer");
    assert!(
        verify_with_jwks_of(&app, plain["access_token"].as_str().unwrap())
            .await
            .get("cnf")
            .is_none()
    );
}

/// RFC 9449 §11.1: a proof is accepted once.
#[tokio::test]
async fn rfc9449_11_1_replayed_proof_is_refused() {
    let (app, secret) = app_with_client().await;
    let proof = ProofKey::generate().proof(claims(&app));
    assert_eq!(token_with_proof(&app, ("svc", &secret), &proof).await.status, StatusCode::OK);
    let replay = token_with_proof(&app, ("svc", &secret), &proof).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.json()["error"], "invalid_dpop_proof");
    assert!(replay.json()["error_description"].as_str().unwrap().contains("already used"));
}

/// RFC 9449 §4.3: a proof for another method or URL, or an old one, is refused.
#[tokio::test]
async fn rfc9449_4_3_wrong_htm_htu_or_stale_iat_is_refused_at_token() {
    let (app, secret) = app_with_client().await;
    let key = ProofKey::generate();
    let mut cases = Vec::new();
    let mut c = claims(&app);
    c["htm"] = "GET".into();
    cases.push(c);
    let mut c = claims(&app);
    c["htu"] = "https://auth.test.example/introspect".into();
    cases.push(c);
    let mut c = claims(&app);
    c["htu"] = "https://elsewhere.example/token".into();
    cases.push(c);
    let mut c = claims(&app);
    c["iat"] = (app.clock.now() - 120).into();
    cases.push(c);
    for c in cases {
        let res = token_with_proof(&app, ("svc", &secret), &key.proof(c.clone())).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{c}");
        assert_eq!(res.json()["error"], "invalid_dpop_proof", "{c}");
    }
    // §4.3: a query on the URL does not matter.
    let mut c = claims(&app);
    c["htu"] = format!("{TOKEN_URL}?x=1").into();
    assert_eq!(
        token_with_proof(&app, ("svc", &secret), &key.proof(c)).await.status,
        StatusCode::OK
    );
}

/// RFC 9449 §5.2: a client registered with `dpop_bound_access_tokens` must send a proof.
#[tokio::test]
async fn rfc9449_5_2_client_requiring_dpop_is_refused_without_a_proof() {
    let app = spawn_app().await;
    let secret = app
        .register(ClientRegistration {
            client_id: Some(ClientId::parse("bound").unwrap()),
            client_name: "bound".into(),
            scope: ScopeSet::parse("a:r").unwrap(),
            default_scope: ScopeSet::parse("a:r").unwrap(),
            dpop_bound_access_tokens: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let res = app.token(Some(("bound", &secret)), "grant_type=client_credentials").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_dpop_proof");
    let proof = ProofKey::generate().proof(claims(&app));
    let res = token_with_proof(&app, ("bound", &secret), &proof).await;
    assert_eq!(res.json()["token_type"], "DPoP");
}

/// Opaque tokens carry no binding, so a client with opaque tokens cannot get a DPoP one.
#[tokio::test]
async fn rfc9449_6_opaque_client_cannot_get_a_bound_token() {
    let app = spawn_app().await;
    let secret = app
        .register(ClientRegistration {
            client_id: Some(ClientId::parse("opaque").unwrap()),
            client_name: "opaque".into(),
            scope: ScopeSet::parse("a:r").unwrap(),
            default_scope: ScopeSet::parse("a:r").unwrap(),
            access_token_format: AccessTokenFormat::Opaque,
            ..Default::default()
        })
        .await
        .unwrap();
    let proof = ProofKey::generate().proof(claims(&app));
    let res = token_with_proof(&app, ("opaque", &secret), &proof).await;
    assert_eq!(res.json()["error"], "invalid_dpop_proof");
}

/// RFC 9449 §8: with server nonces on, a proof without one gets `use_dpop_nonce` and the nonce
/// in `DPoP-Nonce`; the proof made with it succeeds.
#[tokio::test]
async fn rfc9449_8_nonce_round_trip() {
    let app =
        spawn_app_configured(RawConfig { dpop_nonce: Some(true), ..Default::default() }).await;
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    let key = ProofKey::generate();
    let first = token_with_proof(&app, ("svc", &secret), &key.proof(claims(&app))).await;
    assert_eq!(first.status, StatusCode::BAD_REQUEST);
    assert_eq!(first.json()["error"], "use_dpop_nonce");
    let nonce = first.header("dpop-nonce").expect("a DPoP-Nonce header").to_owned();
    let mut c = claims(&app);
    c["nonce"] = "not-the-nonce".into();
    let wrong = token_with_proof(&app, ("svc", &secret), &key.proof(c)).await;
    assert_eq!(wrong.json()["error"], "use_dpop_nonce");
    let mut c = claims(&app);
    c["nonce"] = nonce.into();
    let ok = token_with_proof(&app, ("svc", &secret), &key.proof(c)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(ok.json()["token_type"], "DPoP");
    assert!(ok.header("dpop-nonce").is_some());
}

/// RFC 9449 §5.1: discovery names the algorithms proofs may use.
#[tokio::test]
async fn rfc9449_5_1_discovery_advertises_dpop_algorithms() {
    let app = spawn_app().await;
    let doc = app.get("/.well-known/oauth-authorization-server").await.json();
    let algs = doc["dpop_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.contains(&json!("ES256")) && !algs.iter().any(|a| a == "HS256" || a == "none"));
}

/// RFC 9449 §11.1 and §8 with two instances behind one balancer, sharing a database and a
/// Redis: a proof used at one is refused at the other, and a nonce handed out by one is
/// accepted by the other (both derive nonces from the shared key-encryption key).
#[tokio::test]
async fn rfc9449_11_1_two_instances_sharing_redis_refuse_each_others_replays_and_accept_each_others_nonces()
 {
    use tessera_core::keys::{KeyEncryptionKey, SigningAlg};
    let test = "rfc9449_11_1_two_instances_sharing_redis";
    if !redis_available(test).await {
        return;
    }
    let (db_path, url) = temp_db();
    let kek = KeyEncryptionKey::generate_encoded();
    let raw =
        || RawConfig { redis_url: Some(redis_url()), dpop_nonce: Some(true), ..Default::default() };
    let store = tessera_store::Store::connect(&url).await.unwrap();
    let mut one =
        TestApp::on_store(store, settings_from(SigningAlg::ES256, &url, &kek, raw())).await;
    one.db_path = db_path;
    let other = TestApp::on_store(
        tessera_store::Store::connect(&url).await.unwrap(),
        settings_from(SigningAlg::ES256, &url, &kek, raw()),
    )
    .await;
    let id = format!("svc-{}", tessera_core::secret::random_id::<8>());
    let secret = one.client(&id, AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    let key = ProofKey::generate();
    // The nonce comes from the first instance …
    let first = token_with_proof(&one, (&id, &secret), &key.proof(claims(&one))).await;
    assert_eq!(first.json()["error"], "use_dpop_nonce");
    let nonce = first.header("dpop-nonce").expect("a DPoP-Nonce header").to_owned();
    // … and is accepted by the second.
    let mut c = claims(&other);
    c["nonce"] = nonce.clone().into();
    let proof = key.proof(c);
    let ok = token_with_proof(&other, (&id, &secret), &proof).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", String::from_utf8_lossy(&ok.body));
    // The same proof replayed at the first instance is refused.
    let replay = token_with_proof(&one, (&id, &secret), &proof).await;
    assert_eq!(
        replay.json()["error"],
        "invalid_dpop_proof",
        "{}",
        String::from_utf8_lossy(&replay.body)
    );
    assert!(replay.json()["error_description"].as_str().unwrap().contains("already used"));
}

/// A token request of a public client (no authentication), with a DPoP proof when given.
async fn public_token_request(app: &TestApp, form: &str, proof: Option<String>) -> Response {
    let mut request =
        Request::post("/token").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    app.request(request.body(Body::from(form.to_owned())).unwrap()).await
}

/// RFC 9449 §5: the refresh tokens of a public client that proved a key are bound to it: a
/// refresh without a proof, or with a proof of another key, is `invalid_grant`, and leaves
/// the refresh token usable by the key's holder.
#[tokio::test]
async fn rfc9449_5_a_public_clients_refresh_token_is_refused_without_a_proof_of_its_key() {
    use crate::common::flow::*;
    use tessera_core::grant_type::GrantType;
    let app = spawn_app().await;
    create_user(&app).await;
    let id = "spa";
    app.register(ClientRegistration {
        public: true,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        ..web_client(id)
    })
    .await;
    let key = ProofKey::generate();
    let code = code_for(&app, id, "").await;
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}&client_id={id}",
        urlencode(&code),
        urlencode(REDIRECT)
    );
    let res = public_token_request(&app, &form, Some(key.proof(claims(&app)))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    assert_eq!(res.json()["token_type"], "DPoP");
    let refresh_token = res.json()["refresh_token"].as_str().unwrap().to_owned();
    let form = format!(
        "grant_type=refresh_token&refresh_token={}&client_id={id}",
        urlencode(&refresh_token)
    );
    // No proof, then a proof of another key: refused.
    for proof in [None, Some(ProofKey::generate().proof(claims(&app)))] {
        let refused = public_token_request(&app, &form, proof).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", page_text(&refused));
        assert_eq!(refused.json()["error"], "invalid_grant");
    }
    // The key's holder refreshes: the refused attempts spent nothing.
    let ok = public_token_request(&app, &form, Some(key.proof(claims(&app)))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", page_text(&ok));
    assert_eq!(ok.json()["token_type"], "DPoP");
    // The rotated token is bound to the same key.
    let next = ok.json()["refresh_token"].as_str().unwrap().to_owned();
    let form =
        format!("grant_type=refresh_token&refresh_token={}&client_id={id}", urlencode(&next));
    let thief =
        public_token_request(&app, &form, Some(ProofKey::generate().proof(claims(&app)))).await;
    assert_eq!(thief.json()["error"], "invalid_grant");
}
