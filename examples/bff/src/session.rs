//! Server-side sessions: what the browser's cookie stands for, kept in Redis (or a SQLite file,
//! for the processes of one host) so that every instance of the BFF sees every session and a
//! restart signs nobody out.
//!
//! Nothing in the store is usable as found: records are keyed by the SHA-256 of the cookie's
//! random 256-bit id (a dump of the store gives nobody a cookie), and their content — the
//! tokens — is sealed with AES-256-GCM under a key the instances share
//! ([`tessera_client::SealingKey`], the sealing of the client library's shared token cache),
//! bound to the record's key.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tessera_client::code_flow::PendingAuthorization;
use tessera_client::{Error, RefreshTokenStore, SealingKey, SecretString, StateStore};

/// How long a session lives from sign-in (the record's TTL in the store).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);
/// How long a started sign-in may take (as `CodeFlow`'s own limit).
const PENDING_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// How long one store command may take before the request fails instead of hanging.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// One signed-in browser, as sealed in the store.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// The access token from sign-in (a refreshed one is kept by the instance that refreshed;
    /// another instance refreshes on its own `401 invalid_token` or near expiry).
    pub access_token: String,
    pub access_expires_at_ms: i64,
    /// The current refresh token: replaced in the store before a rotated one is used.
    pub refresh_token: Option<String>,
    /// The ID token, kept for `id_token_hint` at RP-initiated logout.
    pub id_token: Option<String>,
    /// The CSRF token the page echoes on state-changing requests.
    pub csrf: String,
    /// The user's `sub`, shown on the page.
    pub sub: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("sub", &self.sub).finish_non_exhaustive()
    }
}

/// A boxed store answer, so that stores can be chosen at run time (`Arc<dyn SessionStore>`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Where sealed records are kept, by key. Implementations see only hashed keys and sealed
/// bytes ([`Sessions`] does the hashing and sealing); entries must expire by themselves.
pub trait SessionStore: Send + Sync + 'static {
    /// Stores `value` under `key`, expiring after `ttl`.
    fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> StoreFuture<'_, ()>;
    /// Replaces the value of `key` if it still exists, keeping its expiry; whether it did.
    fn replace(&self, key: &str, value: Vec<u8>) -> StoreFuture<'_, bool>;
    fn get(&self, key: &str) -> StoreFuture<'_, Option<Vec<u8>>>;
    /// Removes and returns in one step (a `state` is consumed once, even by two instances).
    fn take(&self, key: &str) -> StoreFuture<'_, Option<Vec<u8>>>;
}

/// Records in Redis under `{prefix}:{key}`, with Redis's own expiry.
pub struct RedisSessions {
    conn: ConnectionManager,
    prefix: String,
}

fn store_error(e: impl std::fmt::Display) -> Error {
    Error::Config(format!("the session store failed: {e}"))
}

async fn timed<T>(f: impl Future<Output = Result<T, redis::RedisError>>) -> Result<T, Error> {
    match tokio::time::timeout(STORE_TIMEOUT, f).await {
        Ok(result) => result.map_err(store_error),
        Err(_) => Err(store_error("Redis did not answer in time")),
    }
}

impl RedisSessions {
    /// Connects to `redis_url`; `prefix` namespaces the keys (e.g. `"bff"`).
    pub async fn connect(redis_url: &str, prefix: impl Into<String>) -> Result<Self, Error> {
        let client = redis::Client::open(redis_url).map_err(store_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(STORE_TIMEOUT))
            .set_response_timeout(Some(STORE_TIMEOUT));
        let conn = ConnectionManager::new_with_config(client, config).await.map_err(store_error)?;
        Ok(Self { conn, prefix: prefix.into() })
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, Error> {
        let mut conn = self.conn.clone();
        timed(cmd.query_async(&mut conn)).await
    }
}

impl SessionStore for RedisSessions {
    fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> StoreFuture<'_, ()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("PX").arg(ttl.as_millis() as u64);
        Box::pin(self.run(cmd))
    }

    fn replace(&self, key: &str, value: Vec<u8>) -> StoreFuture<'_, bool> {
        // XX: only an existing record (a session ended meanwhile stays ended); KEEPTTL: a
        // refresh does not lengthen the session (Redis ≥ 6.0).
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("XX").arg("KEEPTTL");
        Box::pin(async move { Ok(self.run::<Option<String>>(cmd).await?.is_some()) })
    }

    fn get(&self, key: &str) -> StoreFuture<'_, Option<Vec<u8>>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(key));
        Box::pin(self.run(cmd))
    }

    fn take(&self, key: &str) -> StoreFuture<'_, Option<Vec<u8>>> {
        // GETDEL (Redis ≥ 6.2): atomic, so two instances cannot both consume one record.
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(self.key(key));
        Box::pin(self.run(cmd))
    }
}

/// Records in a SQLite file (`bff_sessions` table), for one host: its BFF processes share the
/// file (WAL, a busy timeout). Expired rows are never returned and are purged as new ones come.
pub struct SqliteSessions {
    pool: sqlx::SqlitePool,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl SqliteSessions {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: &std::path::Path) -> Result<Self, Error> {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(STORE_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(STORE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(store_error)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bff_sessions (key TEXT PRIMARY KEY, value BLOB NOT NULL, \
             expires_at_ms INTEGER NOT NULL)",
        )
        .execute(&pool)
        .await
        .map_err(store_error)?;
        Ok(Self { pool })
    }
}

impl SessionStore for SqliteSessions {
    fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> StoreFuture<'_, ()> {
        let key = key.to_owned();
        Box::pin(async move {
            let now = now_ms();
            sqlx::query("DELETE FROM bff_sessions WHERE expires_at_ms <= ?")
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
            sqlx::query(
                "INSERT OR REPLACE INTO bff_sessions (key, value, expires_at_ms) VALUES (?, ?, ?)",
            )
            .bind(key)
            .bind(value)
            .bind(now.saturating_add(ttl.as_millis() as i64))
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
            Ok(())
        })
    }

    fn replace(&self, key: &str, value: Vec<u8>) -> StoreFuture<'_, bool> {
        let key = key.to_owned();
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE bff_sessions SET value = ? WHERE key = ? AND expires_at_ms > ?",
            )
            .bind(value)
            .bind(key)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn get(&self, key: &str) -> StoreFuture<'_, Option<Vec<u8>>> {
        let key = key.to_owned();
        Box::pin(async move {
            sqlx::query_scalar("SELECT value FROM bff_sessions WHERE key = ? AND expires_at_ms > ?")
                .bind(key)
                .bind(now_ms())
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)
        })
    }

    fn take(&self, key: &str) -> StoreFuture<'_, Option<Vec<u8>>> {
        let key = key.to_owned();
        Box::pin(async move {
            // One statement: two processes cannot both get the row.
            let taken: Option<(Vec<u8>, i64)> = sqlx::query_as(
                "DELETE FROM bff_sessions WHERE key = ? RETURNING value, expires_at_ms",
            )
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
            Ok(taken.filter(|(_, expires)| *expires > now_ms()).map(|(value, _)| value))
        })
    }
}

/// Sessions and pending sign-ins over a [`SessionStore`]: keys hashed, values sealed.
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    key: SealingKey,
}

/// `kind:` + the hex SHA-256 of a secret identifier (a session id, a `state`).
fn hashed(kind: &str, secret: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{kind}:{hex}")
}

impl Sessions {
    /// `sealing_key`: 32 bytes, the same on every instance sharing `store`.
    pub fn new(store: Arc<dyn SessionStore>, sealing_key: &[u8; 32]) -> Result<Self, Error> {
        Ok(Self { store, key: SealingKey::new(sealing_key)? })
    }

    fn seal<T: Serialize>(&self, key: &str, value: &T) -> Result<Vec<u8>, Error> {
        let plain = serde_json::to_vec(value).map_err(store_error)?;
        self.key.seal(key.as_bytes(), &plain)
    }

    /// What `sealed` holds, if it opens under our key for `key` (else it is ignored, as if
    /// absent: a record sealed under a retired key signs its user out).
    fn open<T: serde::de::DeserializeOwned>(&self, key: &str, sealed: &[u8]) -> Option<T> {
        serde_json::from_slice(&self.key.open(key.as_bytes(), sealed)?).ok()
    }

    pub async fn insert(&self, id: &str, session: &Session) -> Result<(), Error> {
        let key = hashed("session", id);
        self.store.put(&key, self.seal(&key, session)?, SESSION_LIFETIME).await
    }

    pub async fn get(&self, id: &str) -> Result<Option<Session>, Error> {
        let key = hashed("session", id);
        Ok(self.store.get(&key).await?.and_then(|sealed| self.open(&key, &sealed)))
    }

    pub async fn remove(&self, id: &str) -> Result<Option<Session>, Error> {
        let key = hashed("session", id);
        Ok(self.store.take(&key).await?.and_then(|sealed| self.open(&key, &sealed)))
    }

    /// Records a rotated refresh token; an error if the session is gone (signed out
    /// meanwhile), so that the new tokens are not used.
    async fn set_refresh_token(&self, id: &str, refresh_token: &str) -> Result<(), Error> {
        let key = hashed("session", id);
        let mut session = self.get(id).await?.ok_or_else(|| store_error("the session ended"))?;
        session.refresh_token = Some(refresh_token.to_owned());
        if self.store.replace(&key, self.seal(&key, &session)?).await? {
            Ok(())
        } else {
            Err(store_error("the session ended"))
        }
    }
}

/// `CodeFlow`'s pending sign-ins in the shared store: a sign-in started on one instance can
/// come back to another.
pub struct PendingSignIns(pub Arc<Sessions>);

impl StateStore for PendingSignIns {
    async fn put(&self, state: &str, pending: PendingAuthorization) -> Result<(), Error> {
        let key = hashed("pending", state);
        self.0.store.put(&key, self.0.seal(&key, &pending)?, PENDING_LIFETIME).await
    }

    async fn take(&self, state: &str) -> Result<Option<PendingAuthorization>, Error> {
        let key = hashed("pending", state);
        Ok(self.0.store.take(&key).await?.and_then(|sealed| self.0.open(&key, &sealed)))
    }
}

/// A session's refresh token for `Refresher`: read from and written to the shared record.
pub struct SessionRefreshToken {
    sessions: Arc<Sessions>,
    id: String,
}

impl SessionRefreshToken {
    pub fn new(sessions: Arc<Sessions>, id: &str) -> Self {
        Self { sessions, id: id.to_owned() }
    }
}

impl RefreshTokenStore for SessionRefreshToken {
    async fn load(&self) -> Result<Option<SecretString>, Error> {
        Ok(self.sessions.get(&self.id).await?.and_then(|s| s.refresh_token).map(SecretString::new))
    }

    async fn save(&self, refresh_token: &SecretString) -> Result<(), Error> {
        self.sessions.set_refresh_token(&self.id, refresh_token.expose()).await
    }
}
