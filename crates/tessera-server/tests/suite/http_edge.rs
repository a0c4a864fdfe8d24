//! The HTTP edge (`tessera-http` and `oauth_error`): bearer credentials, the token request as
//! the grants receive it, and the one error map.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tessera_core::client::AuthMethod;

use crate::common::*;

// RFC 6750 §2.1 / §3.1: Bearer credentials that are not one `b64token` are a malformed
// request, answered `invalid_request` with the Bearer challenge (not `invalid_token`).
#[tokio::test]
async fn rfc6750_3_1_malformed_bearer_credentials_are_invalid_request_with_a_challenge() {
    let app = spawn_app().await;
    for value in ["Bearer a b", "Bearer", "Bearer a,b"] {
        let res = app
            .request(
                Request::get("/userinfo")
                    .header(header::AUTHORIZATION, value)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{value}");
        assert_eq!(res.json()["error"], "invalid_request", "{value}");
        let challenge = res.header("www-authenticate").unwrap();
        assert!(challenge.starts_with("Bearer realm=\"tessera\", error=\"invalid_request\""));
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }
}

// RFC 6750 §3.1: a token without the scope the resource needs is 403 `insufficient_scope`,
// and the challenge names the scope (RFC 6750 §3).
#[tokio::test]
async fn rfc6750_3_1_insufficient_scope_names_the_needed_scope() {
    let app = spawn_app().await;
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    let cc = app.token(Some(("svc", &secret)), "grant_type=client_credentials").await.json();
    let res = app.userinfo(cc["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.json()["error"], "insufficient_scope");
    assert!(res.header("www-authenticate").unwrap().contains("scope=\"openid\""));
}

// RFC 9449 §4.3 check 1: "there is not more than one DPoP HTTP request header field".
#[tokio::test]
async fn rfc9449_4_3_more_than_one_dpop_header_is_invalid_request() {
    let app = spawn_app().await;
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    let res = app
        .request(
            Request::post("/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::AUTHORIZATION, basic_header("svc", &secret))
                .header("dpop", "a.b.c")
                .header("dpop", "d.e.f")
                .body(Body::from("grant_type=client_credentials"))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_request");
    assert!(res.json()["error_description"].as_str().unwrap().contains("DPoP"));
}

// RFC 6749 §5.1 `token_type`: without a sender constraint the token is a Bearer token, and
// introspection (RFC 7662 §2.2) names the same type.
#[tokio::test]
async fn rfc6749_5_1_token_type_is_bearer_in_the_response_and_introspection() {
    let app = spawn_app().await;
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    let token = app.token(Some(("svc", &secret)), "grant_type=client_credentials").await.json();
    assert_eq!(token["token_type"], "Bearer");
    let rs = tessera_core::client::ClientRegistration {
        client_id: Some(tessera_core::client_id::ClientId::parse("rs").unwrap()),
        client_name: "rs".into(),
        auth_method: Some(AuthMethod::ClientSecretBasic),
        introspection: true,
        ..Default::default()
    };
    let rs_secret = app.register(rs).await.unwrap();
    let form = format!("token={}", token["access_token"].as_str().unwrap());
    let res = app.post_form("/introspect", Some(("rs", &rs_secret)), &form).await;
    assert_eq!(res.json()["active"], true);
    assert_eq!(res.json()["token_type"], "Bearer");
}
