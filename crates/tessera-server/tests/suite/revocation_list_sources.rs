//! The revocation list (requirement R7.4) is fed by every revocation, not only `/revoke`: a
//! grant revoked because its refresh token was reused (OAuth 2.1 §4.3.1) or its code replayed
//! (RFC 6749 §4.1.2) publishes its access tokens' `jti`s to Redis as `tessera:revoked:<jti>`,
//! expiring with the token. Against the real Redis of `TESSERA_TEST_REDIS_URL`.

use axum::http::StatusCode;
use tessera_server::config::RawConfig;

use crate::common::flow::*;
use crate::common::*;

/// An app publishing to the test Redis, with alice and a first-party web client of a fresh id
/// (the Redis rate-limit buckets are per client id, so parallel runs do not share them).
pub async fn app_with_list() -> (TestApp, String, String) {
    let app =
        spawn_app_configured(RawConfig { redis_url: Some(redis_url()), ..Default::default() })
            .await;
    create_user(&app).await;
    let id = format!("web-{}", tessera_core::secret::random_id::<8>());
    let secret = app.register(web_client(&id)).await.unwrap();
    (app, id, secret)
}

/// The `jti` and `exp` of a JWT access token issued by `app`.
pub async fn jti_and_exp(app: &TestApp, token: &str) -> (String, i64) {
    let claims = verify_with_jwks_of(app, token).await;
    (claims["jti"].as_str().unwrap().to_owned(), claims["exp"].as_i64().unwrap())
}

/// Whether `jti` is on the list, and its entry expires at `exp` (Redis `EXPIRETIME`).
pub async fn assert_listed(jti: &str, exp: i64) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("tessera:revoked:{jti}");
    let expires: i64 = redis::cmd("EXPIRETIME").arg(&key).query_async(&mut conn).await.unwrap();
    assert_eq!(expires, exp, "{key} must exist and expire with the token");
}

pub async fn assert_not_listed(jti: &str) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("tessera:revoked:{jti}");
    let exists: bool = redis::cmd("EXISTS").arg(&key).query_async(&mut conn).await.unwrap();
    assert!(!exists, "{key} must not be listed");
}

#[tokio::test]
async fn r7_4_a_grant_revoked_by_refresh_token_reuse_publishes_its_access_tokens() {
    let test = "r7_4_a_grant_revoked_by_refresh_token_reuse_publishes_its_access_tokens";
    if !redis_available(test).await {
        return;
    }
    let (app, id, secret) = app_with_list().await;
    let tokens = tokens_for(&app, (&id, &secret)).await;
    let first = jti_and_exp(&app, tokens["access_token"].as_str().unwrap()).await;
    let old_refresh = tokens["refresh_token"].as_str().unwrap();
    let rotated = refresh(&app, (&id, &secret), old_refresh, "").await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", page_text(&rotated));
    let second = jti_and_exp(&app, rotated.json()["access_token"].as_str().unwrap()).await;
    assert_not_listed(&first.0).await;
    // OAuth 2.1 §4.3.1: the spent refresh token again — the whole grant is revoked, and both
    // access tokens issued from it are published.
    app.clock.advance(120);
    let reused = refresh(&app, (&id, &secret), old_refresh, "").await;
    assert_eq!(reused.json()["error"], "invalid_grant");
    assert_listed(&first.0, first.1).await;
    assert_listed(&second.0, second.1).await;
}

#[tokio::test]
async fn r7_4_a_grant_revoked_by_code_replay_publishes_its_access_tokens() {
    let test = "r7_4_a_grant_revoked_by_code_replay_publishes_its_access_tokens";
    if !redis_available(test).await {
        return;
    }
    let (app, id, secret) = app_with_list().await;
    let code = code_for(&app, &id, "").await;
    let res = exchange(&app, (&id, &secret), &code, "").await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    let (jti, exp) = jti_and_exp(&app, res.json()["access_token"].as_str().unwrap()).await;
    assert_not_listed(&jti).await;
    // RFC 6749 §4.1.2: the code presented again by its client.
    let replay = exchange(&app, (&id, &secret), &code, "").await;
    assert_eq!(replay.json()["error"], "invalid_grant");
    assert_listed(&jti, exp).await;
}
