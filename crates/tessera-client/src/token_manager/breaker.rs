//! The circuit breaker around one cache key's token endpoint calls: after
//! `failure_threshold` consecutive transient failures it opens for a backoff that doubles
//! with every further failure (capped, with jitter so that instances do not probe in step);
//! once the backoff has passed, the next caller probes (half-open); a success closes it.

/// The breaker's state, as metrics report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// No call is made until the backoff has passed.
    Open,
    /// The backoff has passed: the next call is a probe.
    HalfOpen,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct BreakerPolicy {
    pub failure_threshold: u32,
    pub base_backoff_ms: i64,
    pub max_backoff_ms: i64,
}

#[derive(Debug, Default)]
pub(crate) struct Breaker {
    failures: u32,
    open_until_ms: Option<i64>,
}

impl Breaker {
    pub fn state(&self, now_ms: i64) -> BreakerState {
        match self.open_until_ms {
            None => BreakerState::Closed,
            Some(until) if now_ms < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Records a success; true if the breaker was open or half-open (it closes).
    pub fn success(&mut self) -> bool {
        self.failures = 0;
        self.open_until_ms.take().is_some()
    }

    /// Records a transient failure at `now_ms`; true if the breaker has just opened (it was
    /// closed before). `jitter` in [0, 1) stretches the backoff by up to half.
    pub fn failure(&mut self, now_ms: i64, policy: &BreakerPolicy, jitter: f64) -> bool {
        self.failures = self.failures.saturating_add(1);
        if self.failures < policy.failure_threshold {
            return false;
        }
        let doublings = (self.failures - policy.failure_threshold).min(20);
        let backoff =
            policy.base_backoff_ms.saturating_mul(1 << doublings).min(policy.max_backoff_ms);
        let stretched = backoff + (backoff as f64 * 0.5 * jitter.clamp(0.0, 1.0)) as i64;
        let was_closed = self.open_until_ms.is_none();
        self.open_until_ms = Some(now_ms + stretched);
        was_closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: BreakerPolicy =
        BreakerPolicy { failure_threshold: 3, base_backoff_ms: 1000, max_backoff_ms: 8000 };

    #[test]
    fn opens_after_consecutive_failures_and_backs_off_exponentially_up_to_the_cap() {
        let mut b = Breaker::default();
        assert!(!b.failure(0, &POLICY, 0.0));
        assert!(!b.failure(0, &POLICY, 0.0));
        assert_eq!(b.state(0), BreakerState::Closed);
        assert!(b.failure(0, &POLICY, 0.0));
        assert_eq!((b.state(999), b.state(1000)), (BreakerState::Open, BreakerState::HalfOpen));
        // A failed probe reopens for twice as long, then four times, up to the cap.
        assert!(!b.failure(1000, &POLICY, 0.0));
        assert_eq!((b.state(2999), b.state(3000)), (BreakerState::Open, BreakerState::HalfOpen));
        b.failure(3000, &POLICY, 0.0);
        b.failure(3000, &POLICY, 0.0);
        b.failure(3000, &POLICY, 0.0);
        assert_eq!(
            (b.state(10_999), b.state(11_000)),
            (BreakerState::Open, BreakerState::HalfOpen)
        );
        assert!(b.success());
        assert_eq!(b.state(0), BreakerState::Closed);
        assert!(!b.success());
    }

    #[test]
    fn jitter_stretches_the_backoff_by_at_most_half() {
        let mut b = Breaker::default();
        for _ in 0..3 {
            b.failure(0, &POLICY, 0.999);
        }
        assert_eq!(b.state(1498), BreakerState::Open);
        assert_eq!(b.state(1500), BreakerState::HalfOpen);
    }
}
