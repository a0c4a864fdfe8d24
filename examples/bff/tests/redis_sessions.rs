//! The BFF's session store over a real Redis (`TESSERA_TEST_REDIS_URL`, default
//! redis://127.0.0.1:6379; required under `CI=true`): records keyed by hashes, sealed, expiring
//! with the session, pending sign-ins consumed once.

use std::sync::Arc;

use bff::{
    PendingSignIns, RedisSessions, SESSION_LIFETIME, Session, SessionRefreshToken, Sessions,
};
use tessera_client::{RefreshTokenStore, SecretString, StateStore};

async fn redis() -> Option<(String, redis::aio::MultiplexedConnection)> {
    let url =
        std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let connected =
        async { redis::Client::open(url.as_str())?.get_multiplexed_async_connection().await };
    match connected.await {
        Ok(conn) => Some((url, conn)),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: Redis at {url} is unreachable: {e}");
            None
        }
        Err(e) => panic!("Redis is required under CI: {e}"),
    }
}

fn prefix(test: &str) -> String {
    format!("bff-unit-{test}-{}", std::process::id())
}

fn session() -> Session {
    Session {
        access_token: "access-token-value".into(),
        access_expires_at_ms: 0,
        refresh_token: Some("refresh-token-value".into()),
        id_token: Some("eyJ.id.token".into()),
        csrf: "csrf-value".into(),
        sub: "alice-sub".into(),
    }
}

async fn keys(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
    redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(conn).await.unwrap()
}

#[tokio::test]
async fn a_session_record_is_keyed_by_a_hash_sealed_and_expires_with_the_session() {
    let Some((url, mut conn)) = redis().await else { return };
    let prefix = prefix("sealed");
    let store = Arc::new(RedisSessions::connect(&url, &prefix).await.unwrap());
    let sessions = Sessions::new(store.clone(), &[1; 32]).unwrap();
    sessions.insert("the-session-id", &session()).await.unwrap();

    let keys = keys(&mut conn, &prefix).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with(&format!("{prefix}:session:")) && !keys[0].contains("the-session-id")
    );
    let raw: Vec<u8> = redis::cmd("GET").arg(&keys[0]).query_async(&mut conn).await.unwrap();
    for plain in ["access-token", "refresh-token", "eyJ", "csrf-value", "alice-sub"] {
        assert!(!raw.windows(plain.len()).any(|w| w == plain.as_bytes()), "{plain} in Redis");
    }
    let ttl_ms: i64 = redis::cmd("PTTL").arg(&keys[0]).query_async(&mut conn).await.unwrap();
    let lifetime = SESSION_LIFETIME.as_millis() as i64;
    assert!(ttl_ms > lifetime - 60_000 && ttl_ms <= lifetime, "TTL {ttl_ms} ms");

    assert_eq!(sessions.get("the-session-id").await.unwrap().unwrap().sub, "alice-sub");
    assert!(sessions.get("another-id").await.unwrap().is_none());
    // Another sealing key (a misconfigured instance) opens nothing: no session, no error.
    let other = Sessions::new(store, &[2; 32]).unwrap();
    assert!(other.get("the-session-id").await.unwrap().is_none());
    assert!(sessions.remove("the-session-id").await.unwrap().is_some());
    assert!(sessions.get("the-session-id").await.unwrap().is_none());
}

#[tokio::test]
async fn a_rotated_refresh_token_replaces_the_stored_one_and_is_refused_for_an_ended_session() {
    let Some((url, mut conn)) = redis().await else { return };
    let prefix = prefix("rotation");
    let store = Arc::new(RedisSessions::connect(&url, &prefix).await.unwrap());
    let sessions = Arc::new(Sessions::new(store, &[1; 32]).unwrap());
    sessions.insert("id", &session()).await.unwrap();
    let key = keys(&mut conn, &prefix).await.remove(0);
    // Shortened, to see that a rotation keeps the session's expiry (KEEPTTL).
    let _: () = redis::cmd("PEXPIRE").arg(&key).arg(60_000).query_async(&mut conn).await.unwrap();

    let tokens = SessionRefreshToken::new(sessions.clone(), "id");
    tokens.save(&SecretString::new("rotated")).await.unwrap();
    assert_eq!(tokens.load().await.unwrap().unwrap().expose(), "rotated");
    let ttl_ms: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.unwrap();
    assert!(ttl_ms > 0 && ttl_ms <= 60_000, "TTL {ttl_ms} ms");

    // Signed out meanwhile: the rotation is not stored (and the caller uses no new token).
    sessions.remove("id").await.unwrap();
    assert!(tokens.save(&SecretString::new("later")).await.is_err());
    assert!(keys(&mut conn, &prefix).await.is_empty(), "no record made again");
}

#[tokio::test]
async fn rfc6749_10_12_a_pending_sign_in_is_consumed_once_across_instances() {
    let Some((url, _)) = redis().await else { return };
    let prefix = prefix("pending");
    let sessions = |store| Arc::new(Sessions::new(store, &[1; 32]).unwrap());
    let store: Arc<dyn bff::SessionStore> =
        Arc::new(RedisSessions::connect(&url, &prefix).await.unwrap());
    let first = PendingSignIns(sessions(store.clone()));
    let second = PendingSignIns(sessions(store));
    // A pending authorization as CodeFlow makes it (serialized form).
    let pending = serde_json::from_value(serde_json::json!({
        "code_verifier": "v", "nonce": "n", "return_to": null,
        "expires_at_ms": i64::MAX
    }))
    .unwrap();
    first.put("the-state", pending).await.unwrap();
    // Started on one instance, the callback lands on the other: found once, then never again.
    let (a, b) = tokio::join!(second.take("the-state"), first.take("the-state"));
    let found = [a.unwrap().is_some(), b.unwrap().is_some()];
    assert_eq!(found.iter().filter(|f| **f).count(), 1, "{found:?}");
    assert!(second.take("the-state").await.unwrap().is_none());
}
