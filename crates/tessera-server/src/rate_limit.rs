//! Rate limiting (requirements R4.2): per client at `/token`, `/revoke` and `/introspect`, per
//! source address and per account for failed sign-ins. A denial becomes `429 Too Many Requests`
//! with `Retry-After` ([`too_many_requests`]).
//!
//! Each `(key, Limit)` pair is one GCRA bucket (the generic cell rate algorithm, equivalent to a
//! token bucket): at most `burst` events at once, one more every `interval`. Callers
//! choose the key (`"client:<id>"`, `"ip:<addr>"`, `"account:<name>"`, …) and the limit, so limits
//! can differ per client; the same key under two different limits is two independent buckets.
//!
//! Two places hold the counts:
//!
//! - **In process** ([`RateLimiter::in_process`], the default): one `governor` keyed limiter per
//!   distinct [`Limit`], created lazily. A check takes a read lock on the small map of limiters
//!   (readers never block each other; the write lock is taken only the first time a limit is
//!   seen) and never holds it across an `.await`. Every [`RETAIN_EVERY`] checks, buckets that are
//!   back to full are dropped, so memory follows the keys active in the last burst period, not
//!   every key ever seen.
//! - **Redis** ([`RateLimiter::redis`], when `redis_url` is configured): several server instances
//!   enforce one limit. The whole decision is one Lua script run with `EVALSHA`, so it is atomic.
//!   It stores the bucket's theoretical arrival time (TAT) in milliseconds under
//!   `prefix + "<interval µs>/<burst>:" + key`, reads the clock with `TIME` on the Redis server (so
//!   instances with skewed clocks agree) and sets `PX` so that a key vanishes once its bucket is
//!   full again. The connection is a `ConnectionManager`, which reconnects by itself.
//!
//! **Redis failures fail open.** If Redis cannot answer a check within [`REDIS_TIMEOUT`] (down,
//! reconnecting, an error), the request is allowed and a warning is logged. Rate limiting here
//! bounds abuse; it is not what authenticates anyone (client secrets are still checked, and
//! passwords are still Argon2id, which is slow by design), so an outage of the shared counter
//! should not turn into an outage of the authorization server: availability over strictness. The
//! in-process limiter is deliberately not consulted as a fallback, to keep one source of truth.
//! A Redis that is unreachable at startup is an error of [`RateLimiter::redis`], so a wrong
//! `redis_url` is noticed at once rather than silently disabling the limits.
//!
//! Keys may be client ids, addresses or user names: they are never logged. In Redis they are
//! stored as given, for as long as their bucket is not full (the `PX` above). The script needs
//! Redis 5 or later (or 3.2+, where it turns on effects replication itself).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A limit: at most `burst` events at once, one more allowed every `interval` (GCRA / token
/// bucket).
///
/// A zero burst is treated as 1 and a zero interval as 1 s (a bucket that can never hold an
/// event would deny everything forever, which is never what a configuration means).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    pub burst: u32,
    pub interval: Duration,
}

impl Limit {
    /// `n` events per second, with a burst of `n`.
    pub fn per_second(n: u32) -> Self {
        Self::per_period(n, Duration::from_secs(1))
    }

    /// `n` events per `period`, with a burst of `n` (e.g. 5 sign-in attempts per 15 minutes).
    pub fn per_period(n: u32, period: Duration) -> Self {
        let n = n.max(1);
        Self { burst: n, interval: period / n }
    }

    /// The limit with zeros raised, as both backends apply it.
    fn normalized(self) -> Self {
        let interval = if self.interval.is_zero() { Duration::from_secs(1) } else { self.interval };
        Self { burst: self.burst.max(1), interval }
    }

    fn quota(self) -> Quota {
        let n = self.normalized();
        let burst = NonZeroU32::new(n.burst).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(n.interval)
            .map_or_else(|| Quota::per_second(burst), |q| q.allow_burst(burst))
    }
}

/// A check over its limit: retry after `retry_after` (always more than zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denied {
    pub retry_after: Duration,
}

impl Denied {
    /// `retry_after` in whole seconds, rounded up, at least 1: the value of `Retry-After`.
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

/// The limiter could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("cannot use Redis for rate limiting: {0}")]
    Redis(#[from] redis::RedisError),
}

/// How often (in checks) the in-process limiter drops buckets that are full again.
pub const RETAIN_EVERY: u64 = 4096;

/// How long a check waits for Redis before it gives up and allows the request (fail open).
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// Where counts live. Share it behind an `Arc`.
pub struct RateLimiter(Backend);

enum Backend {
    InProcess(InProcess),
    Redis(RedisLimiter),
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.0 {
            Backend::InProcess(_) => "in_process",
            Backend::Redis(_) => "redis",
        };
        f.debug_tuple("RateLimiter").field(&kind).finish()
    }
}

impl RateLimiter {
    /// Counts in this process only.
    pub fn in_process() -> Self {
        Self(Backend::InProcess(InProcess::default()))
    }

    /// Connects to Redis (e.g. `"redis://127.0.0.1:6379"`); `key_prefix` namespaces keys (e.g.
    /// `"tessera:rl:"`). Fails if Redis cannot be reached or refuses to load the script.
    pub async fn redis(url: &str, key_prefix: &str) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_max_delay(Duration::from_secs(2));
        let mut conn = ConnectionManager::new_with_config(client, config).await?;
        let script = redis::Script::new(GCRA_LUA);
        // Load it now: a server that refuses scripts is a startup error, not a silent fail-open.
        script.prepare_invoke().load_async(&mut conn).await?;
        Ok(Self(Backend::Redis(RedisLimiter { conn, script, prefix: key_prefix.to_owned() })))
    }

    /// Takes one event for `key` under `limit`: `Ok(())` if allowed, `Err(Denied)` if over it.
    pub async fn check(&self, key: &str, limit: Limit) -> Result<(), Denied> {
        match &self.0 {
            Backend::InProcess(p) => p.check(key, limit),
            Backend::Redis(r) => r.check(key, limit).await,
        }
    }
}

/// One governor keyed limiter per distinct limit.
#[derive(Default)]
struct InProcess {
    limiters: RwLock<HashMap<Limit, DefaultKeyedRateLimiter<String>>>,
    checks: AtomicU64,
}

impl InProcess {
    fn check(&self, key: &str, limit: Limit) -> Result<(), Denied> {
        let limit = limit.normalized();
        let n = self.checks.fetch_add(1, Ordering::Relaxed);
        if n % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.retain_recent();
        }
        let key = key.to_owned();
        {
            let map = self.limiters.read().unwrap_or_else(|e| e.into_inner());
            if let Some(limiter) = map.get(&limit) {
                return decide(limiter, &key);
            }
        }
        let mut map = self.limiters.write().unwrap_or_else(|e| e.into_inner());
        let limiter =
            map.entry(limit).or_insert_with(|| DefaultKeyedRateLimiter::dashmap(limit.quota()));
        decide(limiter, &key)
    }

    fn retain_recent(&self) {
        let map = self.limiters.read().unwrap_or_else(|e| e.into_inner());
        for limiter in map.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.limiters.read().unwrap().values().map(|l| l.len()).sum()
    }
}

fn decide(limiter: &DefaultKeyedRateLimiter<String>, key: &String) -> Result<(), Denied> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(limiter.clock().now());
        Denied { retry_after: wait.max(Duration::from_millis(1)) }
    })
}

/// GCRA in one atomic script. KEYS[1]: the bucket; ARGV[1]: the interval in ms; ARGV[2]: burst.
/// Returns 0 when allowed, else the milliseconds until an event would be allowed (at least 1).
/// The TAT is stored in milliseconds with a microsecond fraction: Lua numbers are doubles and
/// `tostring` keeps only 14 digits, so integer microseconds since the epoch would lose precision.
const GCRA_LUA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]))
if (not tat) or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return math.max(1, math.ceil(allow_at - now))
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
return 0
";

struct RedisLimiter {
    conn: ConnectionManager,
    script: redis::Script,
    prefix: String,
}

impl RedisLimiter {
    async fn check(&self, key: &str, limit: Limit) -> Result<(), Denied> {
        let limit = limit.normalized();
        let micros = limit.interval.as_micros();
        let bucket = format!("{}{micros}/{}:{key}", self.prefix, limit.burst);
        let mut conn = self.conn.clone();
        let mut invocation = self.script.prepare_invoke();
        invocation.key(bucket).arg(limit.interval.as_secs_f64() * 1000.0).arg(limit.burst);
        match tokio::time::timeout(REDIS_TIMEOUT, invocation.invoke_async::<u64>(&mut conn)).await {
            Ok(Ok(0)) => Ok(()),
            Ok(Ok(ms)) => Err(Denied { retry_after: Duration::from_millis(ms) }),
            Ok(Err(e)) => {
                tracing::warn!(limiter = "redis", error = %e, "rate limit check failed; request allowed (fail open)");
                Ok(())
            }
            Err(_) => {
                tracing::warn!(
                    limiter = "redis",
                    timeout_ms = REDIS_TIMEOUT.as_millis() as u64,
                    "rate limit check timed out; request allowed (fail open)"
                );
                Ok(())
            }
        }
    }
}

/// `429 Too Many Requests` with `Retry-After` (seconds, rounded up, at least 1), `no-store`, and
/// `{"error":"too_many_requests","error_description":"rate limit exceeded; retry after N s"}`.
pub fn too_many_requests(denied: &Denied) -> Response {
    let secs = denied.retry_after_secs();
    let mut response = crate::oauth_error::error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        Some(&format!("rate limit exceeded; retry after {secs} s")),
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `per_second` refills per second, with a burst of `burst`.
    const fn lim(per_second: u32, burst: u32) -> Limit {
        let interval = if per_second == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(1_000_000 / per_second as u64)
        };
        Limit { burst, interval }
    }

    const LIMIT: Limit = lim(1, 3);

    fn limiter() -> InProcess {
        InProcess::default()
    }

    #[tokio::test]
    async fn r4_2_burst_is_allowed_then_denied_with_a_retry_after() {
        let rl = RateLimiter::in_process();
        for i in 0..3 {
            assert_eq!(rl.check("client:a", LIMIT).await, Ok(()), "event {i} of the burst");
        }
        let denied = rl.check("client:a", LIMIT).await.unwrap_err();
        assert!(denied.retry_after > Duration::ZERO);
        assert!(denied.retry_after <= Duration::from_secs(1), "{:?}", denied.retry_after);
        assert_eq!(denied.retry_after_secs(), 1);
    }

    #[test]
    fn r4_2_keys_are_independent() {
        let rl = limiter();
        let one = lim(1, 1);
        assert!(rl.check("ip:1.2.3.4", one).is_ok());
        assert!(rl.check("ip:1.2.3.4", one).is_err());
        assert!(rl.check("ip:4.3.2.1", one).is_ok());
        assert!(rl.check("account:alice", one).is_ok());
    }

    #[test]
    fn r4_2_two_limits_for_one_key_are_independent() {
        let rl = limiter();
        let small = lim(1, 1);
        let large = lim(1, 2);
        assert!(rl.check("client:a", small).is_ok());
        assert!(rl.check("client:a", small).is_err());
        assert!(rl.check("client:a", large).is_ok());
        assert!(rl.check("client:a", large).is_ok());
        assert!(rl.check("client:a", large).is_err());
    }

    #[test]
    fn r4_2_zero_limits_are_treated_as_one() {
        let rl = limiter();
        let zero = lim(0, 0);
        assert!(rl.check("k", zero).is_ok());
        let denied = rl.check("k", zero).unwrap_err();
        assert!(denied.retry_after <= Duration::from_secs(1));
        // Same bucket as the normalized limit.
        assert!(rl.check("k", lim(1, 1)).is_err());
    }

    #[tokio::test]
    async fn r4_2_a_bucket_refills_as_time_passes() {
        let rl = RateLimiter::in_process();
        let limit = lim(10, 2);
        assert!(rl.check("client:r", limit).await.is_ok());
        assert!(rl.check("client:r", limit).await.is_ok());
        let denied = rl.check("client:r", limit).await.unwrap_err();
        assert!(denied.retry_after <= Duration::from_millis(100), "{:?}", denied.retry_after);
        tokio::time::sleep(Duration::from_millis(210)).await;
        assert!(rl.check("client:r", limit).await.is_ok());
        assert!(rl.check("client:r", limit).await.is_ok());
        assert!(rl.check("client:r", limit).await.is_err());
    }

    #[test]
    fn r4_2_memory_stays_bounded_by_dropping_full_buckets() {
        let rl = limiter();
        let limit = lim(1000, 1);
        for i in 0..100 {
            assert!(rl.check(&format!("ip:{i}"), limit).is_ok());
        }
        assert_eq!(rl.len(), 100);
        std::thread::sleep(Duration::from_millis(5));
        rl.retain_recent();
        assert_eq!(rl.len(), 0, "buckets that are full again are dropped");
        // And housekeeping runs on its own every RETAIN_EVERY checks.
        let rl = limiter();
        for i in 0..RETAIN_EVERY - 1 {
            let _ = rl.check(&format!("ip:{i}"), limit);
        }
        std::thread::sleep(Duration::from_millis(5));
        let _ = rl.check("ip:last", limit);
        assert!(rl.len() <= 1, "{} buckets left", rl.len());
    }

    #[tokio::test]
    async fn r4_2_an_unreachable_redis_fails_open_within_the_timeout() {
        // Nothing listens on port 1: the manager keeps reconnecting in the background.
        let client = redis::Client::open("redis://127.0.0.1:1").unwrap();
        let conn = ConnectionManager::new_lazy_with_config(client, ConnectionManagerConfig::new())
            .unwrap();
        let script = redis::Script::new(GCRA_LUA);
        let rl = RateLimiter(Backend::Redis(RedisLimiter { conn, script, prefix: "t:".into() }));
        let one = lim(1, 1);
        for _ in 0..2 {
            let started = std::time::Instant::now();
            assert_eq!(rl.check("client:a", one).await, Ok(()), "allowed: fail open");
            assert!(started.elapsed() < REDIS_TIMEOUT + Duration::from_millis(200));
        }
    }

    #[tokio::test]
    async fn r4_2_too_many_requests_is_a_429_with_retry_after_and_no_store() {
        use http_body_util::BodyExt;
        let response = too_many_requests(&Denied { retry_after: Duration::from_millis(1500) });
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "error": "too_many_requests",
                "error_description": "rate limit exceeded; retry after 2 s"
            })
        );
        let tiny = too_many_requests(&Denied { retry_after: Duration::from_millis(1) });
        assert_eq!(tiny.headers()[header::RETRY_AFTER], "1");
        assert_eq!(Denied { retry_after: Duration::from_secs(3) }.retry_after_secs(), 3);
    }
}
