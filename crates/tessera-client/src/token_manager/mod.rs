//! The client-credentials token manager (RFC 6749 §4.4): one cached token per client, scope
//! set and resource, refreshed ahead of its expiry, fetched once at a time per key (and, with
//! a [`SharedCache`], once across instances), behind a circuit breaker that keeps serving the
//! last valid token while the token endpoint is down.

mod breaker;
#[cfg(feature = "redis")]
mod shared;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use breaker::BreakerState;
use breaker::{Breaker, BreakerPolicy};
#[cfg(feature = "redis")]
pub use shared::SharedCache;

use crate::client_auth::ClientCredentials;
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::http::Http;
use crate::tokens::{SecretString, TokenResponse};

/// What to ask for (the manager's client id completes the cache key): a scope set (order and duplicates do not matter) and an optional RFC 8707
/// resource. Build it once and reuse it: its cache key is computed here, not per call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenRequest {
    scope: Option<String>,
    resource: Option<String>,
}

impl TokenRequest {
    pub fn new<S: AsRef<str>>(scopes: impl IntoIterator<Item = S>, resource: Option<&str>) -> Self {
        let mut all: Vec<String> = scopes
            .into_iter()
            .flat_map(|s| s.as_ref().split(' ').map(str::to_owned).collect::<Vec<_>>())
            .filter(|s| !s.is_empty())
            .collect();
        all.sort();
        all.dedup();
        Self {
            scope: (!all.is_empty()).then(|| all.join(" ")),
            resource: resource.map(str::to_owned),
        }
    }
}

/// Tuning of the manager. The defaults follow R8.2: refresh 60 s before `exp`.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// A token is refreshed this long before its `exp`.
    pub refresh_ahead: Duration,
    /// Up to this much more, at random per token, so that instances do not refresh in step.
    pub refresh_jitter: Duration,
    /// The lifetime assumed when a response has no `expires_in`.
    pub default_lifetime: Duration,
    /// Consecutive transient failures after which the breaker opens.
    pub failure_threshold: u32,
    /// The first open period; each failed probe doubles it up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            refresh_ahead: Duration::from_secs(60),
            refresh_jitter: Duration::from_secs(10),
            default_lifetime: Duration::from_secs(300),
            failure_threshold: 3,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// What the change hook receives whenever a key's token is replaced.
#[derive(Debug)]
pub struct TokenChange<'a> {
    pub request: &'a TokenRequest,
    pub access_token: &'a SecretString,
    /// Unix milliseconds.
    pub expires_at_ms: i64,
}

type Hook = Arc<dyn Fn(&TokenChange<'_>) + Send + Sync>;

/// Counters since the manager was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Answers from this process's cache without waiting.
    pub hits: u64,
    /// Calls that found no fresh token and went to the slow path.
    pub misses: u64,
    /// Tokens taken from the shared cache.
    pub shared_hits: u64,
    /// Requests to the token endpoint.
    pub fetches: u64,
    pub fetch_failures: u64,
    /// Keys whose breaker is open or half-open now.
    pub open_breakers: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    shared_hits: AtomicU64,
    fetches: AtomicU64,
    fetch_failures: AtomicU64,
    open_breakers: AtomicU64,
}

#[derive(Clone)]
struct Cached {
    token: SecretString,
    exp_ms: i64,
    refresh_at_ms: i64,
}

/// One cache key: its token, and the lock that makes fetches single-flight and guards the
/// breaker.
#[derive(Default)]
struct Slot {
    current: RwLock<Option<Cached>>,
    flight: tokio::sync::Mutex<Breaker>,
}

impl Slot {
    fn read(&self) -> Option<Cached> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn fresh(&self, now_ms: i64) -> Option<SecretString> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.as_ref().filter(|c| now_ms < c.refresh_at_ms).map(|c| c.token.clone())
    }

    /// The last token while it has not expired, whatever its refresh time.
    fn valid(&self, now_ms: i64) -> Option<SecretString> {
        self.read().filter(|c| now_ms < c.exp_ms).map(|c| c.token)
    }
}

/// Builds a [`TokenManager`].
pub struct TokenManagerBuilder {
    http: Http,
    issuer: String,
    token_endpoint: String,
    credentials: ClientCredentials,
    clock: Arc<dyn Clock>,
    config: ManagerConfig,
    #[cfg(feature = "redis")]
    shared: Option<SharedCache>,
    hook: Option<Hook>,
}

impl TokenManagerBuilder {
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn config(mut self, config: ManagerConfig) -> Self {
        self.config = config;
        self
    }

    /// Shares tokens with other instances through Redis.
    #[cfg(feature = "redis")]
    pub fn shared(mut self, shared: SharedCache) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Called whenever a key's token is replaced (for callers who persist tokens).
    pub fn on_change(mut self, hook: impl Fn(&TokenChange<'_>) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    pub fn build(self) -> TokenManager {
        let policy = BreakerPolicy {
            failure_threshold: self.config.failure_threshold.max(1),
            base_backoff_ms: millis(self.config.base_backoff),
            max_backoff_ms: millis(self.config.max_backoff),
        };
        TokenManager {
            inner: Arc::new(Inner {
                http: self.http,
                issuer: self.issuer,
                token_endpoint: self.token_endpoint,
                credentials: self.credentials,
                clock: self.clock,
                config: self.config,
                policy,
                #[cfg(feature = "redis")]
                shared: self.shared,
                hook: self.hook,
                slots: RwLock::default(),
                counters: Counters::default(),
            }),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Client-credentials tokens for one client, cached per [`TokenRequest`]. Cloning shares the
/// cache.
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

struct Inner {
    http: Http,
    issuer: String,
    token_endpoint: String,
    credentials: ClientCredentials,
    clock: Arc<dyn Clock>,
    config: ManagerConfig,
    policy: BreakerPolicy,
    #[cfg(feature = "redis")]
    shared: Option<SharedCache>,
    hook: Option<Hook>,
    slots: RwLock<HashMap<TokenRequest, Arc<Slot>>>,
    counters: Counters,
}

impl TokenManager {
    /// A manager for `credentials` at the token endpoint of `issuer`. `issuer` is the `aud`
    /// of `private_key_jwt` assertions. The token endpoint must be https (or loopback http).
    pub fn builder(
        http: Http,
        issuer: impl Into<String>,
        token_endpoint: impl Into<String>,
        credentials: ClientCredentials,
    ) -> Result<TokenManagerBuilder, Error> {
        let token_endpoint = token_endpoint.into();
        crate::http::checked_url(&token_endpoint, "the token endpoint")?;
        Ok(TokenManagerBuilder {
            http,
            issuer: issuer.into(),
            token_endpoint,
            credentials,
            clock: Arc::new(SystemClock),
            config: ManagerConfig::default(),
            #[cfg(feature = "redis")]
            shared: None,
            hook: None,
        })
    }

    pub fn client_id(&self) -> &str {
        self.inner.credentials.client_id()
    }

    /// A valid access token for `request`: the cached one until its refresh time, else a new
    /// one (one fetch per key at a time); while the token endpoint fails, the last token until
    /// its `exp`; then [`Error::Unavailable`]. Definitive refusals (`invalid_client`,
    /// `invalid_scope`, …) are returned at once and not retried.
    pub async fn token(&self, request: &TokenRequest) -> Result<SecretString, Error> {
        let now = self.inner.clock.now_ms();
        let slot = self.slot(request);
        if let Some(token) = slot.fresh(now) {
            self.inner.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(token);
        }
        self.inner.counters.misses.fetch_add(1, Ordering::Relaxed);
        self.refresh(request, &slot).await
    }

    /// Forgets `request`'s token (a resource server answered `invalid_token`), so that the
    /// next call fetches a new one.
    pub fn invalidate(&self, request: &TokenRequest, token: &SecretString) {
        let slot = self.slot(request);
        let mut current = slot.current.write().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|c| &c.token == token) {
            *current = None;
        }
    }

    pub fn metrics(&self) -> Metrics {
        let c = &self.inner.counters;
        Metrics {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            shared_hits: c.shared_hits.load(Ordering::Relaxed),
            fetches: c.fetches.load(Ordering::Relaxed),
            fetch_failures: c.fetch_failures.load(Ordering::Relaxed),
            open_breakers: c.open_breakers.load(Ordering::Relaxed),
        }
    }

    /// The breaker state of `request`'s key.
    pub async fn breaker_state(&self, request: &TokenRequest) -> BreakerState {
        let now = self.inner.clock.now_ms();
        self.slot(request).flight.lock().await.state(now)
    }

    fn slot(&self, request: &TokenRequest) -> Arc<Slot> {
        if let Some(slot) = self.inner.slots.read().unwrap_or_else(|e| e.into_inner()).get(request)
        {
            return slot.clone();
        }
        let mut slots = self.inner.slots.write().unwrap_or_else(|e| e.into_inner());
        slots.entry(request.clone()).or_default().clone()
    }

    async fn refresh(&self, request: &TokenRequest, slot: &Slot) -> Result<SecretString, Error> {
        let inner = &self.inner;
        // Single flight: one caller per key fetches, the others wait here and then find its
        // token.
        let mut breaker = slot.flight.lock().await;
        let now = inner.clock.now_ms();
        if let Some(token) = slot.fresh(now) {
            return Ok(token);
        }
        if breaker.state(now) == BreakerState::Open {
            return slot.valid(now).ok_or_else(|| Error::Unavailable {
                reason: "the circuit breaker is open after repeated failures".into(),
            });
        }
        #[cfg(feature = "redis")]
        if let Some(shared) = &inner.shared {
            return self.refresh_shared(shared, request, slot, &mut breaker).await;
        }
        self.fetch(request, slot, &mut breaker).await
    }

    /// The shared path: a fresh token another instance stored, else the lock and a fetch, else
    /// (another instance holds the lock) wait for its token. A Redis failure falls back to a
    /// fetch of our own: the shared cache saves requests but is never needed for a token.
    #[cfg(feature = "redis")]
    async fn refresh_shared(
        &self,
        shared: &SharedCache,
        request: &TokenRequest,
        slot: &Slot,
        breaker: &mut Breaker,
    ) -> Result<SecretString, Error> {
        let key = self.cache_key(request);
        let deadline = tokio::time::Instant::now() + shared.lock_wait();
        loop {
            if let Some(token) = self.take_shared(shared, &key, request, slot).await {
                return Ok(token);
            }
            match shared.try_lock(&key).await {
                Ok(Some(lock)) => {
                    // Another instance may have stored a token between our read and the lock.
                    if let Some(token) = self.take_shared(shared, &key, request, slot).await {
                        let _ = shared.unlock(lock).await;
                        return Ok(token);
                    }
                    let result = self.fetch(request, slot, breaker).await;
                    if let Some(c) = slot.read().filter(|_| result.is_ok()) {
                        let entry = shared::SharedEntry {
                            access_token: c.token.expose().to_owned(),
                            exp_ms: c.exp_ms,
                        };
                        let _ = shared.store(&key, &entry, self.inner.clock.now_ms()).await;
                    }
                    let _ = shared.unlock(lock).await;
                    return result;
                }
                Ok(None) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                Ok(None) | Err(_) => return self.fetch(request, slot, breaker).await,
            }
        }
    }

    #[cfg(feature = "redis")]
    async fn take_shared(
        &self,
        shared: &SharedCache,
        key: &str,
        request: &TokenRequest,
        slot: &Slot,
    ) -> Option<SecretString> {
        let entry = shared.load(key).await.ok()??;
        let now = self.inner.clock.now_ms();
        // Only a token that is not due for refresh here either is worth taking.
        if now >= entry.exp_ms - millis(self.inner.config.refresh_ahead) {
            return None;
        }
        self.inner.counters.shared_hits.fetch_add(1, Ordering::Relaxed);
        Some(self.install(request, slot, SecretString::new(entry.access_token), entry.exp_ms))
    }

    #[cfg(feature = "redis")]
    fn cache_key(&self, request: &TokenRequest) -> String {
        format!(
            "{}\n{}\n{}",
            self.client_id(),
            request.scope.as_deref().unwrap_or_default(),
            request.resource.as_deref().unwrap_or_default()
        )
    }

    /// One token request, with the breaker's bookkeeping.
    async fn fetch(
        &self,
        request: &TokenRequest,
        slot: &Slot,
        breaker: &mut Breaker,
    ) -> Result<SecretString, Error> {
        let inner = &self.inner;
        inner.counters.fetches.fetch_add(1, Ordering::Relaxed);
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &request.scope {
            form.push(("scope", scope));
        }
        if let Some(resource) = &request.resource {
            form.push(("resource", resource));
        }
        let now = inner.clock.now_ms();
        let result = inner
            .credentials
            .token_request(&inner.http, &inner.token_endpoint, &inner.issuer, &form, now / 1000)
            .await
            .and_then(check_bearer);
        match result {
            Ok(response) => {
                if breaker.success() {
                    inner.counters.open_breakers.fetch_sub(1, Ordering::Relaxed);
                }
                let lifetime = response
                    .expires_in
                    .map(|s| s.saturating_mul(1000))
                    .unwrap_or_else(|| millis(inner.config.default_lifetime));
                let exp_ms = inner.clock.now_ms().saturating_add(lifetime);
                Ok(self.install(request, slot, response.access_token, exp_ms))
            }
            Err(e) => {
                inner.counters.fetch_failures.fetch_add(1, Ordering::Relaxed);
                // RFC 6749 §5.2: a refusal of the client or the request is final; only
                // transient faults count towards the breaker and fall back to the last token.
                if !e.is_transient() {
                    return Err(e);
                }
                if breaker.failure(inner.clock.now_ms(), &inner.policy, unit_random()) {
                    inner.counters.open_breakers.fetch_add(1, Ordering::Relaxed);
                }
                slot.valid(inner.clock.now_ms())
                    .ok_or_else(|| Error::Unavailable { reason: e.to_string() })
            }
        }
    }

    /// Makes `token` the key's current token and tells the hook.
    fn install(
        &self,
        request: &TokenRequest,
        slot: &Slot,
        token: SecretString,
        exp_ms: i64,
    ) -> SecretString {
        let config = &self.inner.config;
        let jitter = (millis(config.refresh_jitter) as f64 * unit_random()) as i64;
        let refresh_at_ms = exp_ms - millis(config.refresh_ahead) - jitter;
        let cached = Cached { token: token.clone(), exp_ms, refresh_at_ms };
        *slot.current.write().unwrap_or_else(|e| e.into_inner()) = Some(cached);
        if let Some(hook) = &self.inner.hook {
            hook(&TokenChange { request, access_token: &token, expires_at_ms: exp_ms });
        }
        token
    }
}

/// RFC 6749 §7.1: this manager attaches tokens as bearer tokens; a response of another type
/// (e.g. DPoP-bound) would fail at every resource server.
fn check_bearer(response: TokenResponse) -> Result<TokenResponse, Error> {
    if response.token_type.eq_ignore_ascii_case("bearer") {
        Ok(response)
    } else {
        Err(Error::InvalidTokenResponse("token_type is not Bearer"))
    }
}

/// A uniform value in [0, 1).
fn unit_random() -> f64 {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_ignores_scope_order_and_duplicates() {
        let a = TokenRequest::new(["b a", "a"], Some("https://api"));
        let b = TokenRequest::new(["a", "b"], Some("https://api"));
        assert_eq!(a, b);
        assert_eq!(a.scope.as_deref(), Some("a b"));
        assert_ne!(a, TokenRequest::new(["a", "b"], None));
        assert_ne!(a, TokenRequest::new(["a"], Some("https://api")));
        assert_eq!(TokenRequest::new(Vec::<&str>::new(), None).scope, None);
    }
}
