//! ID token validation for relying parties (OIDC Core §3.1.3.7): the checks of
//! [`Verifier::verify`] (signature with the issuer's key, `iss`, `exp`, `nbf`) plus the ones
//! only the client can make — `aud`, `azp`, `nonce` and `at_hash`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::alg::Algorithm;
use crate::claims::IdTokenClaims;
use crate::jws::{self, Typ, VerifyError};
use crate::verifier::{Expiry, Verified, Verifier};

/// What the client expects of an ID token it received.
#[derive(Clone, Copy, Debug)]
pub struct IdTokenCheck<'a> {
    /// The issuer the token must come from (its discovery document's `issuer`).
    pub issuer: &'a str,
    /// The client's own `client_id`, which must be an audience.
    pub client_id: &'a str,
    /// The `nonce` sent in the authentication request, if one was sent (§3.1.2.1).
    pub nonce: Option<&'a str>,
    /// The access token issued beside the ID token, whose `at_hash` is then checked
    /// (§3.1.3.8: when the claim is present it must match).
    pub access_token: Option<&'a str>,
    /// Seconds since the epoch.
    pub now: i64,
}

/// Why an ID token is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("the ID token is not meant for this client (aud)")]
    WrongAudience,
    #[error("the ID token's authorized party (azp) is another client")]
    WrongAuthorizedParty,
    #[error("the ID token's nonce is not the one sent")]
    NonceMismatch,
    #[error("the ID token's at_hash does not match the access token")]
    AtHashMismatch,
}

impl Verifier {
    /// Validates an ID token as OIDC Core §3.1.3.7 asks of the client.
    pub fn verify_id_token(
        &self,
        token: &str,
        check: &IdTokenCheck<'_>,
    ) -> Result<Verified<IdTokenClaims>, IdTokenError> {
        // The key (hence the algorithm) that must have signed, for `at_hash`.
        let alg = jws::check_header(self.jwks(), &jws::split(token)?, Typ::Any)?.alg();
        let verified: Verified<IdTokenClaims> =
            self.verify(token, Typ::Any, check.issuer, check.now, Expiry::Enforce)?;
        let claims = verified.claims();
        // §3.1.3.7 item 3: the client_id must be among the audiences.
        if !claims.aud.contains(check.client_id) {
            return Err(IdTokenError::WrongAudience);
        }
        // Items 4–5: with several audiences an `azp` should name us; whenever present it must.
        match &claims.azp {
            Some(azp) if azp != check.client_id => return Err(IdTokenError::WrongAuthorizedParty),
            None if claims.aud.as_slice().len() > 1 => {
                return Err(IdTokenError::WrongAuthorizedParty);
            }
            _ => {}
        }
        // Item 11: the nonce must be the one sent; a token carrying none when one was sent is
        // as wrong as a different one (it could be replayed from another session).
        if let Some(expected) = check.nonce
            && !claims.nonce.as_deref().is_some_and(|n| constant_time_eq(n, expected))
        {
            return Err(IdTokenError::NonceMismatch);
        }
        // §3.1.3.8: `at_hash`, when present, binds the ID token to this access token.
        if let (Some(access_token), Some(at_hash_claim)) = (check.access_token, &claims.at_hash)
            && !constant_time_eq(&at_hash(access_token, alg), at_hash_claim)
        {
            return Err(IdTokenError::AtHashMismatch);
        }
        Ok(verified)
    }
}

/// OIDC Core §3.1.3.6: `at_hash` is the base64url of the left half of the hash of the access
/// token, with the hash of the ID token's `alg` (SHA-512 for EdDSA with Ed25519, as OpenID's
/// registry specifies). The issuer (`tessera-core`) mints with this same function.
pub fn at_hash(access_token: &str, alg: Algorithm) -> String {
    let hash = match alg {
        Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256 => &aws_lc_rs::digest::SHA256,
        Algorithm::RS384 | Algorithm::ES384 => &aws_lc_rs::digest::SHA384,
        Algorithm::RS512 | Algorithm::EdDSA => &aws_lc_rs::digest::SHA512,
    };
    let digest = aws_lc_rs::digest::digest(hash, access_token.as_bytes());
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::jwks::Jwks;
    use crate::test_keys::TestKey;

    const ISS: &str = "https://i";
    const NOW: i64 = 1000;

    fn fixture() -> (TestKey, Verifier) {
        let key = TestKey::es256("ec");
        let verifier = Verifier::new(Jwks::parse(&TestKey::jwks(&[&key])).unwrap());
        (key, verifier)
    }

    fn claims(extra: Value) -> Value {
        let mut c = json!({
            "iss": ISS, "sub": "u", "aud": "app", "exp": NOW + 60, "iat": NOW, "nonce": "n1",
            "at_hash": at_hash("the-access-token", Algorithm::ES256),
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    fn check(token: &str, verifier: &Verifier) -> Result<(), IdTokenError> {
        let check = IdTokenCheck {
            issuer: ISS,
            client_id: "app",
            nonce: Some("n1"),
            access_token: Some("the-access-token"),
            now: NOW,
        };
        verifier.verify_id_token(token, &check).map(drop)
    }

    #[test]
    fn oidc_3_1_3_6_at_hash_is_the_left_half_of_sha256() {
        // OIDC Core Appendix A.3 example: access token and its at_hash.
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(at_hash(token, Algorithm::RS256), "77QmUPtjPfzWtF2AnpK9RQ");
    }

    #[test]
    fn oidc_3_1_3_7_a_valid_id_token_passes() {
        let (key, v) = fixture();
        assert_eq!(check(&key.sign("JWT", &claims(json!({}))), &v), Ok(()));
        let many = claims(json!({"aud": ["app", "api"], "azp": "app"}));
        assert_eq!(check(&key.sign("JWT", &many), &v), Ok(()));
    }

    #[test]
    fn oidc_3_1_3_7_wrong_aud_iss_or_expired_is_refused() {
        let (key, v) = fixture();
        let sign = |extra| key.sign("JWT", &claims(extra));
        assert_eq!(check(&sign(json!({"aud": "other"})), &v), Err(IdTokenError::WrongAudience));
        assert_eq!(
            check(&sign(json!({"iss": "https://evil"})), &v),
            Err(IdTokenError::Verify(VerifyError::WrongIssuer))
        );
        assert_eq!(
            check(&sign(json!({"exp": NOW})), &v),
            Err(IdTokenError::Verify(VerifyError::Expired))
        );
    }

    #[test]
    fn oidc_3_1_3_7_azp_must_name_the_client() {
        let (key, v) = fixture();
        let sign = |extra| key.sign("JWT", &claims(extra));
        assert_eq!(
            check(&sign(json!({"azp": "other"})), &v),
            Err(IdTokenError::WrongAuthorizedParty)
        );
        assert_eq!(
            check(&sign(json!({"aud": ["app", "api"]})), &v),
            Err(IdTokenError::WrongAuthorizedParty)
        );
    }

    #[test]
    fn oidc_3_1_3_7_nonce_mismatch_is_refused() {
        let (key, v) = fixture();
        let other = key.sign("JWT", &claims(json!({"nonce": "n2"})));
        assert_eq!(check(&other, &v), Err(IdTokenError::NonceMismatch));
        let mut missing = claims(json!({}));
        missing.as_object_mut().unwrap().remove("nonce");
        assert_eq!(check(&key.sign("JWT", &missing), &v), Err(IdTokenError::NonceMismatch));
    }

    #[test]
    fn oidc_3_1_3_8_at_hash_of_another_access_token_is_refused() {
        let (key, v) = fixture();
        let other = claims(json!({"at_hash": at_hash("another", Algorithm::ES256)}));
        assert_eq!(check(&key.sign("JWT", &other), &v), Err(IdTokenError::AtHashMismatch));
    }

    #[test]
    fn an_id_token_signed_by_an_unknown_key_is_refused() {
        let (_, v) = fixture();
        let stranger = TestKey::es256("ec");
        assert_eq!(
            check(&stranger.sign("JWT", &claims(json!({}))), &v),
            Err(IdTokenError::Verify(VerifyError::InvalidSignatureOrClaims))
        );
    }
}
