//! Signing: compact JWS (RFC 7515 §7.1) with the cached key pairs. `jsonwebtoken::encode`
//! re-parses the private key on every call, so the JWS is assembled here.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::SigningAlg;
use super::generation::KeyPair;
use crate::error::InternalError;

/// A key ready to sign.
pub struct SigningKey {
    pub(super) kid: String,
    pub(super) alg: SigningAlg,
    pub(super) activates_at: i64,
    pub(super) signing_until: Option<i64>,
    pub(super) pair: KeyPair,
}

impl SigningKey {
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// Signs `claims` as a compact JWS (RFC 7515 §7.1) with the given `typ` header
    /// (`at+jwt` for RFC 9068 access tokens).
    pub fn sign_jwt(&self, typ: &str, claims: &impl Serialize) -> Result<String, InternalError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            typ: &'a str,
            kid: &'a str,
        }
        let header = Header { alg: self.alg.as_str(), typ, kid: &self.kid };
        let to_json = |e| InternalError::new("claims serialization", e);
        let header = serde_json::to_vec(&header).map_err(to_json)?;
        let payload = serde_json::to_vec(claims).map_err(to_json)?;
        let mut jws = String::with_capacity(64 + payload.len() * 4 / 3 + 360);
        URL_SAFE_NO_PAD.encode_string(header, &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut jws);
        let signature = self.pair.sign(jws.as_bytes())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        Ok(jws)
    }
}

impl KeyPair {
    pub(super) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, InternalError> {
        let fail = |_| InternalError::new("signing", "the signature operation failed");
        match self {
            Self::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)
                    .map_err(fail)?;
                Ok(signature)
            }
            Self::Ec(pair) => {
                Ok(pair.sign(&SystemRandom::new(), message).map_err(fail)?.as_ref().to_vec())
            }
            Self::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}
