//! The BFF's session stores, each test run over both: Redis (`TESSERA_TEST_REDIS_URL`, default
//! redis://127.0.0.1:6379; required under `CI=true`) and a SQLite file. Records keyed by
//! hashes, sealed, expiring with the session; pending sign-ins consumed once.

use std::sync::Arc;

use bff::{
    PendingSignIns, RedisSessions, SESSION_LIFETIME, Session, SessionRefreshToken, SessionStore,
    Sessions, SqliteSessions,
};
use tessera_client::{RefreshTokenStore, SecretString, StateStore};

/// A store as the BFF uses it, and a raw view of what it holds.
struct Backend {
    store: Arc<dyn SessionStore>,
    raw: Raw,
    /// The SQLite file's directory, removed afterwards.
    dir: Option<std::path::PathBuf>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

enum Raw {
    Redis { conn: redis::aio::MultiplexedConnection, prefix: String },
    Sqlite(sqlx::SqlitePool),
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

impl Raw {
    /// Every record as stored: its key, its bytes, its remaining lifetime in ms.
    async fn records(&mut self) -> Vec<(String, Vec<u8>, i64)> {
        match self {
            Raw::Redis { conn, prefix } => {
                let keys: Vec<String> =
                    redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(conn).await.unwrap();
                let mut records = Vec::new();
                for key in keys {
                    let value: Vec<u8> =
                        redis::cmd("GET").arg(&key).query_async(conn).await.unwrap();
                    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(conn).await.unwrap();
                    let key = key.trim_start_matches(&format!("{prefix}:")).to_owned();
                    records.push((key, value, ttl));
                }
                records
            }
            Raw::Sqlite(pool) => {
                let rows: Vec<(String, Vec<u8>, i64)> =
                    sqlx::query_as("SELECT key, value, expires_at_ms FROM bff_sessions")
                        .fetch_all(&*pool)
                        .await
                        .unwrap();
                let now = now_ms();
                rows.into_iter().map(|(k, v, exp)| (k, v, exp - now)).collect()
            }
        }
    }

    /// Shortens a record's remaining lifetime to `ms`.
    async fn expire_in(&mut self, key: &str, ms: i64) {
        match self {
            Raw::Redis { conn, prefix } => {
                let _: () = redis::cmd("PEXPIRE")
                    .arg(format!("{prefix}:{key}"))
                    .arg(ms)
                    .query_async(conn)
                    .await
                    .unwrap();
            }
            Raw::Sqlite(pool) => {
                sqlx::query("UPDATE bff_sessions SET expires_at_ms = ? WHERE key = ?")
                    .bind(now_ms() + ms)
                    .bind(key)
                    .execute(&*pool)
                    .await
                    .unwrap();
            }
        }
    }
}

/// Redis (if reachable; required under CI) and SQLite, each fresh for `test`.
async fn backends(test: &str) -> Vec<(&'static str, Backend)> {
    let mut all = Vec::new();
    let url =
        std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let connected =
        async { redis::Client::open(url.as_str())?.get_multiplexed_async_connection().await };
    match connected.await {
        Ok(conn) => {
            let prefix = format!("bff-unit-{test}-{}-{}", std::process::id(), now_ms());
            let store = Arc::new(RedisSessions::connect(&url, &prefix).await.unwrap());
            all.push(("redis", Backend { store, raw: Raw::Redis { conn, prefix }, dir: None }));
        }
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("Redis part skipped: Redis at {url} is unreachable: {e}");
        }
        Err(e) => panic!("Redis is required under CI: {e}"),
    }
    let dir = std::env::temp_dir().join(format!("bff-{test}-{}-{}", std::process::id(), now_ms()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sessions.db");
    let store = Arc::new(SqliteSessions::open(&path).await.unwrap());
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    all.push(("sqlite", Backend { store, raw: Raw::Sqlite(pool), dir: Some(dir) }));
    all
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

#[tokio::test]
async fn a_session_record_is_keyed_by_a_hash_sealed_and_expires_with_the_session() {
    for (name, mut b) in backends("sealed").await {
        let sessions = Sessions::new(b.store.clone(), &[1; 32]).unwrap();
        sessions.insert("the-session-id", &session()).await.unwrap();

        let records = b.raw.records().await;
        assert_eq!(records.len(), 1, "{name}");
        let (key, raw, ttl_ms) = &records[0];
        assert!(key.starts_with("session:") && !key.contains("the-session-id"), "{name}: {key}");
        for plain in ["access-token", "refresh-token", "eyJ", "csrf-value", "alice-sub"] {
            assert!(
                !raw.windows(plain.len()).any(|w| w == plain.as_bytes()),
                "{name}: {plain} in plaintext"
            );
        }
        let lifetime = SESSION_LIFETIME.as_millis() as i64;
        assert!(*ttl_ms > lifetime - 60_000 && *ttl_ms <= lifetime, "{name}: TTL {ttl_ms} ms");

        assert_eq!(sessions.get("the-session-id").await.unwrap().unwrap().sub, "alice-sub");
        assert!(sessions.get("another-id").await.unwrap().is_none());
        // Another sealing key (a misconfigured instance) opens nothing: no session, no error.
        let other = Sessions::new(b.store.clone(), &[2; 32]).unwrap();
        assert!(other.get("the-session-id").await.unwrap().is_none(), "{name}");
        // Expired: gone, even before any cleanup.
        b.raw.expire_in(key, -1).await;
        assert!(sessions.get("the-session-id").await.unwrap().is_none(), "{name}: expired");
    }
}

#[tokio::test]
async fn a_rotated_refresh_token_replaces_the_stored_one_and_is_refused_for_an_ended_session() {
    for (name, mut b) in backends("rotation").await {
        let sessions = Arc::new(Sessions::new(b.store.clone(), &[1; 32]).unwrap());
        sessions.insert("id", &session()).await.unwrap();
        let key = b.raw.records().await.remove(0).0;
        // Shortened, to see that a rotation keeps the session's expiry.
        b.raw.expire_in(&key, 60_000).await;

        let tokens = SessionRefreshToken::new(sessions.clone(), "id");
        tokens.save(&SecretString::new("rotated")).await.unwrap();
        assert_eq!(tokens.load().await.unwrap().unwrap().expose(), "rotated", "{name}");
        let ttl_ms = b.raw.records().await[0].2;
        assert!(ttl_ms > 0 && ttl_ms <= 60_000, "{name}: TTL {ttl_ms} ms");

        // Signed out meanwhile: the rotation is not stored (and the caller uses no new token).
        assert!(sessions.remove("id").await.unwrap().is_some());
        assert!(tokens.save(&SecretString::new("later")).await.is_err(), "{name}");
        assert!(b.raw.records().await.is_empty(), "{name}: no record made again");
    }
}

#[tokio::test]
async fn rfc6749_10_12_a_pending_sign_in_is_consumed_once_across_instances() {
    for (name, b) in backends("pending").await {
        let sessions = || Arc::new(Sessions::new(b.store.clone(), &[1; 32]).unwrap());
        let (first, second) = (PendingSignIns(sessions()), PendingSignIns(sessions()));
        // A pending authorization as CodeFlow makes it (its serialized form).
        let pending = serde_json::from_value(serde_json::json!({
            "code_verifier": "v", "nonce": "n", "return_to": null, "expires_at_ms": i64::MAX
        }))
        .unwrap();
        first.put("the-state", pending).await.unwrap();
        // Started on one instance, the callback lands on both at once: found once only.
        let (a, b) = tokio::join!(second.take("the-state"), first.take("the-state"));
        let found = [a.unwrap().is_some(), b.unwrap().is_some()];
        assert_eq!(found.iter().filter(|f| **f).count(), 1, "{name}: {found:?}");
        assert!(second.take("the-state").await.unwrap().is_none(), "{name}");
    }
}
