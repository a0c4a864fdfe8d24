//! The revocation list (requirement R7.4): the authorization server, when it has a Redis,
//! writes every revoked access token's `jti` as `tessera:revoked:<jti>`, expiring with the
//! token (`tessera_server::revocation_list`). A resource server that validates JWTs locally
//! reads it, so that a revoked token stops working here within seconds rather than at `exp`.
//!
//! - Answers are remembered for [`LOCAL_TTL`]: one Redis round trip per token per few seconds.
//! - Redis unreachable: [`OnOutage::FailClosed`] (the default) refuses with `503`, because a
//!   revoked token must not pass; [`OnOutage::FailOpen`] accepts, for APIs that prefer
//!   availability. Either way the outage is logged once when it starts and once when it ends,
//!   not once per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The key prefix the authorization server writes under.
pub const KEY_PREFIX: &str = "tessera:revoked:";
/// How long an answer from Redis is reused.
pub const LOCAL_TTL: Duration = Duration::from_secs(2);
/// How long a Redis command may take before Redis counts as unreachable.
const TIMEOUT: Duration = Duration::from_millis(500);
const CAPACITY: usize = 16_384;

/// What to do when the revocation list cannot be read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnOutage {
    /// Refuse the request (`503 temporarily_unavailable`).
    #[default]
    FailClosed,
    /// Accept the token as if it were not revoked.
    FailOpen,
}

/// Where the revocation list is, and what an outage means.
#[derive(Clone, Debug)]
pub struct RevocationConfig {
    pub(crate) redis_url: String,
    pub(crate) on_outage: OnOutage,
}

impl RevocationConfig {
    /// The Redis the authorization server publishes to (its `redis_url`).
    pub fn redis(url: impl Into<String>) -> Self {
        Self { redis_url: url.into(), on_outage: OnOutage::FailClosed }
    }

    pub fn on_outage(mut self, on_outage: OnOutage) -> Self {
        self.on_outage = on_outage;
        self
    }
}

/// The revocation list could not be read and the policy is to refuse.
#[derive(Debug)]
pub(crate) struct Unreachable;

pub(crate) struct RevocationList {
    conn: ConnectionManager,
    on_outage: OnOutage,
    cache: Mutex<HashMap<String, (bool, Instant)>>,
    outage: AtomicBool,
}

impl RevocationList {
    pub(crate) async fn connect(config: &RevocationConfig) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(config.redis_url.as_str())?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        Ok(Self {
            conn: ConnectionManager::new_with_config(client, manager).await?,
            on_outage: config.on_outage,
            cache: Mutex::default(),
            outage: AtomicBool::new(false),
        })
    }

    fn cached(&self, jti: &str) -> Option<bool> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(jti).filter(|(_, until)| Instant::now() < *until).map(|(revoked, _)| *revoked)
    }

    /// Whether `jti` is on the list (`Err` only under [`OnOutage::FailClosed`]).
    pub(crate) async fn is_revoked(&self, jti: &str) -> Result<bool, Unreachable> {
        if let Some(revoked) = self.cached(jti) {
            return Ok(revoked);
        }
        let mut conn = self.conn.clone();
        // Boxed: a cached answer's future does not carry the query's state.
        let found: Result<bool, _> =
            Box::pin(redis::cmd("EXISTS").arg(format!("{KEY_PREFIX}{jti}")).query_async(&mut conn))
                .await;
        match found {
            Ok(revoked) => {
                if self.outage.swap(false, Ordering::Relaxed) {
                    tracing::warn!("the revocation list is reachable again");
                }
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= CAPACITY {
                    cache.clear();
                }
                cache.insert(jti.to_owned(), (revoked, Instant::now() + LOCAL_TTL));
                Ok(revoked)
            }
            Err(e) => {
                if !self.outage.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, policy = ?self.on_outage,
                        "the revocation list (Redis) is unreachable; logged once until it is back");
                }
                match self.on_outage {
                    OnOutage::FailClosed => Err(Unreachable),
                    OnOutage::FailOpen => Ok(false),
                }
            }
        }
    }
}
