//! DPoP state of the token endpoint: the proof replay cache (RFC 9449 §11.1) — a proof's
//! `jti` (with its key) is accepted once while the proof could still be accepted — and the
//! server nonces (§8). Both in process: an instance remembers the proofs it saw and the nonces
//! it gave; several instances behind one balancer do not share them (see ARCHITECTURE.md).

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::digest::{SHA256, digest};

/// At most this many proofs are remembered; beyond it, new proofs are refused rather than old
/// ones forgotten (forgetting would reopen a replay window).
const CAPACITY: usize = 100_000;

#[derive(Default)]
pub struct DpopReplay {
    /// SHA-256 of `jkt` and `jti` → until when it must be remembered.
    seen: Mutex<HashMap<[u8; 32], i64>>,
}

impl DpopReplay {
    /// Records the proof; `false` if it was seen before (or the cache is full).
    pub fn first_use(&self, jkt: &str, jti: &str, until: i64, now: i64) -> bool {
        let mut key = [0u8; 32];
        let input = format!("{jkt}\n{jti}");
        key.copy_from_slice(digest(&SHA256, input.as_bytes()).as_ref());
        // A poisoned lock still holds a consistent map: entries are inserted whole.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= CAPACITY {
            seen.retain(|_, until| *until > now);
        }
        if seen.get(&key).is_some_and(|u| *u > now) || seen.len() >= CAPACITY {
            return false;
        }
        seen.insert(key, until);
        true
    }
}

/// A nonce is handed out for this long, and accepted for as long again after it was replaced.
const NONCE_PERIOD: i64 = 300;

/// Server nonces (RFC 9449 §8): one current nonce per period, the previous one still accepted,
/// so that a nonce handed out just before a change keeps working.
#[derive(Default)]
pub struct DpopNonces {
    /// The period of `current`, the current nonce, and the one before it.
    state: Mutex<(i64, String, String)>,
}

impl DpopNonces {
    /// The nonce to hand out now (the `DPoP-Nonce` header).
    pub fn current(&self, now: i64) -> String {
        self.rotated(now).1.clone()
    }

    /// Whether `nonce` is the current or the previous nonce.
    pub fn accepts(&self, nonce: Option<&str>, now: i64) -> bool {
        let Some(nonce) = nonce else { return false };
        let state = self.rotated(now);
        let eq =
            |a: &str| bool::from(subtle::ConstantTimeEq::ct_eq(a.as_bytes(), nonce.as_bytes()));
        eq(&state.1) || (!state.2.is_empty() && eq(&state.2))
    }

    fn rotated(&self, now: i64) -> std::sync::MutexGuard<'_, (i64, String, String)> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let period = now.div_euclid(NONCE_PERIOD);
        if state.1.is_empty() || state.0 < period {
            let previous =
                if state.0 == period - 1 { std::mem::take(&mut state.1) } else { String::new() };
            *state = (period, tessera_core::secret::random_id::<16>(), previous);
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9449_8_the_current_and_previous_nonce_are_accepted() {
        let nonces = DpopNonces::default();
        let first = nonces.current(0);
        assert!(nonces.accepts(Some(&first), 10));
        assert!(!nonces.accepts(Some("made-up"), 10) && !nonces.accepts(None, 10));
        let second = nonces.current(NONCE_PERIOD);
        assert_ne!(first, second);
        assert!(nonces.accepts(Some(&first), NONCE_PERIOD + 1), "the previous one still works");
        assert!(!nonces.accepts(Some(&first), 2 * NONCE_PERIOD), "not two periods on");
    }

    #[test]
    fn rfc9449_11_1_a_proof_is_accepted_once_while_it_is_valid() {
        let replay = DpopReplay::default();
        assert!(replay.first_use("k", "j", 100, 0));
        assert!(!replay.first_use("k", "j", 100, 50));
        assert!(replay.first_use("other-key", "j", 100, 50), "a jti is per key");
        assert!(replay.first_use("k", "j", 200, 100), "forgotten once no longer acceptable");
    }
}
