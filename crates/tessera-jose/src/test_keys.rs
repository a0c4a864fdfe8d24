//! Key pairs for the tests: this crate only verifies, so the tests sign with aws-lc-rs
//! directly and render the public JWK as an issuer would.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::alg::Algorithm;

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pair: Pair,
}

impl TestKey {
    pub fn rs256(kid: &str) -> Self {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        Self { kid: kid.into(), alg: Algorithm::RS256, pair: Pair::Rsa(pair) }
    }

    pub fn es256(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        Self { kid: kid.into(), alg: Algorithm::ES256, pair: Pair::Ec(pair) }
    }

    pub fn ed25519(kid: &str) -> Self {
        let pair = Ed25519KeyPair::generate().unwrap();
        Self { kid: kid.into(), alg: Algorithm::EdDSA, pair: Pair::Ed(pair) }
    }

    pub fn all() -> Vec<Self> {
        vec![Self::rs256("rsa"), Self::es256("ec"), Self::ed25519("ed")]
    }

    pub fn jwk(&self) -> Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let mut jwk = match &self.pair {
            Pair::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Pair::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Pair::Ed(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
        };
        jwk["kid"] = self.kid.as_str().into();
        jwk["alg"] = self.alg.as_str().into();
        jwk["use"] = "sig".into();
        jwk
    }

    /// A JWKS document holding the public halves of `keys`.
    pub fn jwks(keys: &[&TestKey]) -> String {
        json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }).to_string()
    }

    /// The standard header of this key with `typ`.
    pub fn header(&self, typ: &str) -> Value {
        json!({"alg": self.alg.as_str(), "typ": typ, "kid": self.kid})
    }

    /// Signs `claims` under exactly `header` (which may lie about anything).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        self.sign_bytes(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }

    /// Signs exactly these header and payload bytes (which need not even be UTF-8).
    pub fn sign_bytes(&self, header: &[u8], payload: &[u8]) -> String {
        let mut jws = URL_SAFE_NO_PAD.encode(header);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut jws);
        let signature = match &self.pair {
            Pair::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), jws.as_bytes(), &mut signature)
                    .unwrap();
                signature
            }
            Pair::Ec(pair) => {
                pair.sign(&SystemRandom::new(), jws.as_bytes()).unwrap().as_ref().to_vec()
            }
            Pair::Ed(pair) => pair.sign(jws.as_bytes()).as_ref().to_vec(),
        };
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        jws
    }

    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        self.sign_with_header(&self.header(typ), claims)
    }
}
