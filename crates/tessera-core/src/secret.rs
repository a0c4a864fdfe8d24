//! Secrets and their hashes (requirements R4.6, design invariant 4).
//!
//! Every server-generated secret (client secrets now; codes and tokens later) is high-entropy,
//! so one SHA-256 is enough to store it: there is nothing to brute-force. Argon2id is kept for
//! user passwords, which are not high-entropy.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// A plaintext secret. It exists only between generation and the response that shows it once;
/// its `Debug` and `Display` print nothing of it, so it cannot leak through a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Generates a secret of 32 random bytes (256 bits, requirements R4.6), base64url-encoded.
    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
    }

    /// Wraps a secret received from the outside (a request, or an import on the CLI).
    pub fn from_string(value: String) -> Self {
        Self(value)
    }

    /// The plaintext, for the one place that must show or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(self.0.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The SHA-256 of a secret: what the database stores.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    pub fn of(plaintext: &[u8]) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, plaintext);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// Rebuilds a hash read from storage.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `presented` hashes to this value, compared in constant time (requirements R4.5).
    pub fn verify(&self, presented: &str) -> bool {
        Self::of(presented.as_bytes()).0.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// `N` bytes from the operating system's CSPRNG (through aws-lc-rs).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // aws-lc-rs' system RNG fails only if the OS has no entropy source at all, in which case
    // no secret can be made safely and stopping is the only correct outcome.
    aws_lc_rs::rand::fill(&mut out).expect("the operating system's random source failed");
    out
}

/// A random identifier of `N` bytes, base64url-encoded (for `jti`, `kid`, `sub`).
pub fn random_id<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r4_6_generated_secrets_carry_256_bits() {
        let s = Secret::generate();
        let decoded = URL_SAFE_NO_PAD.decode(s.expose()).unwrap();
        assert_eq!(decoded.len(), 32);
        assert_ne!(s, Secret::generate());
    }

    #[test]
    fn invariant_4_secrets_never_print() {
        let s = Secret::generate();
        assert!(!format!("{s:?}").contains(s.expose()));
    }

    #[test]
    fn secret_hash_verifies_only_the_right_secret() {
        let s = Secret::generate();
        let h = s.hash();
        assert!(h.verify(s.expose()));
        assert!(!h.verify("wrong"));
        assert!(!h.verify(""));
    }
}
