//! RFC 6750 §3 answers, with RFC 9728 §5.1 `resource_metadata` in each challenge.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::*;

const METADATA: &str = "https://orders.example/.well-known/oauth-protected-resource/api";

#[tokio::test]
async fn rfc6750_3_1_a_request_without_token_gets_a_bare_challenge_with_resource_metadata() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    for authorization in [None, Some("Basic YTpi")] {
        let answer = call(&app, "GET", "/orders", authorization).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.challenge.unwrap(), format!("Bearer resource_metadata=\"{METADATA}\""));
        assert!(answer.body.is_empty());
    }
}

#[tokio::test]
async fn rfc6750_3_1_a_malformed_authorization_header_is_invalid_request() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    for bad in ["Bearer", "Bearer a b", "Bearer \"x\""] {
        let answer = call(&app, "GET", "/orders", Some(bad)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(answer.challenge.unwrap().starts_with("Bearer error=\"invalid_request\""));
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
}

#[tokio::test]
async fn rfc6750_3_1_invalid_token_says_nothing_that_helps_an_attacker() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    let mut expired = issuer.claims();
    expired["exp"] = (now() - 100).into();
    let other = TestKey::new("k1");
    for token in
        [issuer.token(&expired), other.sign("at+jwt", &issuer.claims()), "abc.def.ghi".into()]
    {
        let answer = get_with(&app, &token).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            answer.challenge.unwrap(),
            format!("Bearer error=\"invalid_token\", resource_metadata=\"{METADATA}\"")
        );
        // One fixed body whatever the failed check.
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&answer.body).unwrap(),
            json!({"error": "invalid_token"})
        );
    }
}

#[tokio::test]
async fn rfc6750_3_1_insufficient_scope_names_every_scope_the_route_needs() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    let token = issuer.token(&issuer.claims()); // orders:read only
    let answer = call(&app, "POST", "/orders", Some(&format!("Bearer {token}"))).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenge.unwrap(),
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"orders:read orders:write\", \
             resource_metadata=\"{METADATA}\""
        )
    );
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    let mut claims = issuer.claims();
    claims["scope"] = "orders:write orders:read".into();
    let both = issuer.token(&claims);
    let answer = call(&app, "POST", "/orders", Some(&format!("Bearer {both}"))).await;
    assert_eq!(answer.status, StatusCode::OK);
}
