//! The token endpoint with the client credentials grant, through the HTTP router.

use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jsonwebtoken::Algorithm;
use tessera_core::client::AuthMethod;
use tessera_core::keys::SigningAlg;
use tessera_core::store::ClientStore;

async fn verify(app: &TestApp, jwt: &str) -> (jsonwebtoken::Header, serde_json::Value) {
    verify_jwt(app, jwt, ISSUER).await
}

#[tokio::test]
async fn rfc6749_4_4_client_credentials_issues_an_rfc9068_jwt() {
    let app = spawn_app().await;
    let secret = app
        .client("svc", AuthMethod::ClientSecretBasic, "orders:read orders:write", "orders:read")
        .await;
    let res =
        app.token(Some(("svc", &secret)), "grant_type=client_credentials&scope=orders:write").await;
    assert_eq!(res.status, StatusCode::OK, "{}", String::from_utf8_lossy(&res.body));
    // RFC 6749 §5.1: token responses are not cached.
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let body = res.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "orders:write");
    // RFC 6749 §4.4.3: no refresh token for client credentials.
    assert!(body.get("refresh_token").is_none());

    let (header, claims) = verify(&app, body["access_token"].as_str().unwrap()).await;
    // RFC 9068 §2.1: typ is at+jwt; §2.2: the required claims.
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["client_id"], "svc");
    assert_eq!(claims["aud"], ISSUER);
    assert_eq!(claims["scope"], "orders:write");
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 900);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
}

#[tokio::test]
async fn r2_5_access_tokens_verify_for_every_signing_algorithm() {
    for (alg, expected) in [
        (SigningAlg::RS256, Algorithm::RS256),
        (SigningAlg::ES256, Algorithm::ES256),
        (SigningAlg::EdDSA, Algorithm::EdDSA),
    ] {
        let app = spawn_app_with(alg).await;
        let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
        let res = app.token(Some(("svc", &secret)), "grant_type=client_credentials").await;
        assert_eq!(res.status, StatusCode::OK);
        let (header, _) = verify(&app, res.json()["access_token"].as_str().unwrap()).await;
        assert_eq!(header.alg, expected);
    }
}

#[tokio::test]
async fn rfc6749_2_3_1_client_secret_post_is_accepted_for_post_clients() {
    let app = spawn_app().await;
    let secret = app.client("poster", AuthMethod::ClientSecretPost, "a:r", "a:r").await;
    let form = format!("grant_type=client_credentials&client_id=poster&client_secret={secret}");
    let res = app.token(None, &form).await;
    assert_eq!(res.status, StatusCode::OK, "{}", String::from_utf8_lossy(&res.body));
    // The same client may not switch to a method it did not register.
    let res = app.token(Some(("poster", &secret)), "grant_type=client_credentials").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rfc6749_5_2_failed_client_authentication_is_401_with_challenge() {
    let app = spawn_app().await;
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    for (id, pw) in [("svc", "wrong"), ("ghost", secret.as_str()), ("svc", "")] {
        let res = app.token(Some((id, pw)), "grant_type=client_credentials").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert_eq!(res.json()["error"], "invalid_client");
        assert_eq!(res.header("www-authenticate"), Some("Basic realm=\"tessera\""));
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }
    // No credentials at all.
    let res = app.token(None, "grant_type=client_credentials").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["error"], "invalid_client");
}

#[tokio::test]
async fn rfc6749_3_3_scope_rules_at_the_token_endpoint() {
    let app = spawn_app().await;
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r a:w", "a:r").await;
    let creds = Some(("svc", secret.as_str()));
    // Omitted scope: the client's default set.
    let res = app.token(creds, "grant_type=client_credentials").await;
    assert_eq!(res.json()["scope"], "a:r");
    // Beyond the allowed set: invalid_scope naming the scope.
    let res = app.token(creds, "grant_type=client_credentials&scope=a:r+b:admin").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let body = res.json();
    assert_eq!(body["error"], "invalid_scope");
    assert!(body["error_description"].as_str().unwrap().contains("b:admin"));
    // Malformed scope syntax.
    let res = app.token(creds, "grant_type=client_credentials&scope=a:r%22").await;
    assert_eq!(res.json()["error"], "invalid_scope");

    let bare = app.client("bare", AuthMethod::ClientSecretBasic, "a:r", "").await;
    let res = app.token(Some(("bare", &bare)), "grant_type=client_credentials").await;
    assert_eq!(res.json()["error"], "invalid_scope");
}

#[tokio::test]
async fn oauth21_unsupported_grant_types_are_refused() {
    let app = spawn_app().await;
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    for grant in
        ["password", "implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:x:custom"]
    {
        let res = app
            .token(Some(("svc", &secret)), &format!("grant_type={grant}&username=a&password=b"))
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{grant}");
        assert_eq!(res.json()["error"], "unsupported_grant_type", "{grant}");
    }
    let res = app.token(Some(("svc", &secret)), "scope=a:r").await;
    assert_eq!(res.json()["error"], "invalid_request");
    assert!(res.json()["error_description"].as_str().unwrap().contains("grant_type"));
}

#[tokio::test]
async fn rfc6749_5_2_client_not_registered_for_the_grant_is_unauthorized_client() {
    let app = spawn_app().await;
    let (client, secret) = tessera_core::client::ClientRegistration {
        client_id: Some(tessera_core::client_id::ClientId::parse("web").unwrap()),
        client_name: "web".into(),
        redirect_uris: vec![
            tessera_core::redirect_uri::RedirectUri::parse_for_registration(
                "https://app.example/cb",
            )
            .unwrap(),
        ],
        ..Default::default()
    }
    .into_client(t0())
    .unwrap();
    app.store.create_client(&client).await.unwrap();
    let res =
        app.token(Some(("web", secret.unwrap().expose())), "grant_type=client_credentials").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "unauthorized_client");
}

#[tokio::test]
async fn rfc6749_3_2_bad_input_gets_invalid_request_never_a_server_error() {
    let app = spawn_app().await;
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    let auth = basic_header("svc", &secret);
    let post = |content_type: &str, body: Vec<u8>| {
        Request::post("/token")
            .header(header::CONTENT_TYPE, content_type)
            .header(header::AUTHORIZATION, auth.clone())
            .body(Body::from(body))
            .unwrap()
    };
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<(&str, Request<Body>, StatusCode)> = vec![
        (
            "duplicate parameter",
            post(form, b"grant_type=client_credentials&grant_type=client_credentials".to_vec()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "json body",
            post("application/json", br#"{"grant_type":"client_credentials"}"#.to_vec()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "no content type",
            Request::post("/token").body(Body::from("grant_type=client_credentials")).unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "non-UTF-8 escape",
            post(form, b"grant_type=client_credentials&scope=%FF".to_vec()),
            StatusCode::BAD_REQUEST,
        ),
        ("raw non-UTF-8", post(form, b"grant_type=\xff\xfe".to_vec()), StatusCode::BAD_REQUEST),
        ("oversized body", post(form, vec![b'a'; 64 * 1024]), StatusCode::PAYLOAD_TOO_LARGE),
        ("broken percent escape", post(form, b"grant_type=%ZZ".to_vec()), StatusCode::BAD_REQUEST),
        (
            "client_id differs from Basic",
            post(form, b"grant_type=client_credentials&client_id=other".to_vec()),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (name, request, expected) in cases {
        let res = app.request(request).await;
        assert_eq!(res.status, expected, "{name}: {}", String::from_utf8_lossy(&res.body));
        let body = res.json();
        assert!(
            ["invalid_request", "unsupported_grant_type"]
                .contains(&body["error"].as_str().unwrap()),
            "{name}: {body}"
        );
        assert_eq!(res.header("cache-control"), Some("no-store"), "{name}");
    }
    // Secrets sent both ways: RFC 6749 §2.3 forbids more than one method.
    let res = app
        .request(post(
            form,
            format!("grant_type=client_credentials&client_id=svc&client_secret={secret}")
                .into_bytes(),
        ))
        .await;
    assert_eq!(res.json()["error"], "invalid_request");
    // The server keeps serving afterwards.
    let res = app.token(Some(("svc", &secret)), "grant_type=client_credentials").await;
    assert_eq!(res.status, StatusCode::OK);
}

#[tokio::test]
async fn r6_1_clients_created_elsewhere_work_at_once_and_deletions_apply_within_5_seconds() {
    let app = spawn_app().await;
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    let res = app.token(Some(("svc", &secret)), "grant_type=client_credentials").await;
    assert_eq!(res.status, StatusCode::OK);
    app.store
        .delete_client(&tessera_core::client_id::ClientId::parse("svc").unwrap())
        .await
        .unwrap();
    tokio::time::sleep(
        tessera_server::client_cache::CLIENT_CACHE_TTL + std::time::Duration::from_millis(100),
    )
    .await;
    let res = app.token(Some(("svc", &secret)), "grant_type=client_credentials").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}
