//! [`TokenMemo`]: what was learnt from token strings that passed every check, so that the next
//! presentation of the same string skips the work.
//!
//! Why: a resource server (or an introspection endpoint, RFC 7662) sees the same access token
//! many times during its life, and the signature is nearly all the cost of a JWT (ES256
//! verification alone measured 57 µs; see bench/README.md).
//!
//! - [`crate::Verifier`] remembers only that a string passed the checks that depend on nothing
//!   but the string, the expected `typ` and the keys (the header, and the signature under the
//!   key its `kid` names, with that key's `alg`); it reads and checks the claims on every call.
//!   Its memo belongs to one key set: a new set starts empty.
//! - `tessera-resource`'s validator remembers the whole result (the `Principal`) with the key
//!   set's generation it was verified under, so a repeated token is neither decoded nor parsed;
//!   what can change between calls (expiry, revocation, the proof of a bound token) it still
//!   checks on every call. Its entries are larger, so it holds fewer (4,096) in front of the
//!   verifier's.
//!
//! The rules both rely on:
//! - Keyed by SHA-256 over the expected `typ` (length-prefixed) and the whole token, so the
//!   memo holds no token and a token verified for one `typ` is not a hit for another. Only a
//!   success is inserted, and only while it is still valid.
//! - An entry is served only before its `valid_until`; one at or past it is dropped.
//! - Bounded to a capacity: when full, entries past their `valid_until` are dropped, and if
//!   that frees no room, all are (simple, predictable memory).
//! - The lock is held for one lookup or insert, never while parsing or verifying.
//! - The map's hash is the digest's own first eight bytes: only tokens that verified are
//!   inserted, and no caller can steer SHA-256 outputs into one bucket, so the table is shaped
//!   by digests nobody chose and a lookup of any other costs what it costs against those;
//!   SipHash's flooding defence would cost every lookup for nothing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard};

use crate::jws::Typ;

/// The SHA-256 digest a [`TokenMemo`] is keyed by.
pub type TokenDigest = [u8; 32];

/// A token string with the digest every memo keys it by, made once: the digest cannot be
/// given apart from the token it was made of.
pub struct Digested<'a> {
    token: &'a str,
    typ: Typ,
    digest: TokenDigest,
}

impl<'a> Digested<'a> {
    /// SHA-256 over `len(typ) || typ || token` (the length makes the split unambiguous), the
    /// `typ` the token is verified as.
    pub fn new(typ: Typ, token: &'a str) -> Self {
        use aws_lc_rs::digest::{Context, SHA256};
        let label = typ.label();
        let mut context = Context::new(&SHA256);
        context.update(&(label.len() as u64).to_be_bytes());
        context.update(label.as_bytes());
        context.update(token.as_bytes());
        let mut digest = [0u8; 32];
        digest.copy_from_slice(context.finish().as_ref());
        Self { token, typ, digest }
    }

    pub fn token(&self) -> &'a str {
        self.token
    }

    pub fn typ(&self) -> Typ {
        self.typ
    }

    pub fn digest(&self) -> &TokenDigest {
        &self.digest
    }
}

type Map<V> = HashMap<TokenDigest, (i64, V), BuildHasherDefault<DigestHasher>>;

/// Bounded memo of verified token strings (by digest) → `V`, each entry valid until a time.
pub struct TokenMemo<V> {
    entries: Mutex<Map<V>>,
    capacity: usize,
    /// How many lookups were served, for tests.
    #[cfg(test)]
    hits: std::sync::atomic::AtomicUsize,
}

impl<V> std::fmt::Debug for TokenMemo<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenMemo").field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

impl<V: Clone> TokenMemo<V> {
    /// The verifier's bound (≈ 50 bytes an entry: under 1 MiB).
    pub const CAPACITY: usize = 16_384;

    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::default()),
            capacity,
            #[cfg(test)]
            hits: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Map<V>> {
        // A panic elsewhere cannot leave the map half-updated in a way that matters: at worst
        // an entry is missing, which is a miss.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What was remembered of the token with `digest`, if it is still valid at `now`; an
    /// entry past its time is dropped (and the token takes the full path).
    pub fn get(&self, digest: &TokenDigest, now: i64) -> Option<V> {
        let mut entries = self.lock();
        match entries.get(digest) {
            Some((valid_until, value)) if now < *valid_until => {
                #[cfg(test)]
                self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Some(value.clone())
            }
            Some(_) => {
                entries.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Remembers `value` for a token that has just passed every check, unless it is no longer
    /// valid at `now`.
    pub fn insert(&self, digest: TokenDigest, valid_until: i64, value: V, now: i64) {
        if valid_until <= now {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&digest) {
            entries.retain(|_, (valid_until, _)| now < *valid_until);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(digest, (valid_until, value));
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

/// The hash of a [`TokenDigest`]: its first eight bytes (see the module's notes).
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // A digest arrives as one 32-byte write (after its length, which `write_usize` takes).
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, _length: usize) {}
}
