//! Rate limiting (requirements R4.2): per client at `/token`, `/revoke` and `/introspect`, per
//! source address and per account for failed sign-ins, per source for user-code guesses. A
//! denial becomes the core's `Error::RateLimited`, which `oauth_error` answers with `429 Too
//! Many Requests` and `Retry-After`.
//!
//! Two kinds of bucket, each named by a key the caller chooses (`"client:<id>"`,
//! `"login-source:<addr>"`, …):
//!
//! - a [`Limit`]: GCRA (the generic cell rate algorithm, equivalent to a token bucket): at most
//!   `burst` events at once, one more every `interval`. [`RateLimiter::check`] takes an event,
//!   [`RateLimiter::refund`] gives one back (a sign-in that succeeded is not a failure). The same
//!   key under two different limits is two independent buckets.
//! - a [`Backoff`]: growing delays instead of a lockout. The first `free` attempts pass; each one
//!   after them must wait `base`, then twice that, … up to `max`; the count is forgotten
//!   `forget_after` the last attempt, or at once by [`RateLimiter::forgive`].
//!
//! Every take is atomic (check and count in one step), so parallel requests cannot all pass
//! a check before any of them is counted.
//!
//! Two places hold the counts:
//!
//! - **In process** ([`RateLimiter::in_process`], the default): a map from bucket to its state,
//!   split into [`SHARDS`] mutexes held only for one lookup (never across an `.await`). Every
//!   [`RETAIN_EVERY`] checks, buckets that are back to full are dropped, so memory follows the
//!   keys active recently, not every key ever seen.
//! - **Redis** ([`RateLimiter::redis`], when `redis_url` is configured): several server instances
//!   enforce one limit. Each decision is one Lua script run with `EVALSHA`, so it is atomic.
//!   Scripts read the clock with `TIME` on the Redis server (so instances with skewed clocks
//!   agree) and set `PX` so that a key vanishes once its bucket is full again. The connection is
//!   a `ConnectionManager`, which reconnects by itself.
//!
//! **When Redis fails** (down, reconnecting, an error, no answer within [`REDIS_TIMEOUT`]), what
//! happens depends on what the limit protects, and a warning is logged:
//!
//! - the **security throttles** ([`RateLimiter::check`], [`RateLimiter::backoff`]: password and
//!   user-code guessing) fall back to in-process buckets: each instance then enforces the limit
//!   on its own (the limit times the number of instances in total), which still stops guessing,
//!   whereas allowing every request would switch the protection off for as long as Redis is
//!   down (issue 17 finding 14);
//! - the **per-client throughput limit** ([`RateLimiter::check_throughput`]) fails open: it
//!   shares capacity, it authenticates nobody (client secrets are still checked after it), and
//!   an outage of the shared counter should not become an outage of the token endpoint.
//!
//! A Redis that is unreachable at startup is an error of [`RateLimiter::redis`], so a wrong
//! `redis_url` is noticed at once.
//!
//! Keys may be client ids, addresses or hashed user names: they are never logged. In Redis they
//! are stored as given, for as long as their bucket is not full (the `PX` above). The scripts
//! need Redis 5 or later (or 3.2+, where they turn on effects replication themselves).

use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hashbrown::hash_table::{Entry, HashTable};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tessera_core::Error;

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

    /// `n` events per `period`, with a burst of `n` (e.g. 50 failed sign-ins per 15 minutes).
    pub fn per_period(n: u32, period: Duration) -> Self {
        let n = n.max(1);
        Self { burst: n, interval: period / n }
    }

    /// The limit with zeros raised, as both backends apply it.
    fn normalized(self) -> Self {
        let interval = if self.interval.is_zero() { Duration::from_secs(1) } else { self.interval };
        Self { burst: self.burst.max(1), interval }
    }

    /// The Redis key of `key`'s bucket under this limit (after the prefix).
    fn bucket(self, key: &str) -> String {
        format!("{}/{}:{key}", self.interval.as_micros(), self.burst)
    }
}

/// Growing delays: `free` attempts pass, then each further one waits `base`, `2 × base`, …, at
/// most `max`; the count is forgotten `forget_after` the last attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub free: u32,
    pub base: Duration,
    pub max: Duration,
    pub forget_after: Duration,
}

impl Backoff {
    /// The wait imposed after the `n`th attempt (counting from 1).
    fn delay_after(&self, n: u32) -> Duration {
        if n < self.free.max(1) {
            return Duration::ZERO;
        }
        // At most 2^20 × base: beyond that `max` has long been reached.
        let doublings = (n - self.free.max(1)).min(20);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }

    fn bucket(key: &str) -> String {
        format!("backoff:{key}")
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

/// How many mutexes the in-process buckets are spread over.
pub const SHARDS: usize = 16;

/// How long a check waits for Redis before it gives up (and falls back, or fails open).
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// Where counts live. Share it behind an `Arc`.
pub struct RateLimiter(Backend);

enum Backend {
    InProcess(InProcess),
    /// Redis, and the in-process buckets the security throttles fall back to.
    Redis(RedisLimiter, InProcess),
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.0 {
            Backend::InProcess(_) => "in_process",
            Backend::Redis(..) => "redis",
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
    /// `"tessera:rl:"`). Fails if Redis cannot be reached or refuses to load the scripts.
    pub async fn redis(url: &str, key_prefix: &str) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_max_delay(Duration::from_secs(2));
        let mut conn = ConnectionManager::new_with_config(client, config).await?;
        let redis = RedisLimiter::new(conn.clone(), key_prefix);
        // Load them now: a server that refuses scripts is a startup error, not a silent fallback.
        for script in [&redis.gcra, &redis.refund, &redis.backoff] {
            script.prepare_invoke().load_async(&mut conn).await?;
        }
        Ok(Self(Backend::Redis(redis, InProcess::default())))
    }

    /// A security throttle: takes one event for `key` under `limit`; `Err(Denied)` if over it.
    /// If Redis fails, this instance's own buckets decide.
    pub async fn check(&self, key: &str, limit: Limit) -> Result<(), Denied> {
        let limit = limit.normalized();
        match &self.0 {
            Backend::InProcess(p) => p.gcra(key, limit),
            Backend::Redis(r, fallback) => match r.gcra(key, limit).await {
                Ok(decision) => decision,
                Err(failure) => {
                    failure.log("falling back to in-process buckets");
                    fallback.gcra(key, limit)
                }
            },
        }
    }

    /// A throughput limit (per client): like [`Self::check`], but if Redis fails the request
    /// is allowed (fail open; see the module documentation for why).
    pub async fn check_throughput(&self, key: &str, limit: Limit) -> Result<(), Denied> {
        let limit = limit.normalized();
        match &self.0 {
            Backend::InProcess(p) => p.gcra(key, limit),
            Backend::Redis(r, _) => r.gcra(key, limit).await.unwrap_or_else(|failure| {
                failure.log("request allowed (fail open)");
                Ok(())
            }),
        }
    }

    /// A security throttle, looked at without counting: `Err(Denied)` if a [`Self::check`]
    /// of `key` under `limit` would be denied now. For limits on failures, checked before the
    /// work whose failure [`Self::check`] then counts.
    pub async fn peek(&self, key: &str, limit: Limit) -> Result<(), Denied> {
        let limit = limit.normalized();
        match &self.0 {
            Backend::InProcess(p) => p.gcra_step(key, limit, false),
            Backend::Redis(r, fallback) => match r.gcra_step(key, limit, false).await {
                Ok(decision) => decision,
                Err(failure) => {
                    failure.log("falling back to in-process buckets");
                    fallback.gcra_step(key, limit, false)
                }
            },
        }
    }

    /// Gives back one event taken by [`Self::check`] (e.g. a sign-in that succeeded).
    pub async fn refund(&self, key: &str, limit: Limit) {
        let limit = limit.normalized();
        match &self.0 {
            Backend::InProcess(p) => p.refund(key, limit),
            Backend::Redis(r, fallback) => {
                if let Err(failure) = r.refund(key, limit).await {
                    failure.log("refunding in-process buckets only");
                }
                fallback.refund(key, limit);
            }
        }
    }

    /// A security throttle with growing delays: counts one attempt for `key`, `Err(Denied)`
    /// while the delay after the previous attempt runs. If Redis fails, this instance's own
    /// counts decide.
    pub async fn backoff(&self, key: &str, backoff: Backoff) -> Result<(), Denied> {
        match &self.0 {
            Backend::InProcess(p) => p.backoff(key, backoff),
            Backend::Redis(r, fallback) => match r.backoff(key, backoff, true).await {
                Ok(decision) => decision,
                Err(failure) => {
                    failure.log("falling back to in-process buckets");
                    fallback.backoff(key, backoff)
                }
            },
        }
    }

    /// Restarts the delay imposed by the last attempt of `key` from now (that attempt has just
    /// failed): the wait runs from the failure, not from when the attempt was admitted, however
    /// long it took to find out.
    pub async fn restart_delay(&self, key: &str, backoff: Backoff) {
        match &self.0 {
            Backend::InProcess(p) => p.restart_delay(key, backoff),
            Backend::Redis(r, fallback) => {
                if let Err(failure) = r.backoff(key, backoff, false).await {
                    failure.log("restarting the delay in process only");
                }
                fallback.restart_delay(key, backoff);
            }
        }
    }

    /// Forgets the attempts counted by [`Self::backoff`] for `key` (a sign-in that succeeded).
    pub async fn forgive(&self, key: &str) {
        match &self.0 {
            Backend::InProcess(p) => p.remove(key),
            Backend::Redis(r, fallback) => {
                if let Err(failure) = r.forgive(key).await {
                    failure.log("forgiving in-process buckets only");
                }
                fallback.remove(key);
            }
        }
    }
}

/// The state of one bucket in process.
#[derive(Clone, Copy, Debug)]
enum Bucket {
    /// GCRA: the theoretical arrival time of the next event.
    Gcra { tat: Instant },
    /// Attempts counted, the earliest next attempt, and when the count is forgotten.
    Backoff { attempts: u32, not_before: Instant, forget_at: Instant },
}

impl Bucket {
    /// Whether the bucket is back to its initial state at `now` (and can be dropped).
    fn is_spent(&self, now: Instant) -> bool {
        match *self {
            Self::Gcra { tat } => tat <= now,
            Self::Backoff { forget_at, .. } => forget_at <= now,
        }
    }
}

/// Which bucket of a key: the same key under two GCRA limits, or as a backoff, is three
/// independent buckets (as in Redis, where [`Limit::bucket`] and [`Backoff::bucket`] name them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Gcra(Limit),
    Backoff,
}

/// One bucket in process, with what names it.
struct Slot {
    kind: Kind,
    key: Box<str>,
    bucket: Bucket,
}

/// Buckets in this process, spread over [`SHARDS`] mutexes.
///
/// A lookup hashes `(kind, key)` once, picks the shard from bits of that hash and finds the
/// bucket with the same hash: no bucket name is formatted and the key is copied only when a
/// bucket is created (the token and introspection endpoints check two buckets per request).
struct InProcess {
    shards: Vec<Mutex<HashTable<Slot>>>,
    hasher: RandomState,
    checks: AtomicU64,
}

impl Default for InProcess {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            checks: AtomicU64::new(0),
        }
    }
}

impl InProcess {
    fn hash(&self, kind: Kind, key: &str) -> u64 {
        self.hasher.hash_one((kind, key))
    }

    /// Runs `f` on the entry of `(kind, key)` in its shard; housekeeping every
    /// [`RETAIN_EVERY`] calls.
    fn with_entry<T>(&self, kind: Kind, key: &str, f: impl FnOnce(Entry<'_, Slot>) -> T) -> T {
        let n = self.checks.fetch_add(1, Ordering::Relaxed);
        if n % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.retain_recent();
        }
        let hash = self.hash(kind, key);
        // Bits 32.. pick the shard: the table itself uses the lowest and the top 7 bits.
        let shard = (hash >> 32) as usize % SHARDS;
        let mut table = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        let entry = table.entry(
            hash,
            |slot| slot.kind == kind && *slot.key == *key,
            |slot| self.hash(slot.kind, &slot.key),
        );
        f(entry)
    }

    fn gcra(&self, key: &str, limit: Limit) -> Result<(), Denied> {
        self.gcra_step(key, limit, true)
    }

    /// One GCRA step; with `take` false only whether a take would pass (nothing counted).
    fn gcra_step(&self, key: &str, limit: Limit, take: bool) -> Result<(), Denied> {
        let now = Instant::now();
        self.with_entry(Kind::Gcra(limit), key, |entry| {
            let tat = match &entry {
                Entry::Occupied(o) => match o.get().bucket {
                    Bucket::Gcra { tat } if tat > now => tat,
                    _ => now,
                },
                Entry::Vacant(_) => now,
            };
            let new_tat = tat + limit.interval;
            // Allowed while the bucket holds at most `burst` intervals of credit.
            let ahead = new_tat - now;
            let capacity = limit.interval.saturating_mul(limit.burst);
            if ahead > capacity {
                return Err(Denied {
                    retry_after: (ahead - capacity).max(Duration::from_millis(1)),
                });
            }
            if take {
                let bucket = Bucket::Gcra { tat: new_tat };
                match entry {
                    Entry::Occupied(mut o) => o.get_mut().bucket = bucket,
                    Entry::Vacant(v) => {
                        v.insert(Slot { kind: Kind::Gcra(limit), key: key.into(), bucket });
                    }
                }
            }
            Ok(())
        })
    }

    fn refund(&self, key: &str, limit: Limit) {
        let now = Instant::now();
        self.with_entry(Kind::Gcra(limit), key, |entry| {
            let Entry::Occupied(mut o) = entry else { return };
            if let Bucket::Gcra { tat } = &mut o.get_mut().bucket {
                match tat.checked_sub(limit.interval) {
                    Some(earlier) if earlier > now => *tat = earlier,
                    _ => {
                        o.remove();
                    }
                }
            }
        });
    }

    fn backoff(&self, key: &str, backoff: Backoff) -> Result<(), Denied> {
        let now = Instant::now();
        self.with_entry(Kind::Backoff, key, |entry| {
            let previous = match &entry {
                Entry::Occupied(o) => Some(o.get().bucket),
                Entry::Vacant(_) => None,
            };
            let attempts = match previous {
                Some(Bucket::Backoff { not_before, .. }) if not_before > now => {
                    return Err(Denied {
                        retry_after: (not_before - now).max(Duration::from_millis(1)),
                    });
                }
                Some(Bucket::Backoff { attempts, forget_at, .. }) if forget_at > now => attempts,
                _ => 0,
            };
            let attempts = attempts.saturating_add(1);
            let bucket = Bucket::Backoff {
                attempts,
                not_before: now + backoff.delay_after(attempts),
                forget_at: now + backoff.forget_after.max(backoff.max),
            };
            match entry {
                Entry::Occupied(mut o) => o.get_mut().bucket = bucket,
                Entry::Vacant(v) => {
                    v.insert(Slot { kind: Kind::Backoff, key: key.into(), bucket });
                }
            }
            Ok(())
        })
    }

    fn restart_delay(&self, key: &str, backoff: Backoff) {
        let now = Instant::now();
        self.with_entry(Kind::Backoff, key, |entry| {
            if let Entry::Occupied(mut o) = entry
                && let Bucket::Backoff { attempts, not_before, .. } = &mut o.get_mut().bucket
            {
                *not_before = now + backoff.delay_after(*attempts);
            }
        });
    }

    fn remove(&self, key: &str) {
        self.with_entry(Kind::Backoff, key, |entry| {
            if let Entry::Occupied(o) = entry {
                o.remove();
            }
        });
    }

    fn retain_recent(&self) {
        let now = Instant::now();
        for shard in &self.shards {
            let mut table = shard.lock().unwrap_or_else(|e| e.into_inner());
            table.retain(|slot| !slot.bucket.is_spent(now));
            table.shrink_to_fit(|slot| self.hash(slot.kind, &slot.key));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().len()).sum()
    }
}

/// GCRA in one atomic script. KEYS[1]: the bucket; ARGV[1]: the interval in ms; ARGV[2]: burst;
/// ARGV[3]: 1 to take an event, 0 only to look. Returns 0 when allowed, else the milliseconds until an event would be allowed (at least 1).
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
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
end
return 0
";

/// Gives one event back to a GCRA bucket. KEYS[1]: the bucket; ARGV[1]: the interval in ms.
const REFUND_LUA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
tat = tat - interval
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.max(1, math.ceil(tat - now)))
end
return 0
";

/// Growing delays. KEYS[1]: the bucket; ARGV: free attempts, base delay ms, max delay ms,
/// forget-after ms, and 1 to take an attempt or 0 to restart the current delay from now.
/// Returns 0 when allowed (and counts the attempt), else the milliseconds to wait. The same
/// arithmetic as [`Backoff::delay_after`].
const BACKOFF_LUA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local free = math.max(1, tonumber(ARGV[1]))
local base = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local forget = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'n', 'at')
local n = tonumber(state[1]) or 0
local at = tonumber(state[2]) or 0
if ARGV[5] == '1' then
  if at > now then
    return math.max(1, math.ceil(at - now))
  end
  n = n + 1
elseif n == 0 then
  return 0
end
local delay = 0
if n >= free then delay = math.min(base * 2 ^ math.min(n - free, 20), max) end
redis.call('HSET', KEYS[1], 'n', n, 'at', string.format('%.3f', now + delay))
redis.call('PEXPIRE', KEYS[1], math.max(forget, max))
return 0
";

/// Why Redis gave no decision.
enum RedisFailure {
    Error(redis::RedisError),
    Timeout,
}

impl RedisFailure {
    fn log(&self, consequence: &str) {
        match self {
            Self::Error(e) => {
                tracing::warn!(limiter = "redis", error = %e, "rate limit check failed; {consequence}");
            }
            Self::Timeout => tracing::warn!(
                limiter = "redis",
                timeout_ms = REDIS_TIMEOUT.as_millis() as u64,
                "rate limit check timed out; {consequence}"
            ),
        }
    }
}

struct RedisLimiter {
    conn: ConnectionManager,
    gcra: redis::Script,
    refund: redis::Script,
    backoff: redis::Script,
    prefix: String,
}

impl RedisLimiter {
    fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            gcra: redis::Script::new(GCRA_LUA),
            refund: redis::Script::new(REFUND_LUA),
            backoff: redis::Script::new(BACKOFF_LUA),
            prefix: prefix.to_owned(),
        }
    }

    /// Runs `invocation` within [`REDIS_TIMEOUT`].
    async fn run(&self, invocation: redis::ScriptInvocation<'_>) -> Result<u64, RedisFailure> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(REDIS_TIMEOUT, invocation.invoke_async::<u64>(&mut conn)).await {
            Ok(Ok(ms)) => Ok(ms),
            Ok(Err(e)) => Err(RedisFailure::Error(e)),
            Err(_) => Err(RedisFailure::Timeout),
        }
    }

    fn decision(ms: u64) -> Result<(), Denied> {
        match ms {
            0 => Ok(()),
            ms => Err(Denied { retry_after: Duration::from_millis(ms) }),
        }
    }

    async fn gcra(&self, key: &str, limit: Limit) -> Result<Result<(), Denied>, RedisFailure> {
        self.gcra_step(key, limit, true).await
    }

    async fn gcra_step(
        &self,
        key: &str,
        limit: Limit,
        take: bool,
    ) -> Result<Result<(), Denied>, RedisFailure> {
        let mut invocation = self.gcra.prepare_invoke();
        invocation
            .key(format!("{}{}", self.prefix, limit.bucket(key)))
            .arg(limit.interval.as_secs_f64() * 1000.0)
            .arg(limit.burst)
            .arg(u8::from(take));
        self.run(invocation).await.map(Self::decision)
    }

    async fn refund(&self, key: &str, limit: Limit) -> Result<(), RedisFailure> {
        let mut invocation = self.refund.prepare_invoke();
        invocation
            .key(format!("{}{}", self.prefix, limit.bucket(key)))
            .arg(limit.interval.as_secs_f64() * 1000.0);
        self.run(invocation).await.map(drop)
    }

    async fn backoff(
        &self,
        key: &str,
        b: Backoff,
        take: bool,
    ) -> Result<Result<(), Denied>, RedisFailure> {
        let mut invocation = self.backoff.prepare_invoke();
        invocation
            .key(format!("{}{}", self.prefix, Backoff::bucket(key)))
            .arg(b.free)
            .arg(b.base.as_millis() as u64)
            .arg(b.max.as_millis() as u64)
            .arg(b.forget_after.as_millis() as u64)
            .arg(u8::from(take));
        self.run(invocation).await.map(Self::decision)
    }

    async fn forgive(&self, key: &str) -> Result<(), RedisFailure> {
        let mut conn = self.conn.clone();
        let bucket = format!("{}{}", self.prefix, Backoff::bucket(key));
        let mut delete = redis::cmd("DEL");
        delete.arg(bucket);
        let deleted = delete.query_async::<u64>(&mut conn);
        match tokio::time::timeout(REDIS_TIMEOUT, deleted).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(RedisFailure::Error(e)),
            Err(_) => Err(RedisFailure::Timeout),
        }
    }
}

/// A denial is the core's rate-limit error: one error vocabulary, one map to HTTP.
impl From<Denied> for Error {
    fn from(denied: Denied) -> Self {
        Error::RateLimited { retry_after_secs: denied.retry_after_secs() }
    }
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

    fn limiter() -> RateLimiter {
        RateLimiter::in_process()
    }

    /// A limiter on a Redis that does not answer: nothing listens on port 1, so the manager
    /// keeps reconnecting in the background.
    fn unreachable_redis() -> RateLimiter {
        let client = redis::Client::open("redis://127.0.0.1:1").unwrap();
        let conn = ConnectionManager::new_lazy_with_config(client, ConnectionManagerConfig::new())
            .unwrap();
        RateLimiter(Backend::Redis(RedisLimiter::new(conn, "t:"), InProcess::default()))
    }

    fn in_process(rl: &RateLimiter) -> &InProcess {
        match &rl.0 {
            Backend::InProcess(p) | Backend::Redis(_, p) => p,
        }
    }

    #[tokio::test]
    async fn r4_2_burst_is_allowed_then_denied_with_a_retry_after() {
        let rl = limiter();
        for i in 0..3 {
            assert_eq!(rl.check("client:a", LIMIT).await, Ok(()), "event {i} of the burst");
        }
        let denied = rl.check("client:a", LIMIT).await.unwrap_err();
        assert!(denied.retry_after > Duration::ZERO);
        assert!(denied.retry_after <= Duration::from_secs(1), "{:?}", denied.retry_after);
        assert_eq!(denied.retry_after_secs(), 1);
    }

    #[tokio::test]
    async fn r4_2_keys_are_independent() {
        let rl = limiter();
        let one = lim(1, 1);
        assert!(rl.check("ip:1.2.3.4", one).await.is_ok());
        assert!(rl.check("ip:1.2.3.4", one).await.is_err());
        assert!(rl.check("ip:4.3.2.1", one).await.is_ok());
        assert!(rl.check("account:alice", one).await.is_ok());
    }

    #[tokio::test]
    async fn r4_2_two_limits_for_one_key_are_independent() {
        let rl = limiter();
        let small = lim(1, 1);
        let large = lim(1, 2);
        assert!(rl.check("client:a", small).await.is_ok());
        assert!(rl.check("client:a", small).await.is_err());
        assert!(rl.check("client:a", large).await.is_ok());
        assert!(rl.check("client:a", large).await.is_ok());
        assert!(rl.check("client:a", large).await.is_err());
    }

    #[tokio::test]
    async fn r4_2_zero_limits_are_treated_as_one() {
        let rl = limiter();
        let zero = lim(0, 0);
        assert!(rl.check("k", zero).await.is_ok());
        let denied = rl.check("k", zero).await.unwrap_err();
        assert!(denied.retry_after <= Duration::from_secs(1));
        // Same bucket as the normalized limit.
        assert!(rl.check("k", lim(1, 1)).await.is_err());
    }

    #[tokio::test]
    async fn r4_2_a_bucket_refills_as_time_passes() {
        let rl = limiter();
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

    #[tokio::test]
    async fn r4_2_a_refund_gives_one_event_back() {
        let rl = limiter();
        let two = Limit::per_period(2, Duration::from_secs(60));
        for _ in 0..10 {
            assert!(rl.check("login-source:a", two).await.is_ok());
            rl.refund("login-source:a", two).await;
        }
        assert!(rl.check("login-source:a", two).await.is_ok());
        assert!(rl.check("login-source:a", two).await.is_ok());
        assert!(rl.check("login-source:a", two).await.is_err());
        rl.refund("login-source:a", two).await;
        assert!(rl.check("login-source:a", two).await.is_ok());
    }

    #[tokio::test]
    async fn r4_2_a_peek_counts_nothing() {
        let rl = limiter();
        let one = Limit::per_period(1, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(rl.peek("client-auth-failures:a", one).await.is_ok());
        }
        assert!(rl.check("client-auth-failures:a", one).await.is_ok());
        assert!(rl.peek("client-auth-failures:a", one).await.is_err());
        assert!(rl.peek("client-auth-failures:b", one).await.is_ok());
    }

    const BACKOFF: Backoff = Backoff {
        free: 2,
        base: Duration::from_millis(40),
        max: Duration::from_millis(100),
        forget_after: Duration::from_secs(60),
    };

    #[tokio::test]
    async fn r4_2_backoff_delays_grow_after_the_free_attempts_and_are_capped() {
        assert_eq!(BACKOFF.delay_after(1), Duration::ZERO);
        assert_eq!(BACKOFF.delay_after(2), Duration::from_millis(40));
        assert_eq!(BACKOFF.delay_after(3), Duration::from_millis(80));
        assert_eq!(BACKOFF.delay_after(4), Duration::from_millis(100));
        assert_eq!(BACKOFF.delay_after(u32::MAX), Duration::from_millis(100));
        let rl = limiter();
        assert!(rl.backoff("k", BACKOFF).await.is_ok());
        assert!(rl.backoff("k", BACKOFF).await.is_ok());
        let denied = rl.backoff("k", BACKOFF).await.unwrap_err();
        assert!(denied.retry_after <= Duration::from_millis(40), "{denied:?}");
        // A denied attempt is not counted: after the wait, one attempt passes, then a longer wait.
        tokio::time::sleep(Duration::from_millis(45)).await;
        assert!(rl.backoff("k", BACKOFF).await.is_ok());
        let denied = rl.backoff("k", BACKOFF).await.unwrap_err();
        assert!(denied.retry_after > Duration::from_millis(40), "{denied:?}");
        // Never a lockout: after at most `max`, one more attempt.
        tokio::time::sleep(Duration::from_millis(105)).await;
        assert!(rl.backoff("k", BACKOFF).await.is_ok());
        // A restarted delay runs from now.
        tokio::time::sleep(Duration::from_millis(60)).await;
        rl.restart_delay("k", BACKOFF).await;
        let denied = rl.backoff("k", BACKOFF).await.unwrap_err();
        assert!(denied.retry_after > Duration::from_millis(60), "{denied:?}");
        rl.restart_delay("never-seen", BACKOFF).await;
        assert!(rl.backoff("never-seen", BACKOFF).await.is_ok());
        // Other keys are unaffected, and forgiving starts over.
        assert!(rl.backoff("other", BACKOFF).await.is_ok());
        rl.forgive("k").await;
        assert!(rl.backoff("k", BACKOFF).await.is_ok());
        assert!(rl.backoff("k", BACKOFF).await.is_ok());
    }

    #[tokio::test]
    async fn r4_2_memory_stays_bounded_by_dropping_full_buckets() {
        let rl = limiter();
        let limit = lim(1000, 1);
        for i in 0..100 {
            assert!(rl.check(&format!("ip:{i}"), limit).await.is_ok());
        }
        assert_eq!(in_process(&rl).len(), 100);
        std::thread::sleep(Duration::from_millis(5));
        in_process(&rl).retain_recent();
        assert_eq!(in_process(&rl).len(), 0, "buckets that are full again are dropped");
        // And housekeeping runs on its own every RETAIN_EVERY checks.
        let rl = limiter();
        for i in 0..RETAIN_EVERY - 1 {
            let _ = rl.check(&format!("ip:{i}"), limit).await;
        }
        std::thread::sleep(Duration::from_millis(5));
        let _ = rl.check("ip:last", limit).await;
        assert!(in_process(&rl).len() <= 1, "{} buckets left", in_process(&rl).len());
    }

    #[tokio::test]
    async fn issue17_14_an_unreachable_redis_leaves_the_throughput_limit_open() {
        let rl = unreachable_redis();
        let one = lim(1, 1);
        for _ in 0..2 {
            let started = std::time::Instant::now();
            assert_eq!(rl.check_throughput("client:a", one).await, Ok(()), "fail open");
            assert!(started.elapsed() < REDIS_TIMEOUT + Duration::from_millis(200));
        }
    }

    #[tokio::test]
    async fn issue17_14_an_unreachable_redis_keeps_the_security_throttles_in_process() {
        let rl = unreachable_redis();
        let one = lim(1, 1);
        let started = std::time::Instant::now();
        assert_eq!(rl.check("device-code-source:a", one).await, Ok(()));
        assert!(rl.check("device-code-source:a", one).await.is_err(), "not failing open");
        // Each call waits out the Redis timeout first: delays longer than that.
        let slow =
            Backoff { base: Duration::from_secs(10), max: Duration::from_secs(10), ..BACKOFF };
        assert!(rl.backoff("login:a", slow).await.is_ok());
        assert!(rl.backoff("login:a", slow).await.is_ok());
        assert!(rl.backoff("login:a", slow).await.is_err(), "not failing open");
        rl.forgive("login:a").await;
        assert!(rl.backoff("login:a", slow).await.is_ok());
        assert!(started.elapsed() < 8 * (REDIS_TIMEOUT + Duration::from_millis(200)));
    }

    #[test]
    fn r4_2_a_denial_is_the_rate_limited_error_with_its_delay_rounded_up() {
        let err = Error::from(Denied { retry_after: Duration::from_millis(1500) });
        assert!(matches!(err, Error::RateLimited { retry_after_secs: 2 }), "{err:?}");
        let tiny = Error::from(Denied { retry_after: Duration::from_millis(1) });
        assert!(matches!(tiny, Error::RateLimited { retry_after_secs: 1 }), "{tiny:?}");
        assert_eq!(Denied { retry_after: Duration::from_secs(3) }.retry_after_secs(), 3);
    }
}
