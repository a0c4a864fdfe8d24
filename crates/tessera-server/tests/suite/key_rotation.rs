//! Key rotation with overlap (requirements R2.5, design invariant 5): a token signed before a
//! rotation verifies against the JWKS until it expires; the new key is published before it
//! signs; the old key leaves the JWKS only after its last token expired.

use crate::common::*;
use axum::http::StatusCode;
use jsonwebtoken::jwk::JwkSet;
use tessera_core::client::AuthMethod;
use tessera_core::clock::Clock;
use tessera_core::keys::SigningAlg;

async fn published_kids(app: &TestApp) -> Vec<String> {
    let jwks: JwkSet = serde_json::from_slice(&app.get("/jwks.json").await.body).unwrap();
    jwks.keys.iter().filter_map(|k| k.common.key_id.clone()).collect()
}

async fn token_kid(app: &TestApp, secret: &str) -> String {
    let res = app.token(Some(("svc", secret)), "grant_type=client_credentials").await;
    assert_eq!(res.status, StatusCode::OK);
    let jwt = res.json()["access_token"].as_str().unwrap().to_owned();
    jsonwebtoken::decode_header(&jwt).unwrap().kid.unwrap()
}

#[tokio::test]
async fn invariant_5_tokens_verify_across_a_rotation_until_they_expire() {
    let app = spawn_app().await;
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    let settings = app.state.settings();
    let (ahead, lifetime) = (settings.key_publish_ahead, settings.max_signed_token_lifetime());
    let old_kid = token_kid(&app, &secret).await;

    let new = tessera_server::key_ring::rotate(
        &app.store,
        &settings.key_encryption_key,
        SigningAlg::ES256,
        app.clock.now(),
        ahead,
        lifetime,
    )
    .await
    .unwrap();
    app.state.reload_keys().await.unwrap();

    // Published before it signs.
    let kids = published_kids(&app).await;
    assert!(kids.contains(&new.kid) && kids.contains(&old_kid));
    assert_eq!(token_kid(&app, &secret).await, old_kid, "the new key waits for its activation");

    // After activation the new key signs; the old one is still published for its tokens.
    app.clock.advance(ahead);
    app.state.reload_keys().await.unwrap();
    assert_eq!(token_kid(&app, &secret).await, new.kid);
    assert!(published_kids(&app).await.contains(&old_kid));

    // One second before the last old token expires (plus leeway) it is still there …
    app.clock.advance(lifetime - 1);
    app.state.reload_keys().await.unwrap();
    assert!(published_kids(&app).await.contains(&old_kid));
    // … and after that it is gone, while the other algorithms' keys are untouched.
    app.clock.advance(1);
    app.state.reload_keys().await.unwrap();
    let kids = published_kids(&app).await;
    assert!(!kids.contains(&old_kid));
    assert!(kids.contains(&new.kid));
    assert_eq!(kids.len(), 3);
}
