//! Signing keys, one job per module: [`encryption`] at rest, [`generation`], JWKS rendering
//! ([`jwk`]), and [`signing`] with the private keys. Verification needs no private key and
//! lives in `tessera-jose`; a [`KeySet`] hands out a [`Verifier`] built from its published JWKS.

mod encryption;
mod generation;
mod jwk;
mod signing;

use std::fmt;

use tessera_jose::{Jwks, Verifier};

pub use encryption::KeyEncryptionKey;
pub use generation::generate_key;
pub use signing::SigningKey;

use generation::KeyPair;

/// The JWS algorithms Tessera signs with (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys: required by OIDC for ID tokens.
    RS256,
    /// ECDSA P-256 with SHA-256: the default for access tokens, ~17× cheaper to sign than RS256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [Self::RS256, Self::ES256, Self::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signing key as stored: the private key is PKCS#8, sealed under the key-encryption key.
#[derive(Clone, Debug)]
pub struct StoredKey {
    pub kid: String,
    pub alg: SigningAlg,
    /// `nonce || AES-256-GCM(PKCS#8)`, with the `kid` as associated data.
    pub sealed_private_key: Vec<u8>,
    /// The public JWK, as published.
    pub public_jwk: String,
    pub created_at: i64,
    /// The key signs from this time on; it is published from `created_at`.
    pub activates_at: i64,
    /// Set on rotation: the key stops signing at this time.
    pub signing_until: Option<i64>,
    /// Set on rotation: the key leaves the JWKS at this time, once every token it signed has
    /// expired.
    pub publish_until: Option<i64>,
}

/// Every published key, decrypted and parsed, with the JWKS document pre-rendered.
pub struct KeySet {
    keys: Vec<SigningKey>,
    jwks: String,
    /// Built from `jwks`, with its set of already verified tokens: a new set (after a
    /// rotation) starts that set afresh.
    verifier: Verifier,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys.iter().map(|k| (&k.kid, k.alg))).finish()
    }
}

impl KeySet {
    /// Decrypts and parses the published keys.
    pub fn load(stored: &[StoredKey], kek: &KeyEncryptionKey) -> Result<Self, String> {
        let mut keys = Vec::with_capacity(stored.len());
        let mut jwks = Vec::with_capacity(stored.len());
        for key in stored {
            let pkcs8 = kek.open(&key.kid, &key.sealed_private_key)?;
            let pair = KeyPair::from_pkcs8(key.alg, &pkcs8)?;
            jwks.push(jwk::public_jwk(&pair, &key.kid, key.alg));
            keys.push(SigningKey {
                kid: key.kid.clone(),
                alg: key.alg,
                activates_at: key.activates_at,
                signing_until: key.signing_until,
                pair,
            });
        }
        let jwks = jwk::jwks_document(jwks);
        let public = if keys.is_empty() {
            Jwks::empty()
        } else {
            Jwks::parse(&jwks).map_err(|e| format!("the published keys are unusable: {e}"))?
        };
        Ok(Self { keys, jwks, verifier: Verifier::new(public) })
    }

    /// The JWKS document (RFC 7517 §5).
    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }

    /// The key that signs `alg` tokens at `now`: the most recently activated one that is
    /// active and not yet retired.
    pub fn signer(&self, alg: SigningAlg, now: i64) -> Option<&SigningKey> {
        self.keys
            .iter()
            .filter(|k| {
                k.alg == alg && k.activates_at <= now && k.signing_until.is_none_or(|t| now < t)
            })
            .max_by_key(|k| k.activates_at)
    }

    /// The verifier of the tokens this set signed: the published public keys only, the same
    /// path every other holder of our JWKS takes (`tessera-jose`).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// When the newest not-retired key of `alg` starts (or started) signing: the age that
    /// scheduled rotation looks at. A successor published ahead is newer, so a rotation in
    /// progress is not repeated.
    pub fn newest_activation(&self, alg: SigningAlg) -> Option<i64> {
        self.keys
            .iter()
            .filter(|k| k.alg == alg && k.signing_until.is_none())
            .map(|k| k.activates_at)
            .max()
    }

    /// Whether `alg` has a key that is not retired (active now or waiting to activate).
    pub fn has_current_key(&self, alg: SigningAlg) -> bool {
        self.keys.iter().any(|k| k.alg == alg && k.signing_until.is_none())
    }
}
#[cfg(test)]
mod tests {
    use tessera_jose::{AccessTokenClaims, Expiry, Typ, VerifyError};

    use super::*;

    fn kek() -> KeyEncryptionKey {
        KeyEncryptionKey::from_encoded(&KeyEncryptionKey::generate_encoded()).unwrap()
    }

    #[test]
    fn r4_6_private_keys_are_sealed_and_bound_to_their_kid() {
        let kek = kek();
        let mut key = generate_key(SigningAlg::ES256, &kek, 0, 0).unwrap();
        assert!(KeySet::load(std::slice::from_ref(&key), &kek).is_ok());
        assert!(KeySet::load(std::slice::from_ref(&key), &self::kek()).is_err());
        key.kid = "other".into();
        assert!(KeySet::load(&[key], &kek).is_err());
    }

    #[test]
    fn rfc9068_tokens_of_every_algorithm_verify_with_the_published_keys_only() {
        let kek = kek();
        let stored: Vec<_> =
            SigningAlg::ALL.iter().map(|a| generate_key(*a, &kek, 0, 0).unwrap()).collect();
        let set = KeySet::load(&stored, &kek).unwrap();
        // The verifier is the one anyone holding the JWKS document builds.
        let published = Verifier::new(Jwks::parse(set.jwks_json()).unwrap());
        for alg in SigningAlg::ALL {
            let key = set.signer(alg, 1).unwrap();
            let claims = serde_json::json!({
                "iss": "https://i", "sub": "s", "exp": 100, "iat": 1, "aud": "https://api",
                "jti": "j", "client_id": "c",
            });
            let jwt = key.sign_jwt("at+jwt", &claims).unwrap();
            for verifier in [set.verifier(), &published] {
                let ok = verifier.verify_access_token(&jwt, "https://i", 99).unwrap();
                assert_eq!((ok.claims().sub.as_str(), ok.claims().exp), ("s", 100));
                assert_eq!(
                    verifier.verify_access_token(&jwt, "https://i", 100).unwrap_err(),
                    VerifyError::Expired
                );
            }
            let hint = set.verifier().verify::<AccessTokenClaims>(
                &jwt,
                Typ::ACCESS_TOKEN,
                "https://i",
                100,
                Expiry::Ignore,
            );
            assert!(hint.is_ok());
        }
        // A token signed by a key this set does not hold is refused.
        let foreign =
            KeySet::load(&[generate_key(SigningAlg::ES256, &kek, 0, 0).unwrap()], &kek).unwrap();
        let jwt = foreign
            .signer(SigningAlg::ES256, 1)
            .unwrap()
            .sign_jwt("at+jwt", &serde_json::json!({"iss":"https://i","exp":100,"sub":"s"}))
            .unwrap();
        assert_eq!(
            set.verifier().verify_access_token(&jwt, "https://i", 99).unwrap_err(),
            VerifyError::UnknownKey
        );
        // No key published: every token is refused, nothing panics.
        let empty = KeySet::load(&[], &kek).unwrap();
        assert!(empty.verifier().verify_access_token(&jwt, "https://i", 99).is_err());
    }

    #[test]
    fn r2_5_signer_prefers_the_newest_active_key_and_skips_retired_ones() {
        let kek = kek();
        let mut old = generate_key(SigningAlg::ES256, &kek, 0, 0).unwrap();
        let new = generate_key(SigningAlg::ES256, &kek, 100, 200).unwrap();
        old.signing_until = Some(200);
        old.publish_until = Some(2000);
        let set = KeySet::load(&[old.clone(), new.clone()], &kek).unwrap();
        // Published before it signs: both keys are in the JWKS at t=100.
        assert!(set.jwks_json().contains(&new.kid) && set.jwks_json().contains(&old.kid));
        assert_eq!(set.signer(SigningAlg::ES256, 150).unwrap().kid(), old.kid);
        assert_eq!(set.signer(SigningAlg::ES256, 200).unwrap().kid(), new.kid);
        assert!(set.signer(SigningAlg::RS256, 200).is_none());
    }

    #[test]
    fn rfc7517_jwks_carries_kid_alg_and_use_for_each_algorithm() {
        let kek = kek();
        let stored: Vec<_> =
            SigningAlg::ALL.iter().map(|a| generate_key(*a, &kek, 0, 0).unwrap()).collect();
        let set = KeySet::load(&stored, &kek).unwrap();
        let jwks: serde_json::Value = serde_json::from_str(set.jwks_json()).unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 3);
        for (jwk, key) in keys.iter().zip(&stored) {
            assert_eq!(jwk["kid"], key.kid.as_str());
            assert_eq!(jwk["alg"], key.alg.as_str());
            assert_eq!(jwk["use"], "sig");
            assert!(jwk.get("d").is_none(), "no private part is published");
        }
    }
}
