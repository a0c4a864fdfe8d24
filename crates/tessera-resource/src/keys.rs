//! One issuer's signing keys, safe across key rotation.
//!
//! The commonest outage of resource servers is the authorization server rotating its keys:
//! tokens signed by the new key arrive before the cached set holds it. So:
//!
//! - A token whose `kid` is unknown makes the set be fetched again at once; all requests that
//!   miss at the same time wait for that one fetch (single flight) and then look again.
//! - Unknown-`kid` fetches happen at most once per cooldown (30 s by default): a flood of
//!   tokens with forged kids costs the issuer one request per cooldown, not one per token.
//! - The set is also refreshed in the background when it is older than the issuer's
//!   `Cache-Control: max-age`, bounded to 5 minutes … 24 hours.
//! - A failed fetch never replaces a good set: the last good keys stay in use (a refresh is
//!   tried again after [`RETRY_AFTER_FAILURE`]).
//! - Each fetch goes through `tessera_jose::fetch` (SSRF guard, 5 s timeout, 64 KiB cap).
//! - Every installed set has a new generation. The validator remembers verified tokens with
//!   the generation they were verified under and serves them only while it is still the one in
//!   use: a key that leaves the set takes its tokens' remembered verifications with it (and
//!   the set's verifier, with its own memo, goes with the set).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

// Tokio's clock, which is the system's monotonic clock except where a test pauses and
// advances it (the periodic refresh is tested without waiting five minutes).
use tokio::time::Instant;

use tessera_jose::fetch::fetch_jwks;
use tessera_jose::{FetchError, Verifier};

/// Bounds of the periodic refresh, whatever `Cache-Control` says.
pub(crate) const MIN_REFRESH: Duration = Duration::from_secs(5 * 60);
pub(crate) const MAX_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);
/// After a failed periodic refresh, the next try.
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// The keys in use, replaced as a whole.
struct Current {
    verifier: Arc<Verifier>,
    /// Bumped by every installed set: a request that missed under generation `g` knows a
    /// newer set is there to try when the generation is no longer `g`.
    generation: u64,
    refresh_at: Instant,
    /// When the last unknown-`kid` fetch started.
    last_refetch: Option<Instant>,
}

/// The keys of one issuer.
pub(crate) struct IssuerKeys {
    jwks_uri: String,
    allow_private_networks: bool,
    refetch_cooldown: Duration,
    current: RwLock<Current>,
    /// Held by whoever fetches: the single flight.
    flight: Arc<tokio::sync::Mutex<()>>,
    fetches: AtomicU64,
}

/// A set of keys and the generation it belongs to.
pub(crate) struct Keys {
    pub verifier: Arc<Verifier>,
    pub generation: u64,
}

fn refresh_after(max_age: Option<Duration>) -> Duration {
    max_age.unwrap_or(MIN_REFRESH).clamp(MIN_REFRESH, MAX_REFRESH)
}

impl IssuerKeys {
    /// Fetches the first set: a resource server that cannot read its issuer's keys at start
    /// cannot accept any token, which is better said at once.
    pub(crate) async fn load(
        jwks_uri: String,
        allow_private_networks: bool,
        refetch_cooldown: Duration,
    ) -> Result<Arc<Self>, FetchError> {
        let fetched = fetch_jwks(&jwks_uri, allow_private_networks).await?;
        let current = Current {
            verifier: Arc::new(Verifier::new(fetched.jwks)),
            generation: 0,
            refresh_at: Instant::now() + refresh_after(fetched.max_age),
            last_refetch: None,
        };
        Ok(Arc::new(Self {
            jwks_uri,
            allow_private_networks,
            refetch_cooldown,
            current: RwLock::new(current),
            flight: Arc::default(),
            fetches: AtomicU64::new(1),
        }))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        // Writers replace whole fields: a panic cannot leave the state half-written.
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Current> {
        self.current.write().unwrap_or_else(|e| e.into_inner())
    }

    /// How many times the JWKS was fetched (for tests and metrics).
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The keys in use; starts a background refresh when they are due for one.
    pub(crate) fn current(self: &Arc<Self>) -> Keys {
        self.in_use(|current| Keys {
            verifier: current.verifier.clone(),
            generation: current.generation,
        })
    }

    /// The generation of the keys in use, which a remembered verification must have been made
    /// under; like [`Self::current`], starts a background refresh when one is due.
    pub(crate) fn generation(self: &Arc<Self>) -> u64 {
        self.in_use(|current| current.generation)
    }

    fn in_use<T>(self: &Arc<Self>, read: impl FnOnce(&Current) -> T) -> T {
        let (value, due) = {
            let current = self.read();
            (read(&current), Instant::now() >= current.refresh_at)
        };
        if due {
            self.refresh_in_background();
        }
        value
    }

    fn refresh_in_background(self: &Arc<Self>) {
        {
            let mut current = self.write();
            if Instant::now() < current.refresh_at {
                return; // another request started it
            }
            // Until this refresh ends (or fails), no other request starts one.
            current.refresh_at = Instant::now() + RETRY_AFTER_FAILURE;
        }
        let keys = self.clone();
        tokio::spawn(async move {
            let _flight = keys.flight.clone().lock_owned().await;
            if let Err(e) = keys.fetch_and_install().await {
                tracing::warn!(jwks_uri = %keys.jwks_uri, error = %e,
                    "JWKS refresh failed; the last good key set stays in use");
            }
        });
    }

    /// Called after a token named a `kid` that the keys of `seen_generation` lack. Returns
    /// newer keys to try, or `None` when there is nothing newer (cooldown, or fetch failed).
    pub(crate) async fn after_unknown_kid(&self, seen_generation: u64) -> Option<Keys> {
        if let Some(newer) = self.newer_than(seen_generation) {
            return Some(newer);
        }
        let _flight = self.flight.lock().await;
        // Whoever held the flight before may have installed the key being looked for.
        if let Some(newer) = self.newer_than(seen_generation) {
            return Some(newer);
        }
        {
            let mut current = self.write();
            if current.last_refetch.is_some_and(|at| at.elapsed() < self.refetch_cooldown) {
                return None;
            }
            current.last_refetch = Some(Instant::now());
        }
        match self.fetch_and_install().await {
            Ok(()) => self.newer_than(seen_generation),
            Err(e) => {
                tracing::warn!(jwks_uri = %self.jwks_uri, error = %e,
                    "JWKS fetch for an unknown kid failed; the last good key set stays in use");
                None
            }
        }
    }

    fn newer_than(&self, generation: u64) -> Option<Keys> {
        let current = self.read();
        (current.generation != generation)
            .then(|| Keys { verifier: current.verifier.clone(), generation: current.generation })
    }

    /// Fetches the set and installs it; on failure the current set stays (and a periodic
    /// refresh is tried again after [`RETRY_AFTER_FAILURE`]). Called with the flight held.
    async fn fetch_and_install(&self) -> Result<(), FetchError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = match fetch_jwks(&self.jwks_uri, self.allow_private_networks).await {
            Ok(fetched) => fetched,
            Err(e) => {
                self.write().refresh_at = Instant::now() + RETRY_AFTER_FAILURE;
                return Err(e);
            }
        };
        let mut current = self.write();
        current.verifier = Arc::new(Verifier::new(fetched.jwks));
        current.generation += 1;
        current.refresh_at = Instant::now() + refresh_after(fetched.max_age);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_honours_cache_control_within_five_minutes_and_a_day() {
        assert_eq!(refresh_after(None), MIN_REFRESH);
        assert_eq!(refresh_after(Some(Duration::ZERO)), MIN_REFRESH);
        assert_eq!(refresh_after(Some(Duration::from_secs(3600))), Duration::from_secs(3600));
        assert_eq!(refresh_after(Some(Duration::from_secs(7 * 86_400))), MAX_REFRESH);
    }
}
