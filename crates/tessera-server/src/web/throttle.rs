//! Throttling of sign-in attempts (requirements R4.2): per account and per source address,
//! through the server's [`RateLimiter`] (in process, or shared through Redis). Every attempt
//! counts, successful or not: the limits are far above what a person signing in needs and far
//! below what guessing passwords needs.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_core::secret::SecretHash;

use crate::rate_limit::{Denied, Limit, RateLimiter};

/// Attempts allowed per account and per source.
#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    pub per_account: Limit,
    pub per_source: Limit,
}

impl LoginLimits {
    /// `per_account` and `per_source` attempts in every 15 minutes (configured as
    /// `login_attempts_per_account` / `login_attempts_per_source`).
    pub fn per_15_minutes(per_account: u32, per_source: u32) -> Self {
        let window = Duration::from_secs(15 * 60);
        Self {
            per_account: Limit::per_period(per_account, window),
            per_source: Limit::per_period(per_source, window),
        }
    }
}

/// Takes one sign-in attempt for `account` from `source`; `Err` while either is over its limit.
/// The account name is hashed into the key, so that usernames are not written to Redis. The
/// source is checked first: a source over its limit spends none of the account's attempts, so
/// one noisy address cannot use up a user's allowance by itself.
pub async fn admit_sign_in(
    limiter: &RateLimiter,
    limits: LoginLimits,
    account: &str,
    source: &str,
) -> Result<(), Denied> {
    let account_hash = SecretHash::of(account.to_lowercase().as_bytes());
    let account_key =
        format!("login-account:{}", URL_SAFE_NO_PAD.encode(&account_hash.as_bytes()[..16]));
    limiter.check(&format!("login-source:{source}"), limits.per_source).await?;
    limiter.check(&account_key, limits.per_account).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> LoginLimits {
        let window = Duration::from_secs(60);
        LoginLimits {
            per_account: Limit::per_period(2, window),
            per_source: Limit::per_period(3, window),
        }
    }

    #[tokio::test]
    async fn r4_2_an_account_is_throttled_whatever_the_source_and_case() {
        let rl = RateLimiter::in_process();
        assert!(admit_sign_in(&rl, small(), "alice", "1.1.1.1").await.is_ok());
        assert!(admit_sign_in(&rl, small(), "Alice", "2.2.2.2").await.is_ok());
        assert!(admit_sign_in(&rl, small(), "alice", "3.3.3.3").await.is_err());
        assert!(admit_sign_in(&rl, small(), "bob", "4.4.4.4").await.is_ok());
    }

    #[tokio::test]
    async fn r4_2_a_source_is_throttled_across_accounts() {
        let rl = RateLimiter::in_process();
        for user in ["a", "b", "c"] {
            assert!(admit_sign_in(&rl, small(), user, "1.2.3.4").await.is_ok());
        }
        let denied = admit_sign_in(&rl, small(), "d", "1.2.3.4").await.unwrap_err();
        assert!(denied.retry_after <= Duration::from_secs(60));
        assert!(admit_sign_in(&rl, small(), "d", "4.3.2.1").await.is_ok());
    }

    #[tokio::test]
    async fn r4_2_a_throttled_source_spends_none_of_the_accounts_attempts() {
        let rl = RateLimiter::in_process();
        for user in ["a", "b", "c"] {
            assert!(admit_sign_in(&rl, small(), user, "6.6.6.6").await.is_ok());
        }
        // Refused at the source: alice's two attempts are still hers.
        for _ in 0..5 {
            assert!(admit_sign_in(&rl, small(), "alice", "6.6.6.6").await.is_err());
        }
        assert!(admit_sign_in(&rl, small(), "alice", "1.1.1.1").await.is_ok());
        assert!(admit_sign_in(&rl, small(), "alice", "1.1.1.1").await.is_ok());
        assert!(admit_sign_in(&rl, small(), "alice", "1.1.1.1").await.is_err());
    }
}
