//! The revocation list resource servers read (requirement R7.4): with `redis_url` set, every
//! access token revoked here — on its own, or with its grant — is also written to Redis as
//! `tessera:revoked:<jti>` = `"1"`, expiring when the token does, so that a resource server
//! validating JWTs locally (`tessera-resource`) learns of it without asking this server.
//!
//! The database stays the authority (`/introspect` and `/userinfo` read it): a failed
//! publication is logged, and the revocation itself still succeeds.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The key prefix, shared with `tessera-resource` (its `revocation` module).
pub const KEY_PREFIX: &str = "tessera:revoked:";

/// A connection to the Redis that holds the list.
#[derive(Clone)]
pub struct RevocationList {
    conn: ConnectionManager,
}

impl RevocationList {
    /// Connects to `url`; an unreachable Redis at start is an error, as for the rate limits.
    pub async fn connect(url: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(2)));
        Ok(Self { conn: ConnectionManager::new_with_config(client, config).await? })
    }

    /// Publishes the revoked `jti`s with their expiry times (seconds since the epoch); entries
    /// already expired at `now` are skipped.
    pub async fn publish(&self, revoked: &[(String, i64)], now: i64) {
        let mut pipe = redis::pipe();
        let mut any = false;
        for (jti, expires_at) in revoked.iter().filter(|(_, exp)| *exp > now) {
            // SET … EXAT: the entry disappears when the token would have expired anyway.
            pipe.cmd("SET")
                .arg(format!("{KEY_PREFIX}{jti}"))
                .arg("1")
                .arg("EXAT")
                .arg(*expires_at)
                .ignore();
            any = true;
        }
        if !any {
            return;
        }
        let mut conn = self.conn.clone();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::error!(error = %e, count = revoked.len(),
                "could not publish revoked token ids to Redis; resource servers reading the \
                 revocation list will not see them");
        }
    }
}

impl tessera_core::token::RevocationNotifier for RevocationList {
    fn grant_revoked<'a>(
        &'a self,
        access_tokens: Vec<(String, i64)>,
        now: i64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move { self.publish(&access_tokens, now).await })
    }
}
