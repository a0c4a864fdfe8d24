//! Throttling of sign-in attempts (requirements R4.2, issue 17 finding 3), through the server's
//! [`RateLimiter`] (in process, or shared through Redis), within the configured
//! [`LoginLimits`].
//!
//! Only **failures** count: an attempt is counted when it is admitted (so that parallel
//! guesses cannot all pass before any is counted) and given back when it succeeds. Three
//! buckets, so that nobody can lock a named account out by failing on purpose:
//!
//! - **account + source**, the strict one, with growing delays instead of a lockout
//!   ([`Backoff`]): a few free failures, then each further attempt waits 1 s, 2 s, 4 s, … up to
//!   a maximum. A success forgets them. An attacker's failures delay only the attacker's own
//!   source; the owner signing in from elsewhere is not affected.
//! - **account**, across all sources: a much higher ceiling, against guessing from many
//!   addresses at once.
//! - **source**, across all accounts: against trying one password on many accounts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_core::secret::SecretHash;

use crate::config::LoginLimits;
use crate::rate_limit::{Denied, RateLimiter};

/// An admitted sign-in attempt, counted as a failure until [`Attempt::succeeded`] says
/// otherwise (an attempt dropped without either, e.g. by a closed connection, stays counted).
#[must_use = "an attempt ends with `succeeded` or `failed`"]
pub struct Attempt {
    limits: LoginLimits,
    account_key: String,
    source_key: String,
    pair_key: String,
}

impl Attempt {
    /// The password was wrong: the attempt stays counted, and the delay it brings runs from
    /// now (the check may have waited in the password-check queue).
    pub async fn failed(self, limiter: &RateLimiter) {
        limiter.restart_delay(&self.pair_key, self.limits.per_account_and_source).await;
    }

    /// The password was right: the attempt is not a failure, and the earlier failures of this
    /// account from this source are forgotten.
    pub async fn succeeded(self, limiter: &RateLimiter) {
        limiter.forgive(&self.pair_key).await;
        limiter.refund(&self.account_key, self.limits.per_account).await;
        limiter.refund(&self.source_key, self.limits.per_source).await;
    }
}

/// Admits one sign-in attempt for `account` from `source` (a key from
/// [`crate::web::SourceAddr::key`]); `Err` while a limit holds it back. The account name is
/// hashed into the keys, so that usernames are not written to Redis. A refused attempt is not
/// counted anywhere: the source is checked first, so that a source over its limit spends none
/// of the account's allowance.
pub async fn admit_sign_in(
    limiter: &RateLimiter,
    limits: LoginLimits,
    account: &str,
    source: &str,
) -> Result<Attempt, Denied> {
    let account_hash = SecretHash::of(account.to_lowercase().as_bytes());
    let account_id = URL_SAFE_NO_PAD.encode(&account_hash.as_bytes()[..16]);
    let attempt = Attempt {
        limits,
        account_key: format!("login-account:{account_id}"),
        source_key: format!("login-source:{source}"),
        pair_key: format!("login-pair:{account_id}:{source}"),
    };
    limiter.check(&attempt.source_key, limits.per_source).await?;
    if let Err(denied) = limiter.check(&attempt.account_key, limits.per_account).await {
        limiter.refund(&attempt.source_key, limits.per_source).await;
        return Err(denied);
    }
    if let Err(denied) = limiter.backoff(&attempt.pair_key, limits.per_account_and_source).await {
        limiter.refund(&attempt.account_key, limits.per_account).await;
        limiter.refund(&attempt.source_key, limits.per_source).await;
        return Err(denied);
    }
    Ok(attempt)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// 2 free failures, then 1 s, 2 s, …; 4 per account, 6 per source.
    fn small() -> LoginLimits {
        LoginLimits::new(2, Duration::from_secs(1), Duration::from_secs(60), 4, 6)
    }

    /// The server's defaults.
    fn defaults() -> LoginLimits {
        let raw = crate::config::RawConfig {
            issuer: Some("https://auth.example.com".into()),
            key_encryption_key: Some(tessera_core::keys::KeyEncryptionKey::generate_encoded()),
            ..Default::default()
        };
        crate::config::Settings::validate(raw, false).unwrap().login_limits
    }

    async fn fail(rl: &RateLimiter, limits: LoginLimits, account: &str, source: &str) -> bool {
        match admit_sign_in(rl, limits, account, source).await {
            Ok(attempt) => {
                attempt.failed(rl).await;
                true
            }
            Err(_) => false,
        }
    }

    async fn succeed(rl: &RateLimiter, limits: LoginLimits, account: &str, source: &str) -> bool {
        match admit_sign_in(rl, limits, account, source).await {
            Ok(attempt) => {
                attempt.succeeded(rl).await;
                true
            }
            Err(_) => false,
        }
    }

    #[tokio::test]
    async fn issue17_3_successful_sign_ins_are_not_counted_with_the_default_limits() {
        // A probe suite signs one user in 70 times within minutes, from one address.
        let (rl, limits) = (RateLimiter::in_process(), defaults());
        for i in 0..70 {
            assert!(succeed(&rl, limits, "alice", "10.0.0.1").await, "sign-in {i}");
        }
    }

    #[tokio::test]
    async fn issue17_3_an_attackers_failures_do_not_lock_the_owner_out_from_another_source() {
        let (rl, limits) = (RateLimiter::in_process(), defaults());
        let mut admitted = 0;
        for _ in 0..10 {
            admitted += u32::from(fail(&rl, limits, "alice", "203.0.113.66").await);
        }
        assert!(admitted < 10, "the attacker's source is slowed down");
        assert!(succeed(&rl, limits, "Alice", "198.51.100.7").await, "the owner signs in");
    }

    #[tokio::test]
    async fn issue17_3_failures_from_one_source_bring_growing_delays_not_a_lockout() {
        let rl = RateLimiter::in_process();
        let limits = LoginLimits::new(2, Duration::from_secs(1), Duration::from_secs(60), 100, 100);
        assert!(fail(&rl, limits, "alice", "a").await);
        assert!(fail(&rl, limits, "alice", "a").await);
        let first = admit_sign_in(&rl, limits, "alice", "a").await.err().unwrap();
        assert_eq!(first.retry_after_secs(), 1, "the first delay is a second");
        assert!(first.retry_after <= Duration::from_secs(1));
        tokio::time::sleep(first.retry_after).await;
        assert!(fail(&rl, limits, "alice", "a").await, "after the delay, one more try");
        let second = admit_sign_in(&rl, limits, "alice", "a").await.err().unwrap();
        assert!(second.retry_after > Duration::from_secs(1), "{second:?}: the delay grew");
        assert!(second.retry_after <= Duration::from_secs(2), "{second:?}");
    }

    #[tokio::test]
    async fn issue17_3_a_success_forgets_the_failures_of_that_account_and_source() {
        let (rl, limits) = (RateLimiter::in_process(), small());
        assert!(fail(&rl, limits, "alice", "a").await);
        assert!(succeed(&rl, limits, "alice", "a").await);
        // Two free failures again, not one.
        assert!(fail(&rl, limits, "alice", "a").await);
        assert!(fail(&rl, limits, "alice", "a").await);
        assert!(!fail(&rl, limits, "alice", "a").await);
    }

    #[tokio::test]
    async fn r4_2_an_account_has_a_ceiling_across_sources_whatever_the_case() {
        let (rl, limits) = (RateLimiter::in_process(), small());
        for source in ["1", "2", "3", "4"] {
            assert!(fail(&rl, limits, "alice", source).await);
        }
        assert!(!fail(&rl, limits, "ALICE", "5").await, "over the account's ceiling");
        assert!(fail(&rl, limits, "bob", "5").await);
    }

    #[tokio::test]
    async fn r4_2_a_source_has_a_ceiling_across_accounts() {
        let (rl, limits) = (RateLimiter::in_process(), small());
        for user in ["a", "b", "c", "d", "e", "f"] {
            assert!(fail(&rl, limits, user, "1.2.3.4").await);
        }
        let denied = admit_sign_in(&rl, limits, "g", "1.2.3.4").await.err().unwrap();
        assert!(denied.retry_after <= crate::config::CEILING_WINDOW);
        assert!(fail(&rl, limits, "g", "4.3.2.1").await);
    }

    #[tokio::test]
    async fn r4_2_a_throttled_source_spends_none_of_the_accounts_failures() {
        let (rl, limits) = (RateLimiter::in_process(), small());
        for user in ["a", "b", "c", "d", "e", "f"] {
            assert!(fail(&rl, limits, user, "6.6.6.6").await);
        }
        // Refused at the source: alice's four are still hers.
        for _ in 0..5 {
            assert!(!fail(&rl, limits, "alice", "6.6.6.6").await);
        }
        for source in ["1", "2", "3", "4"] {
            assert!(fail(&rl, limits, "alice", source).await);
        }
        assert!(!fail(&rl, limits, "alice", "5").await);
    }
}
