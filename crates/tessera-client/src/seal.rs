//! Secrets kept outside the process (the shared token cache in Redis, a web app's session
//! store) are sealed with AES-256-GCM under a key the instances share: a dump of the store
//! gives no usable token, and the `context` (the record's key) is bound as associated data, so
//! a sealed value copied under another key does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::error::Error;

/// An AES-256-GCM key; `Debug` shows nothing of it.
pub struct SealingKey(LessSafeKey);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(…)")
    }
}

impl SealingKey {
    /// The same 32 bytes on every instance that reads what the others sealed.
    pub fn new(key: &[u8; 32]) -> Result<Self, Error> {
        let key = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| Error::Config("a sealing key must be 32 bytes".into()))?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// `nonce ‖ ciphertext ‖ tag`, with a fresh random 96-bit nonce.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce)
            .map_err(|_| Error::Config("the system random generator failed".into()))?;
        let mut body = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut body,
            )
            .map_err(|_| Error::Config("cannot seal a value this large".into()))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// The plaintext of what [`seal`](Self::seal) made under the same key and `context`;
    /// `None` for anything else (another key, another context, altered bytes).
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).ok()?;
        let mut body = sealed[NONCE_LEN..].to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(context), &mut body).ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::SealingKey;

    #[test]
    fn a_sealed_value_opens_only_under_its_key_and_context() {
        let key = SealingKey::new(&[7; 32]).unwrap();
        let sealed = key.seal(b"record:1", b"refresh-token-value").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"refresh"), "no plaintext in the sealed bytes");
        assert_eq!(key.open(b"record:1", &sealed).as_deref(), Some(&b"refresh-token-value"[..]));
        assert_eq!(key.open(b"record:2", &sealed), None, "copied under another key");
        assert_eq!(SealingKey::new(&[8; 32]).unwrap().open(b"record:1", &sealed), None);
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(key.open(b"record:1", &altered), None);
        assert_eq!(key.open(b"record:1", &sealed[..5]), None);
    }
}
