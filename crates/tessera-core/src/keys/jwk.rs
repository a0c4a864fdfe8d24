//! JWKS rendering: the public half of each key as a JWK (RFC 7517 §4, RFC 7518 §6, RFC 8037
//! §2), with `kid`, `alg` and `use`.

use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::SigningAlg;
use super::generation::KeyPair;

/// The public JWK of `pair`.
pub(super) fn public_jwk(pair: &KeyPair, kid: &str, alg: SigningAlg) -> serde_json::Value {
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let mut jwk = match pair {
        KeyPair::Rsa(pair) => {
            let public = pair.public_key();
            serde_json::json!({
                "kty": "RSA",
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero()),
            })
        }
        KeyPair::Ec(pair) => {
            // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
            let point = pair.public_key().as_ref();
            serde_json::json!({
                "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]),
            })
        }
        KeyPair::Ed(pair) => serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()),
        }),
    };
    jwk["kid"] = kid.into();
    jwk["alg"] = alg.as_str().into();
    jwk["use"] = "sig".into();
    jwk
}

/// The JWKS document (RFC 7517 §5) of `keys`.
pub(super) fn jwks_document(keys: Vec<serde_json::Value>) -> String {
    serde_json::json!({ "keys": keys }).to_string()
}
