//! Token revocation (RFC 7009), token introspection (RFC 7662) and opaque access tokens
//! (requirements R3.1), through the HTTP router.

use crate::common::flow::{self, page_text};
use crate::common::*;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tessera_core::client::{AccessTokenFormat, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::clock::Clock;
use tessera_core::scope::ScopeSet;

/// The apps's clients and their secrets.
struct Setup {
    app: TestApp,
    /// alice's `sub`.
    sub: String,
    /// First-party web clients (code + refresh grants), JWT and opaque access tokens.
    web: String,
    web2: String,
    web_opaque: String,
    /// A resource server that may introspect.
    rs: String,
    /// Client-credentials clients, JWT and opaque access tokens.
    svc: String,
    svc_opaque: String,
}

impl Setup {
    fn web(&self) -> (&str, &str) {
        ("web", &self.web)
    }
    fn web2(&self) -> (&str, &str) {
        ("web2", &self.web2)
    }
    fn web_opaque(&self) -> (&str, &str) {
        ("web-opaque", &self.web_opaque)
    }
    fn svc(&self) -> (&str, &str) {
        ("svc", &self.svc)
    }
    fn svc_opaque(&self) -> (&str, &str) {
        ("svc-opaque", &self.svc_opaque)
    }

    /// Introspects `token` as `web`, allowed to introspect and the client of the refresh tokens
    /// these tests describe (issue 17 finding 6: nobody else learns about them).
    async fn introspect(&self, token: &str, hint: Option<&str>) -> Response {
        let res =
            self.app.post_form("/introspect", Some(("web", &self.web)), &form(token, hint)).await;
        assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
        res
    }

    async fn introspection(&self, token: &str) -> Value {
        self.introspect(token, None).await.json()
    }

    async fn revoke(&self, client: (&str, &str), token: &str, hint: Option<&str>) -> Response {
        self.app.post_form("/revoke", Some(client), &form(token, hint)).await
    }

    /// A client-credentials access token of `client`.
    async fn cc_token(&self, client: (&str, &str)) -> String {
        let res = self.app.token(Some(client), "grant_type=client_credentials").await;
        assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
        res.json()["access_token"].as_str().unwrap().to_owned()
    }
}

fn form(token: &str, hint: Option<&str>) -> String {
    match hint {
        Some(h) => format!("token={}&token_type_hint={h}", urlencode(token)),
        None => format!("token={}", urlencode(token)),
    }
}

fn inactive() -> Value {
    json!({ "active": false })
}

fn cc_client(id: &str, format: AccessTokenFormat) -> ClientRegistration {
    ClientRegistration {
        client_id: Some(ClientId::parse(id).unwrap()),
        client_name: id.into(),
        scope: ScopeSet::parse("orders:read orders:write").unwrap(),
        default_scope: ScopeSet::parse("orders:read").unwrap(),
        access_token_format: format,
        ..Default::default()
    }
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    let sub = flow::create_user(&app).await;
    // `web` introspects too: a refresh token is described only to its own client.
    let web = app
        .register(ClientRegistration { introspection: true, ..flow::web_client("web") })
        .await
        .unwrap();
    let web2 = app.register(flow::web_client("web2")).await.unwrap();
    let web_opaque = app
        .register(ClientRegistration {
            access_token_format: AccessTokenFormat::Opaque,
            ..flow::web_client("web-opaque")
        })
        .await
        .unwrap();
    let rs = app
        .register(ClientRegistration {
            introspection: true,
            ..cc_client("rs", AccessTokenFormat::Jwt)
        })
        .await
        .unwrap();
    let svc = app.register(cc_client("svc", AccessTokenFormat::Jwt)).await.unwrap();
    let svc_opaque =
        app.register(cc_client("svc-opaque", AccessTokenFormat::Opaque)).await.unwrap();
    Setup { app, sub, web, web2, web_opaque, rs, svc, svc_opaque }
}

fn is_jwt(token: &str) -> bool {
    jsonwebtoken::decode_header(token).is_ok()
}

// ---------------------------------------------------------------------------------------------
// RFC 7009: revocation

#[tokio::test]
async fn rfc7009_2_1_revocation_requires_client_authentication() {
    let s = setup().await;
    let token = s.cc_token(s.svc()).await;
    let res = s.app.post_form("/revoke", None, &form(&token, None)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["error"], "invalid_client");
    let res = s.app.post_form("/revoke", Some(("svc", "wrong-secret")), &form(&token, None)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["error"], "invalid_client");
    assert_eq!(res.header("www-authenticate"), Some("Basic realm=\"tessera\""));
    // `client_id` alone does not authenticate a confidential client.
    let res =
        s.app.post_form("/revoke", None, &format!("client_id=svc&{}", form(&token, None))).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    // Nothing was revoked by the refused requests.
    assert_eq!(s.introspection(&token).await["active"], true);
    // RFC 7009 §2.1: `token` is REQUIRED.
    let res = s.app.post_form("/revoke", Some(s.svc()), "token_type_hint=access_token").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_request");
}

#[tokio::test]
async fn rfc7009_2_2_unknown_and_already_revoked_tokens_get_200() {
    let s = setup().await;
    for unknown in [
        "no-such-token",
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        "eyJ.garbage.",
        &"A".repeat(43),
    ] {
        let res = s.revoke(s.svc(), unknown, None).await;
        assert_eq!(res.status, StatusCode::OK, "{unknown}: {}", page_text(&res));
        assert!(res.body.is_empty(), "RFC 7009 §2.2: the body is ignored; we send none");
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }
    let token = s.cc_token(s.svc()).await;
    for _ in 0..2 {
        let res = s.revoke(s.svc(), &token, Some("access_token")).await;
        assert_eq!(res.status, StatusCode::OK);
    }
    assert_eq!(s.introspection(&token).await, inactive());
    // An already expired token: nothing to do, still 200.
    let old = s.cc_token(s.svc()).await;
    s.app.clock.advance(s.app.state.settings().policy.access_token_ttl + 1);
    assert_eq!(s.revoke(s.svc(), &old, None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rfc7009_2_1_a_revoked_jwt_access_token_is_inactive_and_refused_at_userinfo() {
    let s = setup().await;
    let tokens = flow::tokens_for(&s.app, s.web()).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert!(is_jwt(access));
    assert_eq!(s.introspection(access).await["active"], true);
    assert_eq!(s.app.userinfo(access).await.status, StatusCode::OK);

    let res = s.revoke(s.web(), access, None).await;
    assert_eq!(res.status, StatusCode::OK);
    // RFC 7662 §2.2: exactly `{"active": false}`, nothing about the token.
    let res = s.introspect(access, None).await;
    assert_eq!(res.json(), inactive());
    assert_eq!(page_text(&res), r#"{"active":false}"#);
    let res = s.app.userinfo(access).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(res.header("www-authenticate").unwrap().contains("invalid_token"));
    // A client-credentials JWT too.
    let cc = s.cc_token(s.svc()).await;
    assert_eq!(s.revoke(s.svc(), &cc, None).await.status, StatusCode::OK);
    assert_eq!(s.introspection(&cc).await, inactive());
}

#[tokio::test]
async fn rfc7009_2_1_revoking_a_refresh_token_revokes_its_family() {
    let s = setup().await;
    let first = flow::tokens_for(&s.app, s.web()).await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let a1 = first["access_token"].as_str().unwrap();
    let second = flow::refresh(&s.app, s.web(), r1, "").await;
    assert_eq!(second.status, StatusCode::OK, "{}", page_text(&second));
    let second = second.json();
    let r2 = second["refresh_token"].as_str().unwrap();
    let a2 = second["access_token"].as_str().unwrap();
    for token in [a1, a2, r2] {
        assert_eq!(s.introspection(token).await["active"], true);
    }
    // Another family of the same user and client is not touched.
    let other = flow::tokens_for(&s.app, s.web()).await;

    assert_eq!(s.revoke(s.web(), r2, Some("refresh_token")).await.status, StatusCode::OK);
    for token in [a1, a2, r2, r1] {
        assert_eq!(s.introspection(token).await, inactive(), "{token}");
    }
    assert_eq!(s.app.userinfo(a2).await.status, StatusCode::UNAUTHORIZED);
    let res = flow::refresh(&s.app, s.web(), r2, "").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_grant");

    assert_eq!(s.introspection(other["access_token"].as_str().unwrap()).await["active"], true);
    let res = flow::refresh(&s.app, s.web(), other["refresh_token"].as_str().unwrap(), "").await;
    assert_eq!(res.status, StatusCode::OK);
}

#[tokio::test]
async fn rfc7009_2_1_token_type_hint_is_a_hint_not_a_filter() {
    let s = setup().await;
    // A refresh token revoked with the hint `access_token`.
    let tokens = flow::tokens_for(&s.app, s.web()).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(s.revoke(s.web(), refresh, Some("access_token")).await.status, StatusCode::OK);
    assert_eq!(s.introspection(refresh).await, inactive());
    assert_eq!(s.introspection(tokens["access_token"].as_str().unwrap()).await, inactive());
    assert_eq!(flow::refresh(&s.app, s.web(), refresh, "").await.json()["error"], "invalid_grant");

    // A JWT access token and an opaque one revoked with the hint `refresh_token`.
    let jwt = s.cc_token(s.svc()).await;
    assert_eq!(s.revoke(s.svc(), &jwt, Some("refresh_token")).await.status, StatusCode::OK);
    assert_eq!(s.introspection(&jwt).await, inactive());
    let opaque = s.cc_token(s.svc_opaque()).await;
    assert_eq!(
        s.revoke(s.svc_opaque(), &opaque, Some("refresh_token")).await.status,
        StatusCode::OK
    );
    assert_eq!(s.introspection(&opaque).await, inactive());

    // An unknown hint is ignored (RFC 7009 §2.1: the server may detect the type itself).
    let tokens = flow::tokens_for(&s.app, s.web()).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(s.revoke(s.web(), refresh, Some("id_token")).await.status, StatusCode::OK);
    assert_eq!(s.introspection(refresh).await, inactive());

    // Introspection's hint is a hint too (RFC 7662 §2.1).
    let tokens = flow::tokens_for(&s.app, s.web()).await;
    let (access, refresh) =
        (tokens["access_token"].as_str().unwrap(), tokens["refresh_token"].as_str().unwrap());
    assert_eq!(s.introspect(access, Some("refresh_token")).await.json()["active"], true);
    assert_eq!(s.introspect(refresh, Some("access_token")).await.json()["active"], true);
    let opaque = s.cc_token(s.svc_opaque()).await;
    assert_eq!(s.introspect(&opaque, Some("refresh_token")).await.json()["active"], true);
}

#[tokio::test]
async fn rfc7009_2_1_another_clients_token_is_refused_silently() {
    let s = setup().await;
    let tokens = flow::tokens_for(&s.app, s.web()).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let opaque = flow::tokens_for(&s.app, s.web_opaque()).await;
    let opaque_access = opaque["access_token"].as_str().unwrap();
    let cc = s.cc_token(s.svc()).await;
    for token in [access, refresh, opaque_access, &cc] {
        for hint in [None, Some("access_token"), Some("refresh_token")] {
            // RFC 7009 §2.1: the server verifies that the token was issued to the client; §2.2:
            // the answer does not tell an invalid token from someone else's.
            let res = s.revoke(s.web2(), token, hint).await;
            assert_eq!(res.status, StatusCode::OK);
            assert!(res.body.is_empty());
        }
        assert_eq!(s.introspection(token).await["active"], true, "{token}");
    }
    assert_eq!(s.app.userinfo(access).await.status, StatusCode::OK);
    assert_eq!(s.app.userinfo(opaque_access).await.status, StatusCode::OK);
    assert_eq!(flow::refresh(&s.app, s.web(), refresh, "").await.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// RFC 7662: introspection

#[tokio::test]
async fn rfc7662_2_1_introspection_requires_an_authenticated_authorized_client() {
    let s = setup().await;
    let token = s.cc_token(s.svc()).await;
    let res = s.app.post_form("/introspect", None, &form(&token, None)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["error"], "invalid_client");
    let res = s.app.post_form("/introspect", Some(("rs", "wrong")), &form(&token, None)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["error"], "invalid_client");
    // An authenticated client without `introspection`: even its own token is not described.
    let res = s.app.post_form("/introspect", Some(s.svc()), &form(&token, None)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let body = res.json();
    assert_eq!(body["error"], "unauthorized_client");
    assert!(body.get("active").is_none());
    // `token` is required.
    let res = s.app.post_form("/introspect", Some(("rs", &s.rs)), "token_type_hint=x").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_request");
    // Forms only.
    let res = s
        .app
        .request(
            axum::http::Request::post("/introspect")
                .header("content-type", "application/json")
                .header("authorization", basic_header("rs", &s.rs))
                .body(axum::body::Body::from(format!(r#"{{"token":"{token}"}}"#)))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(s.introspection(&token).await["active"], true);
}

#[tokio::test]
async fn rfc7662_2_2_an_active_jwt_access_token_is_described() {
    let s = setup().await;
    let res = s.app.token(Some(s.svc()), "grant_type=client_credentials&scope=orders:write").await;
    let token = res.json()["access_token"].as_str().unwrap().to_owned();
    let claims = verify_with_jwks_of(&s.app, &token).await;
    let res = s.introspect(&token, Some("access_token")).await;
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert!(res.header("content-type").unwrap().starts_with("application/json"));
    assert_eq!(
        res.json(),
        json!({
            "active": true,
            "scope": "orders:write",
            "client_id": "svc",
            "sub": "svc",
            "aud": [ISSUER],
            "iss": ISSUER,
            "exp": claims["exp"],
            "iat": claims["iat"],
            "nbf": claims["iat"],
            "jti": claims["jti"],
            "token_type": "Bearer",
        })
    );

    // A user's access token from the code flow: `sub` is the user.
    let tokens = flow::tokens_for(&s.app, s.web()).await;
    let access = tokens["access_token"].as_str().unwrap();
    let claims = verify_with_jwks_of(&s.app, access).await;
    assert_eq!(
        s.introspection(access).await,
        json!({
            "active": true,
            "scope": "email openid profile",
            "client_id": "web",
            "sub": s.sub,
            "aud": [ISSUER],
            "iss": ISSUER,
            "exp": claims["exp"],
            "iat": claims["iat"],
            "nbf": claims["iat"],
            "jti": claims["jti"],
            "token_type": "Bearer",
        })
    );
}

#[tokio::test]
async fn rfc7662_2_2_an_active_opaque_access_token_is_described() {
    let s = setup().await;
    let now = s.app.clock.now();
    let token = s.cc_token(s.svc_opaque()).await;
    assert!(!is_jwt(&token), "an opaque token is no JWT: {token}");
    let res = s.introspect(&token, None).await;
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let body = res.json();
    let jti = body["jti"].as_str().expect("jti").to_owned();
    assert!(jti.len() >= 16);
    assert_eq!(
        body,
        json!({
            "active": true,
            "scope": "orders:read",
            "client_id": "svc-opaque",
            "sub": "svc-opaque",
            "aud": [ISSUER],
            "iss": ISSUER,
            "exp": now + 900,
            "iat": now,
            "nbf": now,
            "jti": jti,
            "token_type": "Bearer",
        })
    );
}

#[tokio::test]
async fn rfc7662_2_2_an_active_refresh_token_is_described() {
    let s = setup().await;
    let now = s.app.clock.now();
    let tokens = flow::tokens_for(&s.app, s.web()).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let res = s.introspect(refresh, Some("refresh_token")).await;
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let idle = s.app.state.settings().policy.refresh_token_idle_ttl;
    assert_eq!(
        res.json(),
        json!({
            "active": true,
            "scope": "email openid profile",
            "client_id": "web",
            "sub": s.sub,
            "aud": [ISSUER],
            "iss": ISSUER,
            "exp": now + idle,
            "iat": now,
            "nbf": now,
            "token_type": "refresh_token",
        })
    );
    // Introspection does not spend the refresh token.
    assert_eq!(flow::refresh(&s.app, s.web(), refresh, "").await.status, StatusCode::OK);
    // And once rotated, it is inactive.
    assert_eq!(s.introspection(refresh).await, inactive());
}

#[tokio::test]
async fn rfc7662_2_2_expired_revoked_unknown_and_garbage_tokens_are_exactly_inactive() {
    let s = setup().await;
    let jwt = s.cc_token(s.svc()).await;
    let opaque = s.cc_token(s.svc_opaque()).await;
    let tokens = flow::tokens_for(&s.app, s.web()).await;
    let (access, refresh, id_token) = (
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
        tokens["id_token"].as_str().unwrap(),
    );
    // Tampered: the JWT with another payload, and with its signature cut off.
    let mut parts: Vec<&str> = jwt.split('.').collect();
    let tampered_payload = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"iss":"https://auth.test.example","sub":"svc","client_id":"svc","jti":"x","iat":1,"exp":9999999999}"#)
    };
    parts[1] = &tampered_payload;
    let tampered = parts.join(".");
    let unsigned =
        format!("{}.{}.", jwt.split('.').next().unwrap(), jwt.split('.').nth(1).unwrap());
    for garbage in [
        "not-a-token",
        "eyJ",
        "eyJ.eyJ.eyJ",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        &"A".repeat(43),
        &"%".repeat(3),
        &tampered,
        &unsigned,
        // An ID token is not an access token (RFC 9068 §2.1: typ at+jwt).
        id_token,
    ] {
        let res = s.introspect(garbage, None).await;
        assert_eq!(res.json(), inactive(), "{garbage}");
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }

    // Revoked: a second family, revoked through its refresh token; an opaque token revoked.
    let revoked = flow::tokens_for(&s.app, s.web()).await;
    s.revoke(s.web(), revoked["refresh_token"].as_str().unwrap(), None).await;
    let revoked_opaque = s.cc_token(s.svc_opaque()).await;
    s.revoke(s.svc_opaque(), &revoked_opaque, None).await;
    for token in [
        revoked["access_token"].as_str().unwrap(),
        revoked["refresh_token"].as_str().unwrap(),
        &revoked_opaque,
    ] {
        for hint in [None, Some("access_token"), Some("refresh_token")] {
            assert_eq!(s.introspect(token, hint).await.json(), inactive(), "{token}");
        }
    }

    // Expired: access tokens after their lifetime, the refresh token after its idle lifetime.
    let policy = &s.app.state.settings().policy;
    s.app.clock.advance(policy.access_token_ttl);
    for token in [&jwt, &opaque, access] {
        assert_eq!(s.introspection(token).await, inactive(), "{token}");
    }
    assert_eq!(s.introspection(refresh).await["active"], true, "the refresh token lives on");
    s.app.clock.advance(policy.refresh_token_idle_ttl);
    assert_eq!(s.introspection(refresh).await, inactive());
}

// ---------------------------------------------------------------------------------------------
// R3.1: opaque access tokens

#[tokio::test]
async fn r3_1_opaque_client_credentials_tokens_are_references_not_jwts() {
    let s = setup().await;
    let res = s.app.token(Some(s.svc_opaque()), "grant_type=client_credentials").await;
    assert_eq!(res.status, StatusCode::OK);
    let body = res.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().unwrap();
    assert!(!is_jwt(token), "{token}");
    assert!(!token.contains('.'), "{token}");
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    // The JWT client of the same shape gets a JWT.
    assert!(is_jwt(&s.cc_token(s.svc()).await));
    // Two requests, two different tokens.
    assert_ne!(s.cc_token(s.svc_opaque()).await, token);

    assert_eq!(s.introspection(token).await["active"], true);
    assert_eq!(s.revoke(s.svc_opaque(), token, None).await.status, StatusCode::OK);
    assert_eq!(s.introspection(token).await, inactive());
}

#[tokio::test]
async fn r3_1_opaque_code_flow_tokens_work_at_userinfo_until_revoked_or_expired() {
    let s = setup().await;
    let tokens = flow::tokens_for(&s.app, s.web_opaque()).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert!(!is_jwt(access), "{access}");
    // The ID token stays a JWT, with at_hash over the opaque value.
    let id = verify_jwt(&s.app, tokens["id_token"].as_str().unwrap(), "web-opaque").await.1;
    assert_eq!(
        id["at_hash"],
        tessera_core::id_token::at_hash(access, tessera_core::keys::SigningAlg::RS256)
    );

    let info = s.app.userinfo(access).await;
    assert_eq!(info.status, StatusCode::OK, "{}", page_text(&info));
    assert_eq!(info.json()["sub"], s.sub.as_str());
    assert_eq!(info.json()["email"], "alice@example.com");

    // Revoked on its own.
    assert_eq!(s.revoke(s.web_opaque(), access, None).await.status, StatusCode::OK);
    let res = s.app.userinfo(access).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(res.header("www-authenticate").unwrap().contains("invalid_token"));

    // Revoked with its grant: an opaque token from a refresh dies with its refresh token.
    let res =
        flow::refresh(&s.app, s.web_opaque(), tokens["refresh_token"].as_str().unwrap(), "").await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    let refreshed = res.json();
    let access2 = refreshed["access_token"].as_str().unwrap();
    assert!(!is_jwt(access2));
    assert_eq!(s.app.userinfo(access2).await.status, StatusCode::OK);
    let refresh2 = refreshed["refresh_token"].as_str().unwrap();
    assert_eq!(s.revoke(s.web_opaque(), refresh2, None).await.status, StatusCode::OK);
    assert_eq!(s.app.userinfo(access2).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.introspection(access2).await, inactive());

    // Expired.
    let tokens = flow::tokens_for(&s.app, s.web_opaque()).await;
    let access3 = tokens["access_token"].as_str().unwrap();
    assert_eq!(s.app.userinfo(access3).await.status, StatusCode::OK);
    s.app.clock.advance(s.app.state.settings().policy.access_token_ttl);
    assert_eq!(s.app.userinfo(access3).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn r3_1_a_replayed_code_revokes_opaque_tokens_too() {
    let s = setup().await;
    let code = flow::code_for(&s.app, "web-opaque", "").await;
    let res = flow::exchange(&s.app, s.web_opaque(), &code, "").await;
    let access = res.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(s.app.userinfo(&access).await.status, StatusCode::OK);
    let replay = flow::exchange(&s.app, s.web_opaque(), &code, "").await;
    assert_eq!(replay.json()["error"], "invalid_grant");
    assert_eq!(s.app.userinfo(&access).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.introspection(&access).await, inactive());
}
