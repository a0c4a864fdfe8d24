//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9): the client
//! signs a short-lived JWT with a key whose public half it registered.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::client::Client;
use crate::error::{Error, Result};

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT assertion.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The refusal reason when the assertion's `kid` is not among the client's keys (the server
/// then fetches a `jwks_uri` again once).
pub const UNKNOWN_KEY: &str = "the assertion's key is not registered";

/// Longest lifetime accepted for an assertion: it is a one-time proof, not a credential.
pub const MAX_ASSERTION_LIFETIME: i64 = 300;

/// Leeway for clocks that run a little apart.
const CLOCK_SKEW: i64 = 30;

/// Asymmetric algorithms only: an HMAC assertion would need a shared secret, and `none` is
/// no signature at all.
const ALLOWED: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// [`ALLOWED`] by name, for metadata (`token_endpoint_auth_signing_alg_values_supported`).
pub const ALLOWED_NAMES: [&str; 7] =
    ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"];

/// Checks a JWKS a client registers: parseable, and asymmetric public keys only.
pub fn validate_jwks(json: &str) -> std::result::Result<JwkSet, String> {
    let set: JwkSet =
        serde_json::from_str(json).map_err(|e| format!("jwks is not a JWK set: {e}"))?;
    if set.keys.is_empty() {
        return Err("jwks has no keys".into());
    }
    for key in &set.keys {
        if matches!(key.algorithm, jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)) {
            return Err("jwks must hold public keys, not symmetric ones".into());
        }
        DecodingKey::from_jwk(key).map_err(|e| format!("a key of jwks is unusable: {e}"))?;
    }
    Ok(set)
}

/// Proof that a client assertion verified; the `jti` must still be checked for replay.
#[derive(Debug)]
pub struct AssertionVerified {
    pub jti: String,
    pub expires_at: i64,
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    jti: String,
}

fn refused(reason: &'static str) -> Error {
    Error::ClientAssertionRefused(reason)
}

/// The `sub` of an assertion, read without verification, to find which client to verify it
/// for when the request has no `client_id`.
pub fn unverified_subject(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Sub {
        sub: String,
    }
    jsonwebtoken::dangerous::insecure_decode::<Sub>(assertion).ok().map(|d| d.claims.sub)
}

/// Verifies a client assertion (RFC 7523 §3): signed by one of the client's keys with an
/// asymmetric algorithm that matches the key, `iss` and `sub` the client_id, `aud` one of
/// `audiences` (the issuer or the endpoint URL), `exp` present, in the future and at most
/// [`MAX_ASSERTION_LIFETIME`] away, `jti` present.
pub fn verify(
    assertion: &str,
    client: &Client,
    jwks: &JwkSet,
    audiences: &[&str],
    now: i64,
) -> Result<AssertionVerified> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| refused("the assertion is malformed"))?;
    if !ALLOWED.contains(&header.alg) {
        return Err(refused("the assertion's algorithm is not allowed"));
    }
    let key: &Jwk = match &header.kid {
        Some(kid) => jwks.find(kid).ok_or(refused(UNKNOWN_KEY))?,
        None if jwks.keys.len() == 1 => &jwks.keys[0],
        None => return Err(refused("the assertion names no key and the client has several")),
    };
    // `KeyAlgorithm` and `Algorithm` print their variants the same way ("RS256", "EdDSA").
    if key.common.key_algorithm.is_some_and(|a| a.to_string() != format!("{:?}", header.alg)) {
        return Err(refused("the assertion's algorithm differs from its key's"));
    }
    let decoding =
        DecodingKey::from_jwk(key).map_err(|_| refused("the registered key is unusable"))?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(audiences);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["aud"]);
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &decoding, &validation)
        .map_err(|_| refused("the assertion's signature, audience or claims are invalid"))?
        .claims;
    let id = client.client_id.as_str();
    if claims.iss != id || claims.sub != id {
        return Err(refused("the assertion's iss and sub must be the client_id"));
    }
    if claims.exp + CLOCK_SKEW <= now {
        return Err(refused("the assertion has expired"));
    }
    if claims.exp > now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW {
        return Err(refused("the assertion lives too long (at most 5 minutes)"));
    }
    if claims.iat.is_some_and(|t| t > now + CLOCK_SKEW)
        || claims.nbf.is_some_and(|t| t > now + CLOCK_SKEW)
    {
        return Err(refused("the assertion is not valid yet"));
    }
    if claims.jti.is_empty() {
        return Err(refused("the assertion has no jti"));
    }
    Ok(AssertionVerified { jti: claims.jti, expires_at: claims.exp + CLOCK_SKEW })
}
