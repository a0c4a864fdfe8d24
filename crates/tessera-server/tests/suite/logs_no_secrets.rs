//! Requirements R4.3 for the endpoints added with revocation and introspection: whatever
//! passes through `/login`, `/token` (refresh tokens, `private_key_jwt` assertions),
//! `/userinfo`, `/introspect` and `/revoke`, no token, code, secret, assertion or password
//! reaches the logs. One global subscriber captures everything at trace level, so this file
//! holds a single test.

use crate::common::flow::{self, Browser, page_text};
use crate::common::*;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::http::StatusCode;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tessera_core::client::{AccessTokenFormat, AuthMethod, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::clock::Clock;
use tessera_core::scope::ScopeSet;

/// What must never be logged, with a label for the failure message.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, label: &str, value: &str) {
        assert!(value.len() >= 8, "{label} is too short to search for: {value:?}");
        self.0.push((label.to_owned(), value.to_owned()));
        // For a JWS, its signature alone is secret-bearing enough to look for too.
        let parts: Vec<&str> = value.split('.').collect();
        if parts.len() == 3 && parts[2].len() >= 16 {
            self.0.push((format!("{label} (signature)"), parts[2].to_owned()));
        }
    }

    fn add_json(&mut self, label: &str, response: &serde_json::Value) {
        for name in ["access_token", "refresh_token", "id_token"] {
            if let Some(value) = response[name].as_str() {
                self.add(&format!("{label} {name}"), value);
            }
        }
    }
}

#[tokio::test]
async fn r4_3_no_token_code_secret_assertion_or_password_reaches_the_logs() {
    let sink = captured_logs();
    let mut secrets = Secrets::default();
    let app = spawn_app().await;
    flow::create_user(&app).await;
    secrets.add("password", flow::PASSWORD);
    let web = app.register(flow::web_client("web")).await.unwrap();
    secrets.add("web secret", &web);
    let web = ("web", web.as_str());
    let opaque = app
        .register(ClientRegistration {
            access_token_format: AccessTokenFormat::Opaque,
            ..flow::web_client("web-opaque")
        })
        .await
        .unwrap();
    secrets.add("web-opaque secret", &opaque);
    let opaque = ("web-opaque", opaque.as_str());
    let rs = app
        .register(ClientRegistration {
            client_id: Some(ClientId::parse("rs").unwrap()),
            client_name: "rs".into(),
            introspection: true,
            auth_method: Some(AuthMethod::ClientSecretPost),
            ..Default::default()
        })
        .await
        .unwrap();
    secrets.add("rs secret", &rs);

    // The login form: a wrong password first, then the right one.
    let mut browser = Browser::default();
    let query = flow::authorize_query("web", "");
    let page = browser.get(&app, &format!("/authorize?{query}")).await;
    let wrong_password = "Tr0ub4dor&3-wrong";
    secrets.add("wrong password", wrong_password);
    let res = browser.login(&app, &page, flow::USERNAME, wrong_password).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let done = browser.login(&app, &page, flow::USERNAME, flow::PASSWORD).await;
    let code = flow::redirect_params(&done)["code"].clone();
    secrets.add("code", &code);
    for cookie in browser.cookies.values() {
        if cookie.len() >= 16 {
            secrets.add("cookie", cookie);
        }
    }

    // Code exchange, refresh, userinfo, introspection and revocation.
    let res = flow::exchange(&app, web, &code, "").await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    let tokens = res.json();
    secrets.add_json("code exchange", &tokens);
    let res = flow::refresh(&app, web, tokens["refresh_token"].as_str().unwrap(), "").await;
    assert_eq!(res.status, StatusCode::OK);
    let refreshed = res.json();
    secrets.add_json("refresh", &refreshed);
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status, StatusCode::OK);
    // A refresh with a spent token (reuse) and a wrong client secret: refusals are logged too.
    let res = flow::refresh(&app, web, tokens["refresh_token"].as_str().unwrap(), "").await;
    assert_eq!(res.json()["error"], "invalid_grant");
    let wrong_secret = "wrong-client-secret-0123456789";
    secrets.add("wrong client secret", wrong_secret);
    let res =
        app.token(Some(("web", wrong_secret)), "grant_type=refresh_token&refresh_token=x").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    let opaque_tokens = flow::tokens_for(&app, opaque).await;
    secrets.add_json("opaque code exchange", &opaque_tokens);
    let opaque_access = opaque_tokens["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(opaque_access).await.status, StatusCode::OK);

    for token in [
        tokens["access_token"].as_str().unwrap(),
        refreshed["refresh_token"].as_str().unwrap(),
        opaque_access,
        opaque_tokens["refresh_token"].as_str().unwrap(),
    ] {
        let form = format!("client_id=rs&client_secret={rs}&token={}", urlencode(token));
        let res = app.post_form("/introspect", None, &form).await;
        assert_eq!(res.status, StatusCode::OK);
    }
    for (client, token) in [
        (web, refreshed["refresh_token"].as_str().unwrap()),
        (opaque, opaque_access),
        (opaque, opaque_tokens["refresh_token"].as_str().unwrap()),
    ] {
        let res =
            app.post_form("/revoke", Some(client), &format!("token={}", urlencode(token))).await;
        assert_eq!(res.status, StatusCode::OK);
    }
    assert_eq!(app.userinfo(access).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.userinfo(opaque_access).await.status, StatusCode::UNAUTHORIZED);

    // private_key_jwt at /token, /introspect and /revoke, and a replayed assertion.
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let key = EncodingKey::from_ec_der(pair.to_pkcs8v1().unwrap().as_ref());
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("k1".into());
    app.register(ClientRegistration {
        client_id: Some(ClientId::parse("pkjwt").unwrap()),
        client_name: "pkjwt".into(),
        scope: ScopeSet::parse("a:r").unwrap(),
        default_scope: ScopeSet::parse("a:r").unwrap(),
        auth_method: Some(AuthMethod::PrivateKeyJwt),
        introspection: true,
        jwks: Some(serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap()),
        ..Default::default()
    })
    .await;
    // One assertion per request (a `jti` is accepted once); `aud` is the issuer identifier.
    let assertion = || {
        let now = app.clock.now();
        let claims = serde_json::json!({
            "iss": "pkjwt", "sub": "pkjwt", "aud": ISSUER,
            "iat": now, "exp": now + 60, "jti": tessera_core::secret::random_id::<16>(),
        });
        let header = Header { kid: Some("k1".into()), ..Header::new(Algorithm::ES256) };
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let assertion_form = |a: &str| {
        format!(
            "client_assertion_type={}&client_assertion={a}",
            urlencode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        )
    };
    let at_token = assertion();
    secrets.add("assertion", &at_token);
    let form = format!("grant_type=client_credentials&{}", assertion_form(&at_token));
    let res = app.token(None, &form).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    let pk_tokens = res.json();
    secrets.add_json("private_key_jwt", &pk_tokens);
    assert_eq!(app.token(None, &form).await.status, StatusCode::UNAUTHORIZED, "replay");
    let pk_access = pk_tokens["access_token"].as_str().unwrap();
    for path in ["/introspect", "/revoke"] {
        let a = assertion();
        secrets.add("assertion", &a);
        let form = format!("token={pk_access}&{}", assertion_form(&a));
        assert_eq!(app.post_form(path, None, &form).await.status, StatusCode::OK, "{path}");
    }

    let logs = sink.text();
    for (route, what) in [
        ("\"/login\"", "the login form"),
        ("\"/token\"", "token requests"),
        ("\"/userinfo\"", "userinfo"),
        ("\"/introspect\"", "introspection"),
        ("\"/revoke\"", "revocation"),
        ("token_revoked", "the audit of revocations"),
        ("\"refresh_token\"", "the audit of the refresh grant"),
    ] {
        assert!(logs.contains(route), "{what} was logged: {logs}");
    }
    for (label, value) in &secrets.0 {
        assert!(!logs.contains(value.as_str()), "the {label} reached the logs");
        let encoded = urlencode(value);
        assert!(!logs.contains(encoded.as_str()), "the {label} reached the logs, form-encoded");
    }
}
