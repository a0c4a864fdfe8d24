//! DPoP state of the token endpoint: the proof replay cache (RFC 9449 §11.1) — a proof's
//! `jti` (with its key) is accepted once while the proof could still be accepted — and the
//! server nonces (§8).
//!
//! Several instances behind one balancer must agree on both:
//! - the replay cache lives in Redis when `redis_url` is configured (`SET NX` of
//!   `tessera:dpop-jti:<hash of jkt and jti>`, expiring when the proof could no longer be
//!   accepted), in process otherwise;
//! - a nonce is an HMAC of its time slot under a key derived from the key-encryption key,
//!   which every instance of one deployment shares: a nonce handed out by one instance is
//!   accepted by the others, with no shared state at all.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The Redis key prefix of the shared replay cache.
pub const JTI_KEY_PREFIX: &str = "tessera:dpop-jti:";

/// At most this many proofs are remembered in process; beyond it, new proofs are refused
/// rather than old ones forgotten (forgetting would reopen a replay window).
const CAPACITY: usize = 100_000;

/// The replay cache could not be consulted (Redis unreachable): the proof is refused, since
/// accepting it unchecked would let a replay through.
#[derive(Debug)]
pub struct ReplayUnavailable;

#[derive(Default)]
pub struct DpopReplay {
    /// SHA-256 of `jkt` and `jti` → until when it must be remembered.
    seen: Mutex<HashMap<[u8; 32], i64>>,
    redis: Option<ConnectionManager>,
}

fn proof_key(jkt: &str, jti: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    key.copy_from_slice(digest(&SHA256, format!("{jkt}\n{jti}").as_bytes()).as_ref());
    key
}

impl DpopReplay {
    /// The replay cache shared through Redis at `url`.
    pub async fn redis(url: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(2)));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self { seen: Mutex::default(), redis: Some(conn) })
    }

    /// Records the proof; `Ok(false)` if it was seen before (by any instance sharing the
    /// Redis), or the in-process cache is full.
    pub async fn first_use(
        &self,
        jkt: &str,
        jti: &str,
        until: i64,
        now: i64,
    ) -> Result<bool, ReplayUnavailable> {
        let key = proof_key(jkt, jti);
        let Some(redis) = &self.redis else { return Ok(self.first_use_here(key, until, now)) };
        let mut conn = redis.clone();
        // SET NX EX: only the first writer gets "OK"; the entry lives as long as the proof
        // could be accepted (its iat window), then goes by itself.
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{JTI_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(key)))
            .arg("1")
            .arg("NX")
            .arg("EX")
            .arg((until - now).max(1))
            .query_async(&mut conn)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "the DPoP replay cache (Redis) is unreachable");
                ReplayUnavailable
            })?;
        Ok(set.is_some())
    }

    fn first_use_here(&self, key: [u8; 32], until: i64, now: i64) -> bool {
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

/// Server nonces (RFC 9449 §8): one nonce per period, the previous one still accepted, so that
/// a nonce handed out just before a change keeps working. Each is the HMAC of its period under
/// a key every instance of the deployment derives alike.
pub struct DpopNonces {
    key: hmac::Key,
}

impl DpopNonces {
    /// `secret`: key material every instance shares (derived from the key-encryption key).
    pub fn new(secret: &[u8]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    fn of_period(&self, period: i64) -> String {
        let tag = hmac::sign(&self.key, format!("tessera dpop nonce {period}").as_bytes());
        URL_SAFE_NO_PAD.encode(&tag.as_ref()[..18])
    }

    /// The nonce to hand out now (the `DPoP-Nonce` header).
    pub fn current(&self, now: i64) -> String {
        self.of_period(now.div_euclid(NONCE_PERIOD))
    }

    /// Whether `nonce` is the current or the previous nonce.
    pub fn accepts(&self, nonce: Option<&str>, now: i64) -> bool {
        let Some(nonce) = nonce else { return false };
        let period = now.div_euclid(NONCE_PERIOD);
        let eq =
            |a: String| bool::from(subtle::ConstantTimeEq::ct_eq(a.as_bytes(), nonce.as_bytes()));
        eq(self.of_period(period)) | eq(self.of_period(period - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9449_8_the_current_and_previous_nonce_are_accepted() {
        let nonces = DpopNonces::new(b"secret");
        let first = nonces.current(0);
        assert!(nonces.accepts(Some(&first), 10));
        assert!(!nonces.accepts(Some("made-up"), 10) && !nonces.accepts(None, 10));
        let second = nonces.current(NONCE_PERIOD);
        assert_ne!(first, second);
        assert!(nonces.accepts(Some(&first), NONCE_PERIOD + 1), "the previous one still works");
        assert!(!nonces.accepts(Some(&first), 2 * NONCE_PERIOD), "not two periods on");
    }

    #[test]
    fn rfc9449_8_a_nonce_of_one_instance_is_accepted_by_another_of_the_same_deployment() {
        let (one, other) = (DpopNonces::new(b"shared"), DpopNonces::new(b"shared"));
        assert!(other.accepts(Some(&one.current(1_000)), 1_001));
        let stranger = DpopNonces::new(b"another deployment");
        assert!(!stranger.accepts(Some(&one.current(1_000)), 1_001));
    }

    #[tokio::test]
    async fn rfc9449_11_1_a_proof_is_accepted_once_while_it_is_valid() {
        let replay = DpopReplay::default();
        assert!(replay.first_use("k", "j", 100, 0).await.unwrap());
        assert!(!replay.first_use("k", "j", 100, 50).await.unwrap());
        assert!(replay.first_use("other-key", "j", 100, 50).await.unwrap(), "a jti is per key");
        assert!(
            replay.first_use("k", "j", 200, 100).await.unwrap(),
            "forgotten once no longer acceptable"
        );
    }
}
