//! Per-client rate limits (requirements R4.2) at the endpoints that authenticate clients:
//! `429 Too Many Requests` with `Retry-After`, in process or shared by instances through Redis
//! (`TESSERA_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`; skipped with a note when
//! unreachable, except under `CI=true`).

use crate::common::flow::page_text;
use crate::common::*;
use axum::http::StatusCode;
use tessera_core::client::ClientRegistration;
use tessera_core::client_id::ClientId;
use tessera_core::keys::{KeyEncryptionKey, SigningAlg};
use tessera_core::scope::ScopeSet;
use tessera_server::config::RawConfig;
use tessera_store::Store;

fn limited_client(id: &str, per_second: u32) -> ClientRegistration {
    ClientRegistration {
        client_id: Some(ClientId::parse(id).unwrap()),
        client_name: id.into(),
        scope: ScopeSet::parse("a:r").unwrap(),
        default_scope: ScopeSet::parse("a:r").unwrap(),
        introspection: true,
        rate_limit_per_second: Some(per_second),
        ..Default::default()
    }
}

fn assert_too_many_requests(res: &Response, what: &str) {
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{what}: {}", page_text(res));
    let retry_after: u64 = res
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: no Retry-After"))
        .parse()
        .unwrap();
    assert_eq!(retry_after, 1, "{what}: at 2/s a slot frees within 1 s");
    assert_eq!(res.json()["error"], "too_many_requests", "{what}");
    assert_eq!(res.header("cache-control"), Some("no-store"), "{what}");
}

#[tokio::test]
async fn r4_2_a_client_over_its_limit_at_token_gets_429_with_retry_after() {
    let app = spawn_app().await;
    let secret = app.register(limited_client("limited", 2)).await.unwrap();
    let other = app.register(limited_client("other", 2)).await.unwrap();
    for i in 0..2 {
        let res = app.token(Some(("limited", &secret)), "grant_type=client_credentials").await;
        assert_eq!(res.status, StatusCode::OK, "request {i}");
    }
    let res = app.token(Some(("limited", &secret)), "grant_type=client_credentials").await;
    assert_too_many_requests(&res, "third request");
    assert!(res.json().get("access_token").is_none());
    // The limit is per client.
    let res = app.token(Some(("other", &other)), "grant_type=client_credentials").await;
    assert_eq!(res.status, StatusCode::OK);
    // And it refills.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = app.token(Some(("limited", &secret)), "grant_type=client_credentials").await;
    assert_eq!(res.status, StatusCode::OK);
}

#[tokio::test]
async fn r4_2_the_limit_applies_at_introspect_and_revoke() {
    let app = spawn_app().await;
    let a = app.register(limited_client("a", 2)).await.unwrap();
    let token =
        app.token(Some(("a", &a)), "grant_type=client_credentials").await.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
    let form = format!("token={token}");
    // One bucket per client across the three endpoints: the token request above took one slot.
    let res = app.post_form("/introspect", Some(("a", &a)), &form).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_too_many_requests(
        &app.post_form("/introspect", Some(("a", &a)), &form).await,
        "/introspect",
    );
    assert_too_many_requests(&app.post_form("/revoke", Some(("a", &a)), &form).await, "/revoke");

    // Each endpoint on its own.
    for path in ["/introspect", "/revoke"] {
        let id = format!("client-for-{}", &path[1..]);
        let secret = app.register(limited_client(&id, 2)).await.unwrap();
        for i in 0..2 {
            let res = app.post_form(path, Some((&id, &secret)), &form).await;
            assert_eq!(res.status, StatusCode::OK, "{path} request {i}");
        }
        assert_too_many_requests(&app.post_form(path, Some((&id, &secret)), &form).await, path);
    }
}

#[tokio::test]
async fn issue17_5_wrong_secrets_do_not_spend_the_clients_budget() {
    let app = spawn_app().await;
    let secret = app.register(limited_client("victim", 2)).await.unwrap();
    for _ in 0..5 {
        let res = app.token(Some(("victim", "guess")), "grant_type=client_credentials").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    // The budget of 2/s belongs to requests that authenticated as the client.
    for i in 0..2 {
        let res = app.token(Some(("victim", &secret)), "grant_type=client_credentials").await;
        assert_eq!(res.status, StatusCode::OK, "request {i} with the right secret");
    }
    let res = app.token(Some(("victim", &secret)), "grant_type=client_credentials").await;
    assert_too_many_requests(&res, "the client's own third request");
}

/// A token request from `peer` with Basic credentials.
async fn token_from(app: &TestApp, peer: &str, id: &str, secret: &str) -> Response {
    let peer: std::net::SocketAddr = format!("{peer}:40000").parse().unwrap();
    let mut request = axum::http::Request::post("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", basic_header(id, secret))
        .body(axum::body::Body::from("grant_type=client_credentials"))
        .unwrap();
    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    app.request(request).await
}

#[tokio::test]
async fn issue17_5_failures_and_unknown_clients_are_limited_per_source() {
    let app = spawn_app_configured(RawConfig {
        client_auth_failures_per_source: Some(3),
        ..Default::default()
    })
    .await;
    let secret = app.register(limited_client("svc", 100)).await.unwrap();
    // Random client_ids (each a lookup) and a wrong secret from one source.
    for id in ["random-1", "random-2", "svc"] {
        let res = token_from(&app, "203.0.113.66", id, "guess").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{id}");
    }
    let res = token_from(&app, "203.0.113.66", "random-3", "guess").await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "refused before any lookup");
    assert!(res.header("retry-after").is_some());
    // Other sources are not affected, and successes are not failures.
    for _ in 0..5 {
        let res = token_from(&app, "198.51.100.7", "svc", &secret).await;
        assert_eq!(res.status, StatusCode::OK);
    }
}

/// Two instances (each with its own state, cache and limiter) of one server on one database,
/// with `raw` as configuration.
async fn two_instances(raw: impl Fn() -> RawConfig) -> (TestApp, TestApp) {
    let (db_path, url) = temp_db();
    let kek = KeyEncryptionKey::generate_encoded();
    let store = Store::connect(&url).await.unwrap();
    let mut a = TestApp::on_store(store, settings_from(SigningAlg::ES256, &url, &kek, raw())).await;
    a.db_path = db_path;
    let b = TestApp::on_store(
        Store::connect(&url).await.unwrap(),
        settings_from(SigningAlg::ES256, &url, &kek, raw()),
    )
    .await;
    (a, b)
}

#[tokio::test]
async fn r4_2_in_process_limits_are_per_instance() {
    let (a, b) = two_instances(RawConfig::default).await;
    let secret = a.register(limited_client("svc", 2)).await.unwrap();
    for app in [&a, &a, &b, &b] {
        let res = app.token(Some(("svc", &secret)), "grant_type=client_credentials").await;
        assert_eq!(res.status, StatusCode::OK);
    }
    for app in [&a, &b] {
        let res = app.token(Some(("svc", &secret)), "grant_type=client_credentials").await;
        assert_too_many_requests(&res, "each instance counts its own");
    }
}

#[tokio::test]
async fn r4_2_two_instances_sharing_redis_enforce_one_limit() {
    if !redis_available("r4_2_two_instances_sharing_redis_enforce_one_limit").await {
        return;
    }
    let (a, b) =
        two_instances(|| RawConfig { redis_url: Some(redis_url()), ..Default::default() }).await;
    // At 3/s one slot frees every 333 ms: the five requests must fit in that for the result to
    // mean anything, so a run that was too slow (a loaded machine) is tried again.
    for _attempt in 0..3 {
        // Keys in Redis are per client_id: a fresh one per run, so runs do not share buckets.
        let id = format!("rl-{}", tessera_core::secret::random_id::<12>());
        let secret = a.register(limited_client(&id, 3)).await.unwrap();
        let started = std::time::Instant::now();
        let mut within_limit = Vec::new();
        for app in [&a, &a, &b] {
            within_limit
                .push(app.token(Some((&id, &secret)), "grant_type=client_credentials").await);
        }
        let over_a = a.token(Some((&id, &secret)), "grant_type=client_credentials").await;
        let over_b = b.post_form("/introspect", Some((&id, &secret)), "token=x").await;
        if started.elapsed() >= std::time::Duration::from_millis(300) {
            eprintln!("too slow to judge ({:?}); again", started.elapsed());
            continue;
        }
        for (name, res) in ["A", "A", "B"].into_iter().zip(&within_limit) {
            assert_eq!(res.status, StatusCode::OK, "{name}: {}", page_text(res));
        }
        for (name, res) in [("A", &over_a), ("B", &over_b)] {
            assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{name}: {}", page_text(res));
            assert!(res.header("retry-after").is_some());
            assert_eq!(res.json()["error"], "too_many_requests");
        }
        return;
    }
    panic!("three runs were too slow to judge the shared limit");
}
