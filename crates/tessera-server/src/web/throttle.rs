//! Throttling of failed sign-ins (requirements R4.2): per account and per source address,
//! counted in a fixed window, in this process. A success clears the account's count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per window.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub per_account: u32,
    pub per_source: u32,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { per_account: 5, per_source: 20, window: Duration::from_secs(15 * 60) }
    }
}

/// The failure counters.
#[derive(Default)]
pub struct LoginThrottle {
    limits: Limits,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> Self {
        Self { limits, failures: Mutex::default() }
    }

    /// `Err(retry_after)` while the account or the source is over its limit.
    pub fn check(&self, account: &str, source: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let blocked = |key: String, limit: u32| {
            map.get(&key).and_then(|(count, start)| {
                let elapsed = now.duration_since(*start);
                (*count >= limit && elapsed < self.limits.window)
                    .then(|| self.limits.window - elapsed)
            })
        };
        match blocked(account_key(account), self.limits.per_account)
            .or_else(|| blocked(source_key(source), self.limits.per_source))
        {
            Some(retry) => Err(retry),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, account: &str, source: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, start)| now.duration_since(*start) < self.limits.window);
        }
        for key in [account_key(account), source_key(source)] {
            let entry = map.entry(key).or_insert((0, now));
            if now.duration_since(entry.1) >= self.limits.window {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    pub fn record_success(&self, account: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&account_key(account));
    }
}

fn account_key(account: &str) -> String {
    format!("account:{}", account.to_lowercase())
}

fn source_key(source: &str) -> String {
    format!("source:{source}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r4_2_an_account_is_locked_after_its_failure_limit_and_freed_by_success() {
        let t = LoginThrottle::new(Limits {
            per_account: 2,
            per_source: 100,
            window: Duration::from_secs(60),
        });
        assert!(t.check("alice", "1.2.3.4").is_ok());
        t.record_failure("alice", "1.2.3.4");
        t.record_failure("Alice", "5.6.7.8");
        assert!(t.check("alice", "9.9.9.9").is_err(), "per account, whatever the source");
        assert!(t.check("bob", "1.2.3.4").is_ok());
        t.record_success("alice");
        assert!(t.check("alice", "1.2.3.4").is_ok());
    }

    #[test]
    fn r4_2_a_source_is_locked_after_its_failure_limit_across_accounts() {
        let t = LoginThrottle::new(Limits {
            per_account: 100,
            per_source: 3,
            window: Duration::from_secs(60),
        });
        for user in ["a", "b", "c"] {
            t.record_failure(user, "1.2.3.4");
        }
        let retry = t.check("d", "1.2.3.4").unwrap_err();
        assert!(retry <= Duration::from_secs(60));
        assert!(t.check("d", "4.3.2.1").is_ok());
    }
}
