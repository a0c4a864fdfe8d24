//! The cache shared by every instance of a service (Redis): the token of each cache key,
//! sealed with AES-256-GCM under a key the instances share (never plaintext in Redis), and a
//! short lock so that instances starting together make one token request, not one each.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::random;
use crate::seal::SealingKey;

/// How long one Redis command may take before the instance goes on without the cache.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// Deletes the lock only if it is still ours (another instance may hold it after ours
/// expired).
const UNLOCK_LUA: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
";

/// A token as the shared cache holds it (inside the sealed value).
#[derive(Serialize, Deserialize)]
pub(crate) struct SharedEntry {
    pub access_token: String,
    pub exp_ms: i64,
}

/// The shared cache: a Redis connection, the sealing key and a key prefix.
pub struct SharedCache {
    conn: ConnectionManager,
    key: SealingKey,
    prefix: String,
    lock_ttl: Duration,
    unlock: redis::Script,
}

impl std::fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// A held lock: its key and the random value that proves it is ours.
pub(crate) struct HeldLock {
    key: String,
    value: String,
}

fn redis_error(e: impl std::fmt::Display) -> Error {
    Error::SharedCache(e.to_string())
}

impl SharedCache {
    /// Connects to `redis_url`. `encryption_key` (32 bytes, the same on every instance)
    /// seals the tokens; `prefix` namespaces the keys (e.g. `"myservice:tokens"`).
    pub async fn connect(
        redis_url: &str,
        encryption_key: &[u8; 32],
        prefix: impl Into<String>,
    ) -> Result<Self, Error> {
        let client = redis::Client::open(redis_url).map_err(redis_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let conn = ConnectionManager::new_with_config(client, config).await.map_err(redis_error)?;
        Ok(Self {
            conn,
            key: SealingKey::new(encryption_key)?,
            prefix: prefix.into(),
            lock_ttl: Duration::from_secs(5),
            unlock: redis::Script::new(UNLOCK_LUA),
        })
    }

    /// How long the fetch lock is held at most (default 5 s): another instance fetches itself
    /// once it has waited this long.
    pub fn lock_ttl(mut self, ttl: Duration) -> Self {
        self.lock_ttl = ttl;
        self
    }

    pub(crate) fn lock_wait(&self) -> Duration {
        self.lock_ttl
    }

    /// The Redis key of a cache key: a digest, so that client ids and scopes do not appear in
    /// Redis either.
    pub(crate) fn entry_key(&self, cache_key: &str) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cache_key.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:token:{hex}", self.prefix)
    }

    /// The entry of `cache_key`, if there is one that opens under our key.
    pub(crate) async fn load(&self, cache_key: &str) -> Result<Option<SharedEntry>, Error> {
        let redis_key = self.entry_key(cache_key);
        let mut get = redis::cmd("GET");
        get.arg(&redis_key);
        let mut conn = self.conn.clone();
        let sealed: Option<Vec<u8>> = timeout(get.query_async(&mut conn)).await?;
        let Some(sealed) = sealed else { return Ok(None) };
        // The Redis key is the associated data: an entry copied under another key won't open.
        let Some(plain) = self.key.open(redis_key.as_bytes(), &sealed) else {
            return Ok(None);
        };
        Ok(serde_json::from_slice(&plain).ok())
    }

    /// Stores `entry` sealed, expiring with the token.
    pub(crate) async fn store(
        &self,
        cache_key: &str,
        entry: &SharedEntry,
        now_ms: i64,
    ) -> Result<(), Error> {
        let ttl_ms = entry.exp_ms - now_ms;
        if ttl_ms <= 0 {
            return Ok(());
        }
        let redis_key = self.entry_key(cache_key);
        let body = serde_json::to_vec(entry).map_err(redis_error)?;
        let sealed = self.key.seal(redis_key.as_bytes(), &body)?;
        let mut set = redis::cmd("SET");
        set.arg(&redis_key).arg(sealed).arg("PX").arg(ttl_ms);
        let mut conn = self.conn.clone();
        timeout(set.query_async::<()>(&mut conn)).await
    }

    /// Takes the fetch lock of `cache_key` if no instance holds it.
    pub(crate) async fn try_lock(&self, cache_key: &str) -> Result<Option<HeldLock>, Error> {
        let key = format!("{}:lock", self.entry_key(cache_key));
        let value = random::token(16);
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(&value).arg("NX").arg("PX").arg(self.lock_ttl.as_millis() as u64);
        let mut conn = self.conn.clone();
        let taken: Option<String> = timeout(set.query_async(&mut conn)).await?;
        Ok(taken.map(|_| HeldLock { key, value }))
    }

    pub(crate) async fn unlock(&self, lock: HeldLock) -> Result<(), Error> {
        let mut invocation = self.unlock.prepare_invoke();
        invocation.key(&lock.key).arg(&lock.value);
        let mut conn = self.conn.clone();
        timeout(invocation.invoke_async::<i64>(&mut conn)).await.map(drop)
    }
}

async fn timeout<T>(
    f: impl std::future::Future<Output = Result<T, redis::RedisError>>,
) -> Result<T, Error> {
    match tokio::time::timeout(REDIS_TIMEOUT, f).await {
        Ok(result) => result.map_err(redis_error),
        Err(_) => Err(Error::SharedCache("Redis did not answer in time".into())),
    }
}
