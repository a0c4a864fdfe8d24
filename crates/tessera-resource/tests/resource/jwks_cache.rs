//! The rotation-safe key cache: a new kid on first sight, one fetch for a flood of misses,
//! the last good keys while the JWKS endpoint is down.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;
use tessera_resource::TokenValidator;

use crate::support::*;

#[tokio::test]
async fn rfc7517_4_5_a_token_with_a_new_kid_is_accepted_on_first_sight_with_one_fetch() {
    let issuer = TestIssuer::start().await;
    let validator = issuer.validator().await;
    let app = app(&validator);
    assert_eq!(issuer.fetches(), 1);
    let rotated = TestKey::new("k2");
    issuer.publish(&rotated);
    let token = rotated.sign("at+jwt", &issuer.claims());
    // Many requests miss at once: they share one fetch (single flight).
    let calls = (0..20).map(|_| {
        let (app, token) = (app.clone(), token.clone());
        tokio::spawn(async move { get_with(&app, &token).await.status })
    });
    for status in futures_join(calls).await {
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(issuer.fetches(), 2);
    assert_eq!(validator.jwks_fetches(&issuer.issuer), Some(2));
}

/// A token accepted before is remembered with the key set that verified it: once its key has
/// left the set (the issuer retired or revoked it), it is verified again and refused.
#[tokio::test]
async fn rfc7517_4_5_a_remembered_token_is_refused_once_its_key_has_left_the_set() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    let token = issuer.token(&issuer.claims());
    for _ in 0..2 {
        assert_eq!(get_with(&app, &token).await.status, StatusCode::OK);
    }
    // The issuer rotates to k2 and drops k1; k2's first token makes the validator fetch.
    let rotated = TestKey::new("k2");
    *issuer.state.keys.lock().unwrap() = vec![rotated.jwk()];
    let fresh = rotated.sign("at+jwt", &issuer.claims());
    assert_eq!(get_with(&app, &fresh).await.status, StatusCode::OK);
    assert_eq!(issuer.fetches(), 2);
    assert_eq!(get_with(&app, &token).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(get_with(&app, &fresh).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rfc8725_2_a_flood_of_forged_kids_costs_one_fetch_per_cooldown() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    let forger = TestKey::new("forged");
    let calls = (0..50).map(|i| {
        let app = app.clone();
        let token = TestKey::new(&format!("forged-{i}")).sign("at+jwt", &issuer.claims());
        tokio::spawn(async move { get_with(&app, &token).await.status })
    });
    for status in futures_join(calls).await {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..10 {
        let token = forger.sign("at+jwt", &issuer.claims());
        assert_eq!(get_with(&app, &token).await.status, StatusCode::UNAUTHORIZED);
    }
    // The start-up fetch and one for the whole flood, within the 30 s cooldown.
    assert_eq!(issuer.fetches(), 2);
    // Valid tokens are unaffected.
    assert_eq!(get_with(&app, &issuer.token(&issuer.claims())).await.status, StatusCode::OK);
}

#[tokio::test]
async fn jwks_endpoint_down_keeps_the_last_good_keys_in_use() {
    let issuer = TestIssuer::start().await;
    let config = issuer.config().jwks_refetch_cooldown(Duration::ZERO);
    let app = app(&TokenValidator::discover(config).await.unwrap());
    issuer.state.up.store(false, Ordering::SeqCst);
    // An unknown kid makes the validator fetch, and the fetch fails …
    let stranger = TestKey::new("k9").sign("at+jwt", &issuer.claims());
    assert_eq!(get_with(&app, &stranger).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(issuer.fetches(), 2);
    // … but the keys fetched before still verify the issuer's tokens.
    for _ in 0..3 {
        assert_eq!(get_with(&app, &issuer.token(&issuer.claims())).await.status, StatusCode::OK);
    }
    // Back up: a key published meanwhile is found on first sight.
    issuer.state.up.store(true, Ordering::SeqCst);
    let rotated = TestKey::new("k2");
    issuer.publish(&rotated);
    let token = rotated.sign("at+jwt", &issuer.claims());
    assert_eq!(get_with(&app, &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_issuer_whose_keys_cannot_be_read_at_start_is_a_setup_error() {
    let issuer = TestIssuer::start().await;
    issuer.state.up.store(false, Ordering::SeqCst);
    let error = TokenValidator::discover(issuer.config()).await.unwrap_err();
    assert!(error.to_string().contains("cannot fetch the keys"), "{error}");
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut all = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        all.push(handle.await.unwrap());
    }
    all
}

/// Moves tokio's clock (which the key cache reads) forward by `by` at once, then lets it run
/// on in real time: the periodic refresh is tested without waiting minutes.
async fn time_passes(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

/// Waits (in real time) until the issuer has served `fetches` JWKS requests.
async fn until_fetches(issuer: &TestIssuer, fetches: usize) {
    for _ in 0..200 {
        if issuer.fetches() >= fetches {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the JWKS was fetched {} times, not {fetches}", issuer.fetches());
}

#[tokio::test]
async fn rfc9111_5_2_2_1_the_jwks_is_refreshed_when_its_max_age_has_passed() {
    let issuer = TestIssuer::start().await;
    *issuer.state.cache_control.lock().unwrap() = Some("public, max-age=600".into());
    let app = app(&issuer.validator().await);
    assert_eq!(issuer.fetches(), 1);
    // A key published meanwhile, not yet used by any token.
    let rotated = TestKey::new("k2");
    issuer.publish(&rotated);
    // Within max-age: the cached set is used, nothing fetched.
    time_passes(Duration::from_secs(590)).await;
    assert_eq!(get_with(&app, &issuer.token(&issuer.claims())).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(issuer.fetches(), 1);
    // Past max-age: the next request starts one background refresh (and is not held up).
    time_passes(Duration::from_secs(11)).await;
    assert_eq!(get_with(&app, &issuer.token(&issuer.claims())).await.status, StatusCode::OK);
    until_fetches(&issuer, 2).await;
    // The refreshed set holds the new key: its token needs no unknown-kid fetch.
    let token = rotated.sign("at+jwt", &issuer.claims());
    assert_eq!(get_with(&app, &token).await.status, StatusCode::OK);
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn a_max_age_below_five_minutes_is_raised_to_five_minutes() {
    let issuer = TestIssuer::start().await;
    *issuer.state.cache_control.lock().unwrap() = Some("max-age=10".into());
    let app = app(&issuer.validator().await);
    // 10 s and then 4 minutes on: still the first set (the lower bound is 5 minutes).
    time_passes(Duration::from_secs(240)).await;
    for _ in 0..3 {
        assert_eq!(get_with(&app, &issuer.token(&issuer.claims())).await.status, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(issuer.fetches(), 1);
    // Past 5 minutes: refreshed once, however many requests arrive.
    time_passes(Duration::from_secs(61)).await;
    for _ in 0..5 {
        assert_eq!(get_with(&app, &issuer.token(&issuer.claims())).await.status, StatusCode::OK);
    }
    until_fetches(&issuer, 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(issuer.fetches(), 2);
}

/// A second audience of the same issuer (a gateway's second route) reads no metadata or keys
/// of its own, and still holds its own audience rule (RFC 9068 §4).
#[tokio::test]
async fn rfc9068_4_validators_for_two_resources_share_one_key_set_and_keep_their_audience() {
    const BILLING: &str = "https://billing.example/api";
    let issuer = TestIssuer::start().await;
    let orders = issuer.validator().await;
    let billing = orders.for_resource(BILLING, ["billing:read"]).unwrap();
    assert_eq!(issuer.fetches(), 1, "the second resource fetched no JWKS");
    assert_eq!(billing.resource(), BILLING);
    let (orders_app, billing_app) = (app(&orders), app(&billing));
    let for_orders = issuer.token(&issuer.claims());
    let mut claims = issuer.claims();
    claims["aud"] = serde_json::json!([BILLING]);
    let for_billing = issuer.token(&claims);
    assert_eq!(get_with(&orders_app, &for_orders).await.status, StatusCode::OK);
    assert_eq!(get_with(&billing_app, &for_billing).await.status, StatusCode::OK);
    // Each keeps its own audience: a token for one is refused by the other.
    assert_eq!(get_with(&billing_app, &for_orders).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(get_with(&orders_app, &for_billing).await.status, StatusCode::UNAUTHORIZED);
    // A key rotation found through one is known to the other without a fetch of its own.
    let rotated = TestKey::new("k2");
    issuer.publish(&rotated);
    assert_eq!(
        get_with(&orders_app, &rotated.sign("at+jwt", &issuer.claims())).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_with(&billing_app, &rotated.sign("at+jwt", &claims)).await.status,
        StatusCode::OK
    );
    assert_eq!(issuer.fetches(), 2);
    assert_eq!(billing.jwks_fetches(&issuer.issuer), Some(2));
    assert!(orders.for_resource("not a url", ["x"]).is_err());
}
