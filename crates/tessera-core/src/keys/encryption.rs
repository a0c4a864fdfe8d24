//! The key-encryption key: signing keys are sealed at rest with AES-256-GCM (requirements
//! R4.6), the `kid` as associated data so that a sealed key cannot be moved to another `kid`.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::error::InternalError;

/// The key that encrypts signing keys at rest (requirements R4.6): 32 bytes for AES-256-GCM.
pub struct KeyEncryptionKey(RandomizedNonceKey, [u8; 32]);

/// The label of [`KeyEncryptionKey::derived_secret`].
const DERIVATION_LABEL: &[u8] = b"tessera: secret derived from the key-encryption key";

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey([redacted])")
    }
}

impl KeyEncryptionKey {
    /// A new random key, base64url-encoded, for `--dev` and for operators.
    pub fn generate_encoded() -> String {
        URL_SAFE_NO_PAD.encode(crate::secret::random_bytes::<32>())
    }

    /// Parses 32 bytes given as base64url (or standard base64).
    pub fn from_encoded(encoded: &str) -> Result<Self, String> {
        let encoded = encoded.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(encoded))
            .map_err(|_| "must be base64 or base64url".to_string())?;
        if bytes.len() != 32 {
            return Err(format!("must decode to 32 bytes, not {}", bytes.len()));
        }
        // A secret for other uses, derived so that the AES key itself is used for nothing else.
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &bytes), DERIVATION_LABEL);
        let mut secret = [0u8; 32];
        secret.copy_from_slice(derived.as_ref());
        RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map(|key| Self(key, secret))
            .map_err(|_| "is not a usable AES-256 key".to_string())
    }

    /// A 32-byte secret derived from this key (HMAC-SHA256 under a fixed label): every
    /// instance of a deployment shares the key-encryption key, so they all derive the same
    /// secret — what the DPoP server nonces of RFC 9449 §8 are computed with.
    pub fn derived_secret(&self) -> [u8; 32] {
        self.1
    }

    pub(super) fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, InternalError> {
        let mut buf = plaintext.to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| InternalError::new("key encryption", "sealing failed"))?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub(super) fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        let cannot = || {
            format!(
                "cannot decrypt signing key `{kid}`: the configured key_encryption_key is not the \
                 one it was stored under"
            )
        };
        if sealed.len() < NONCE_LEN {
            return Err(cannot());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| cannot())?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| cannot())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kek_must_be_32_bytes() {
        assert!(KeyEncryptionKey::from_encoded("c2hvcnQ").is_err());
        assert!(KeyEncryptionKey::from_encoded("not base64 !").is_err());
        assert!(KeyEncryptionKey::from_encoded(&KeyEncryptionKey::generate_encoded()).is_ok());
    }
}
