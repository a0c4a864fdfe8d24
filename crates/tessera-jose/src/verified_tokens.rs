//! The token strings a [`crate::Verifier`] has fully verified, so that the next presentation of
//! the same string skips the signature.
//!
//! Why: resource servers introspect (RFC 7662) the same access token many times during its
//! life, and the signature is nearly all the cost of a JWT (ES256 verification alone measured
//! 57 µs; see bench/README.md).
//!
//! What is remembered is only that a string passed the checks that depend on nothing but the
//! string, the expected `typ` and the keys: the header and the signature under the key its
//! `kid` names, with that key's `alg`. What can change between calls is checked on every call
//! by the verifier: `exp` and `nbf` against `now`, `iss` against the caller's issuer, the
//! claims the caller reads; revocation stays the caller's lookup.
//!
//! - Keyed by SHA-256 over the expected `typ` (length-prefixed) and the whole token, so the
//!   set holds no token and a token verified for one `typ` is not a hit for another. Only a
//!   success is inserted, and only while its `exp` is still ahead.
//! - The set belongs to one verifier, that is one key set: a new key set starts empty.
//! - Bounded to [`VerifiedTokens::CAPACITY`] entries: when full, entries whose `exp` passed are
//!   dropped, and if that frees no room, all are (simple, predictable memory: under 1.5 MiB).
//! - The lock is held for one lookup or insert, never while parsing or verifying.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

pub(crate) struct VerifiedTokens {
    /// Digest → the token's `exp`; an entry at or past its `exp` is never served.
    entries: Mutex<HashMap<[u8; 32], i64>>,
    capacity: usize,
    /// How many verifications were served from the set, for tests.
    #[cfg(test)]
    hits: std::sync::atomic::AtomicUsize,
}

impl VerifiedTokens {
    pub(crate) const CAPACITY: usize = 16_384;

    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
            #[cfg(test)]
            hits: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// SHA-256 over `len(typ) || typ || token` (the length makes the split unambiguous).
    pub(crate) fn digest(typ: &str, token: &str) -> [u8; 32] {
        use aws_lc_rs::digest::{Context, SHA256};
        let mut context = Context::new(&SHA256);
        context.update(&(typ.len() as u64).to_be_bytes());
        context.update(typ.as_bytes());
        context.update(token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(context.finish().as_ref());
        out
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], i64>> {
        // A panic elsewhere cannot leave the map half-updated in a way that matters: at worst
        // an entry is missing, which is a miss.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the token with `digest` was verified before and has not expired at `now`; an
    /// expired entry is dropped (and the token takes the full path).
    pub(crate) fn contains(&self, digest: &[u8; 32], now: i64) -> bool {
        let mut entries = self.lock();
        match entries.get(digest) {
            Some(&exp) if now < exp => {
                #[cfg(test)]
                self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                true
            }
            Some(_) => {
                entries.remove(digest);
                false
            }
            None => false,
        }
    }

    /// Remembers a token that has just passed every check, unless it has expired at `now`.
    pub(crate) fn insert(&self, digest: [u8; 32], exp: i64, now: i64) {
        if exp <= now {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&digest) {
            entries.retain(|_, exp| now < *exp);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(digest, exp);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    pub(crate) fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}
