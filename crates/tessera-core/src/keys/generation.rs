//! Key generation, and parsing of decrypted PKCS#8 keys into aws-lc-rs key pairs (parsed once
//! when a [`super::KeySet`] loads, so that signing costs one signature and nothing else).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair,
};

use super::encryption::KeyEncryptionKey;
use super::{SigningAlg, StoredKey};
use crate::error::InternalError;

/// A private key, parsed.
pub(super) enum KeyPair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl KeyPair {
    pub(super) fn generate(alg: SigningAlg) -> Result<(Self, Vec<u8>), InternalError> {
        let fail = |_| InternalError::new("key generation", alg.as_str());
        Ok(match alg {
            SigningAlg::RS256 => {
                let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(fail)?;
                let der = pair.as_der().map_err(fail)?.as_ref().to_vec();
                (Self::Rsa(pair), der)
            }
            SigningAlg::ES256 => {
                let pair =
                    EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(fail)?;
                let der = pair.to_pkcs8v1().map_err(fail)?.as_ref().to_vec();
                (Self::Ec(pair), der)
            }
            SigningAlg::EdDSA => {
                let pair = Ed25519KeyPair::generate().map_err(fail)?;
                let der = pair.to_pkcs8().map_err(fail)?.as_ref().to_vec();
                (Self::Ed(pair), der)
            }
        })
    }

    pub(super) fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<Self, String> {
        let bad = |e: aws_lc_rs::error::KeyRejected| format!("{alg} key rejected: {e}");
        Ok(match alg {
            SigningAlg::RS256 => Self::Rsa(RsaKeyPair::from_pkcs8(der).map_err(bad)?),
            SigningAlg::ES256 => Self::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(bad)?,
            ),
            SigningAlg::EdDSA => Self::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(bad)?),
        })
    }
}

/// Generates a new key of `alg`, sealed under `kek`, that signs from `activates_at` on.
pub fn generate_key(
    alg: SigningAlg,
    kek: &KeyEncryptionKey,
    now: i64,
    activates_at: i64,
) -> Result<StoredKey, InternalError> {
    let (pair, pkcs8) = KeyPair::generate(alg)?;
    let kid = crate::secret::random_id::<12>();
    Ok(StoredKey {
        public_jwk: super::jwk::public_jwk(&pair, &kid, alg).to_string(),
        sealed_private_key: kek.seal(&kid, &pkcs8)?,
        kid,
        alg,
        created_at: now,
        activates_at,
        signing_until: None,
        publish_until: None,
    })
}
