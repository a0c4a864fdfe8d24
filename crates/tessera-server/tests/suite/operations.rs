//! Discovery, JWKS, health, metrics, and the promise that logs carry no secret.

use crate::common::*;
use axum::http::StatusCode;
use tessera_core::client::AuthMethod;

#[tokio::test]
async fn rfc8414_3_metadata_is_true_to_the_server() {
    let app = spawn_app().await;
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let res = app.get(path).await;
        assert_eq!(res.status, StatusCode::OK);
        let doc = res.json();
        // RFC 8414 §3.3: the issuer in the document is identical to the configured issuer.
        assert_eq!(doc["issuer"], ISSUER);
        assert_eq!(doc["token_endpoint"], format!("{ISSUER}/token"));
        assert_eq!(doc["jwks_uri"], format!("{ISSUER}/jwks.json"));
        assert_eq!(
            doc["grant_types_supported"],
            serde_json::json!([
                "authorization_code",
                "client_credentials",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ])
        );
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            serde_json::json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "none"
            ])
        );
        // Nothing that is not served is advertised.
        for absent in ["registration_endpoint", "tls_client_certificate_bound_access_tokens"] {
            assert!(doc.get(absent).is_none(), "{absent} advertised but not served");
        }
        assert_eq!(doc["pushed_authorization_request_endpoint"], format!("{ISSUER}/par"));
    }
}

#[tokio::test]
async fn rfc7517_5_jwks_publishes_public_keys_with_kid_alg_and_use() {
    let app = spawn_app().await;
    let res = app.get("/jwks.json").await;
    assert_eq!(res.status, StatusCode::OK);
    let keys = res.json()["keys"].as_array().unwrap().clone();
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    for k in &keys {
        assert!(k["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
        assert_eq!(k["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(k.get(private).is_none(), "private member {private} published");
        }
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_respond() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    app.token(Some(("svc", &secret)), "grant_type=client_credentials").await;
    let metrics = String::from_utf8(app.get("/metrics").await.body).unwrap();
    assert!(metrics.contains("tessera_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/token\""), "{metrics}");
    assert!(metrics.contains("tessera_http_request_duration_seconds_bucket"), "{metrics}");
    assert!(metrics.contains("tessera_token_requests_total"), "{metrics}");
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.store.close().await;
    assert_eq!(app.get("/readyz").await.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn r4_3_logs_of_token_requests_contain_no_secret_or_token() {
    let sink = captured_logs();
    let app = spawn_app().await;
    let secret = app.client("svc", AuthMethod::ClientSecretPost, "a:r", "a:r").await;
    let ok = app
        .token(None, &format!("grant_type=client_credentials&client_id=svc&client_secret={secret}"))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let token = ok.json()["access_token"].as_str().unwrap().to_owned();
    let refused =
        app.token(Some(("svc", "not-the-secret-123")), "grant_type=client_credentials").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    let logs = sink.text();
    assert!(logs.contains("/token"), "the requests were logged: {logs}");
    assert!(logs.contains("token_issued"), "the issuance was audited: {logs}");
    for secret_text in [secret.as_str(), token.as_str(), "not-the-secret-123"] {
        assert!(!logs.contains(secret_text), "a secret reached the logs");
    }
    let signature = token.rsplit('.').next().unwrap();
    assert!(!logs.contains(signature), "a token signature reached the logs");
}
