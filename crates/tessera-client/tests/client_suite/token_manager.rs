//! The client-credentials token manager against Tessera's token endpoint (RFC 6749 §4.4).

use std::sync::Arc;
use std::time::Duration;

use tessera_client::{
    BreakerState, ClientCredentials, Error, ManagerConfig, ManualClock, SharedCache, TokenManager,
    TokenRequest,
};
use tessera_core::client::AuthMethod;

use crate::common::{TestServer, http, now, skip};

/// Tessera's default access-token lifetime (`expires_in`).
const TTL: i64 = 900;

fn config() -> ManagerConfig {
    ManagerConfig {
        refresh_ahead: Duration::from_secs(60),
        refresh_jitter: Duration::ZERO,
        failure_threshold: 2,
        base_backoff: Duration::from_secs(10),
        max_backoff: Duration::from_secs(40),
        ..ManagerConfig::default()
    }
}

async fn manager(
    server: &TestServer,
    credentials: ClientCredentials,
    config: ManagerConfig,
) -> (TokenManager, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at(now()));
    let manager = TokenManager::builder(
        http(),
        server.issuer.clone(),
        format!("{}/token", server.issuer),
        credentials,
    )
    .unwrap()
    .clock(clock.clone())
    .config(config)
    .build();
    (manager, clock)
}

async fn basic_client(server: &TestServer) -> ClientCredentials {
    let (id, secret) =
        server.service_client("svc", &["orders:read"], AuthMethod::ClientSecretBasic).await;
    ClientCredentials::secret_basic(id, secret)
}

fn orders() -> TokenRequest {
    TokenRequest::new(["orders:read"], None)
}

#[tokio::test]
async fn rfc6749_4_4_tokens_are_fetched_with_basic_and_post_credentials_and_cached() {
    let server = TestServer::start().await;
    let (id, secret) =
        server.service_client("poster", &["orders:read"], AuthMethod::ClientSecretPost).await;
    for credentials in [basic_client(&server).await, ClientCredentials::secret_post(id, secret)] {
        let before = server.token_calls();
        let (m, _) = manager(&server, credentials, config()).await;
        let first = m.token(&orders()).await.unwrap();
        assert_eq!(m.token(&orders()).await.unwrap(), first);
        assert_eq!(server.token_calls() - before, 1);
        let claims =
            server.verifier().await.verify_access_token(first.expose(), &server.issuer, now());
        assert!(claims.unwrap().claims().scope.contains("orders:read"));
        let metrics = m.metrics();
        assert_eq!((metrics.hits, metrics.misses, metrics.fetches), (1, 1, 1));
    }
}

#[tokio::test]
async fn refresh_ahead_fetches_60_seconds_before_exp_by_the_managers_clock() {
    let server = TestServer::start().await;
    let (m, clock) = manager(&server, basic_client(&server).await, config()).await;
    let first = m.token(&orders()).await.unwrap();
    assert_eq!(server.token_calls(), 1);
    // One second before the refresh time: still the cached token.
    clock.advance_ms((TTL - 60 - 1) * 1000);
    assert_eq!(m.token(&orders()).await.unwrap(), first);
    assert_eq!(server.token_calls(), 1);
    // At exp − 60 s: a new token, while the old one is still valid.
    clock.advance_ms(1000);
    server.clock.advance(TTL - 60);
    let second = m.token(&orders()).await.unwrap();
    assert_ne!(second, first);
    assert_eq!(server.token_calls(), 2);
}

#[tokio::test]
async fn refresh_ahead_jitter_refreshes_within_the_jitter_window_before_the_refresh_time() {
    let server = TestServer::start().await;
    let config = ManagerConfig { refresh_jitter: Duration::from_secs(10), ..config() };
    let (m, clock) = manager(&server, basic_client(&server).await, config).await;
    m.token(&orders()).await.unwrap();
    clock.advance_ms((TTL - 71) * 1000);
    m.token(&orders()).await.unwrap();
    assert_eq!(server.token_calls(), 1, "not before exp − 60 s − jitter");
    clock.advance_ms(11_000);
    m.token(&orders()).await.unwrap();
    assert_eq!(server.token_calls(), 2, "by exp − 60 s at the latest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_flight_100_concurrent_callers_cause_one_token_request() {
    let server = TestServer::start().await;
    let (m, _) = manager(&server, basic_client(&server).await, config()).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (m, barrier) = (m.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                m.token(&orders()).await.unwrap()
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap());
    }
    assert_eq!(server.token_calls(), 1);
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert_eq!(m.metrics().fetches, 1);
}

#[tokio::test]
async fn the_change_hook_sees_every_new_token_with_its_expiry() {
    let server = TestServer::start().await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let clock = Arc::new(ManualClock::at(now()));
    let log = seen.clone();
    let m = TokenManager::builder(
        http(),
        server.issuer.clone(),
        format!("{}/token", server.issuer),
        basic_client(&server).await,
    )
    .unwrap()
    .clock(clock.clone())
    .config(config())
    .on_change(move |change| {
        log.lock().unwrap().push((change.access_token.clone(), change.expires_at_ms));
    })
    .build();
    let first = m.token(&orders()).await.unwrap();
    m.token(&orders()).await.unwrap();
    clock.advance_ms((TTL - 60) * 1000);
    let second = m.token(&orders()).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, first);
    assert_eq!(seen[1].0, second);
    assert_eq!(seen[1].1, clock.now_ms_for_test() + TTL * 1000);
}

trait NowMs {
    fn now_ms_for_test(&self) -> i64;
}

impl NowMs for ManualClock {
    fn now_ms_for_test(&self) -> i64 {
        tessera_client::Clock::now_ms(self)
    }
}

#[tokio::test]
async fn rfc6749_5_2_invalid_client_is_returned_at_once_and_does_not_open_the_breaker() {
    let server = TestServer::start().await;
    server.service_client("svc", &["orders:read"], AuthMethod::ClientSecretBasic).await;
    let wrong = ClientCredentials::secret_basic("svc", "not-the-secret");
    let (m, _) = manager(&server, wrong, config()).await;
    for n in 1..=3 {
        let e = m.token(&orders()).await.unwrap_err();
        assert_eq!(e.oauth_code(), Some(tessera_http::ErrorCode::InvalidClient), "{e}");
        assert!(!e.is_transient());
        // One request per call: not retried, and no breaker in the way of a fixed secret.
        assert_eq!(server.token_calls(), n);
        assert_eq!(m.breaker_state(&orders()).await, BreakerState::Closed);
    }
}

#[tokio::test]
async fn breaker_serves_the_cached_token_until_exp_then_a_clear_error_and_recovers() {
    let mut server = TestServer::start().await;
    let (m, clock) = manager(&server, basic_client(&server).await, config()).await;
    let first = m.token(&orders()).await.unwrap();

    // The token endpoint goes away; the token is due for refresh (30 s before exp).
    server.stop().await;
    clock.advance_ms((TTL - 30) * 1000);
    // Two failures (the threshold): each call tries, fails, and is served the valid token.
    assert_eq!(m.token(&orders()).await.unwrap(), first);
    assert_eq!(m.breaker_state(&orders()).await, BreakerState::Closed);
    assert_eq!(m.token(&orders()).await.unwrap(), first);
    assert_eq!(m.breaker_state(&orders()).await, BreakerState::Open);
    let metrics = m.metrics();
    assert_eq!((metrics.fetches, metrics.fetch_failures, metrics.open_breakers), (3, 2, 1));
    // Open: no request is even attempted, the token is still served.
    assert_eq!(m.token(&orders()).await.unwrap(), first);
    assert_eq!(m.metrics().fetches, 3);

    // Past exp (and past the 10–15 s backoff): the half-open probe fails, nothing valid is
    // left, and the caller gets a typed error.
    clock.advance_ms(31_000);
    let e = m.token(&orders()).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e}");
    assert_eq!(m.metrics().fetches, 4);
    // Open again (20–30 s now): the error comes at once, without a request.
    let e = m.token(&orders()).await.unwrap_err();
    assert!(e.to_string().contains("circuit breaker is open"), "{e}");
    assert_eq!(m.metrics().fetches, 4);

    // The endpoint returns; after the backoff the probe succeeds and the breaker closes.
    server.restart().await;
    server.clock.advance(TTL);
    clock.advance_ms(31_000);
    let fresh = m.token(&orders()).await.unwrap();
    assert_ne!(fresh, first);
    assert_eq!(m.breaker_state(&orders()).await, BreakerState::Closed);
    assert_eq!(m.metrics().open_breakers, 0);
    assert_eq!(m.token(&orders()).await.unwrap(), fresh);
}

/// Two processes of this test binary, started together against one Redis, cause one token
/// request: the first takes the lock and fetches, the other waits for its sealed entry.
#[tokio::test]
async fn shared_cache_two_processes_sharing_redis_cause_one_token_request() {
    let redis_url =
        std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut probe = match redis::Client::open(redis_url.as_str()) {
        Ok(client) => match client.get_multiplexed_async_connection().await {
            Ok(conn) => conn,
            Err(e) => {
                skip(&format!("Redis is unreachable at {redis_url}: {e}"));
                return;
            }
        },
        Err(e) => {
            skip(&format!("bad Redis URL {redis_url}: {e}"));
            return;
        }
    };
    let server = TestServer::start().await;
    let (id, secret) =
        server.service_client("svc", &["orders:read"], AuthMethod::ClientSecretBasic).await;
    let prefix = format!("tessera-client-test:{}", tessera_core::secret::random_id::<8>());
    let start_at = tessera_client::Clock::now_ms(&tessera_client::SystemClock) + 1500;
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["token_manager::shared_cache_worker", "--exact", "--nocapture"])
                .env("TESSERA_CLIENT_WORKER", "1")
                .env("WORKER_ISSUER", &server.issuer)
                .env("WORKER_CLIENT", &id)
                .env("WORKER_SECRET", &secret)
                .env("WORKER_REDIS", &redis_url)
                .env("WORKER_PREFIX", &prefix)
                .env("WORKER_START_AT", start_at.to_string())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut digests = Vec::new();
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap();
        let out = out.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{stdout}");
        let digest = stdout.lines().find_map(|l| l.strip_prefix("TOKEN-DIGEST ")).unwrap();
        digests.push(digest.to_owned());
    }
    assert_eq!(server.token_calls(), 1, "two instances, one token request");
    assert_eq!(digests[0], digests[1], "both instances use the same token");

    // At rest the token is sealed: the only value under the prefix is not the JWT.
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut probe).await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}: the lock is released, one entry remains");
    let raw: Vec<u8> = redis::cmd("GET").arg(&keys[0]).query_async(&mut probe).await.unwrap();
    assert!(raw.len() > 12 + 16);
    assert!(!raw.windows(3).any(|w| w == b"eyJ"), "no JWT in clear");
    let _: () = redis::cmd("DEL").arg(&keys[0]).query_async(&mut probe).await.unwrap();
}

/// The child half of the test above; does nothing unless started by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_cache_worker() {
    if std::env::var("TESSERA_CLIENT_WORKER").is_err() {
        return;
    }
    let var = |name| std::env::var(name).unwrap();
    let issuer = var("WORKER_ISSUER");
    // The key is the same in both processes (a configured secret in production).
    let shared =
        SharedCache::connect(&var("WORKER_REDIS"), &[7u8; 32], var("WORKER_PREFIX")).await.unwrap();
    let m = TokenManager::builder(
        http(),
        issuer.clone(),
        format!("{issuer}/token"),
        ClientCredentials::secret_basic(var("WORKER_CLIENT"), var("WORKER_SECRET")),
    )
    .unwrap()
    .shared(shared)
    .build();
    let start_at: i64 = var("WORKER_START_AT").parse().unwrap();
    let wait = start_at - tessera_client::Clock::now_ms(&tessera_client::SystemClock);
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.token(&orders()).await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, tokens[0].expose().as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    println!("TOKEN-DIGEST {hex}");
}

#[tokio::test]
async fn rfc7523_2_2_private_key_jwt_clients_get_tokens_with_a_signed_assertion() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use jsonwebtoken::{Algorithm, EncodingKey, jwk::Jwk, jwk::JwkSet};
    use tessera_core::client::ClientRegistration;
    use tessera_core::client_id::ClientId;

    let server = TestServer::start().await;
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let der = pair.to_pkcs8v1().unwrap();
    let encoding = EncodingKey::from_ec_der(der.as_ref());
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("k1".into());
    let jwks = serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap();
    server
        .register(ClientRegistration {
            client_id: Some(ClientId::parse("signer").unwrap()),
            client_name: "signer".into(),
            scope: crate::common::scope_set(&["orders:read"]),
            auth_method: Some(AuthMethod::PrivateKeyJwt),
            jwks: Some(jwks),
            ..Default::default()
        })
        .await;
    let credentials =
        ClientCredentials::private_key_jwt("signer", encoding, Algorithm::ES256, Some("k1".into()));
    let (m, _) = manager(&server, credentials, config()).await;
    let token = m.token(&orders()).await.unwrap();
    let verified =
        server.verifier().await.verify_access_token(token.expose(), &server.issuer, now());
    assert_eq!(verified.unwrap().claims().client_id, "signer");
}

#[tokio::test]
async fn shared_cache_an_entry_sealed_under_another_key_is_not_used() {
    let redis_url =
        std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("tessera-client-test:{}", tessera_core::secret::random_id::<8>());
    let Ok(first_cache) = SharedCache::connect(&redis_url, &[1u8; 32], prefix.clone()).await else {
        skip(&format!("Redis is unreachable at {redis_url}"));
        return;
    };
    let server = TestServer::start().await;
    let (id, secret) =
        server.service_client("svc", &["orders:read"], AuthMethod::ClientSecretBasic).await;
    let build = |cache| {
        TokenManager::builder(
            http(),
            server.issuer.clone(),
            format!("{}/token", server.issuer),
            ClientCredentials::secret_basic(id.clone(), secret.clone()),
        )
        .unwrap()
        .shared(cache)
        .build()
    };
    let a = build(first_cache).token(&orders()).await.unwrap();
    let same_key = SharedCache::connect(&redis_url, &[1u8; 32], prefix.clone()).await.unwrap();
    assert_eq!(build(same_key).token(&orders()).await.unwrap(), a);
    assert_eq!(server.token_calls(), 1, "an instance with the same key reads the entry");
    let other_key = SharedCache::connect(&redis_url, &[2u8; 32], prefix.clone()).await.unwrap();
    let b = build(other_key).token(&orders()).await.unwrap();
    assert_ne!(a, b, "an entry that does not open under this key is ignored");
    assert_eq!(server.token_calls(), 2);
    let mut conn =
        redis::Client::open(redis_url.as_str()).unwrap().get_multiplexed_async_connection().await;
    if let Ok(conn) = conn.as_mut() {
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(conn).await.unwrap();
        for key in keys {
            let _: () = redis::cmd("DEL").arg(key).query_async(conn).await.unwrap();
        }
    }
}
