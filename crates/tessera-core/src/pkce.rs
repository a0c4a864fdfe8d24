//! Proof Key for Code Exchange (RFC 7636), `S256` only: OAuth 2.1 requires PKCE for every
//! client and Tessera refuses `plain`, which protects nothing against an attacker who can read
//! the authorization request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// A `code_challenge` for the `S256` method: base64url of a SHA-256 digest, 43 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeChallenge(String);

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

impl CodeChallenge {
    /// Parses `code_challenge` + `code_challenge_method` from an authorization request.
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Self, &'static str> {
        let challenge = challenge.ok_or("code_challenge is required (PKCE, RFC 7636)")?;
        match method {
            Some("S256") => {}
            // RFC 7636 §4.3 defaults an absent method to `plain`, which Tessera does not accept.
            None | Some("plain") => {
                return Err("code_challenge_method must be S256; plain is not accepted");
            }
            Some(_) => return Err("code_challenge_method must be S256"),
        }
        let decoded = URL_SAFE_NO_PAD.decode(challenge).ok();
        if challenge.len() != 43 || decoded.is_none_or(|d| d.len() != 32) {
            return Err(
                "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
            );
        }
        Ok(Self(challenge.to_owned()))
    }

    /// Rebuilds a challenge read from storage.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: `BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge`, compared in
    /// constant time. A verifier of the wrong shape fails like a wrong one.
    pub fn verify(&self, verifier: &str) -> Result<PkceVerified, &'static str> {
        if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(is_unreserved) {
            return Err("code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)");
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        let computed = URL_SAFE_NO_PAD.encode(digest.as_ref());
        if bool::from(computed.as_bytes().ct_eq(self.0.as_bytes())) {
            Ok(PkceVerified(()))
        } else {
            Err("code_verifier does not match the code_challenge")
        }
    }
}

/// Proof that the PKCE verifier matched: only [`CodeChallenge::verify`] makes one, and minting
/// the tokens of a code requires it.
///
/// ```compile_fail
/// let forged = tessera_core::pkce::PkceVerified(());
/// ```
#[derive(Debug)]
pub struct PkceVerified(());

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_s256_example_verifies() {
        let c = CodeChallenge::parse(Some(CHALLENGE), Some("S256")).unwrap();
        assert!(c.verify(VERIFIER).is_ok());
        assert!(c.verify(&VERIFIER.replace('d', "e")).is_err());
    }

    #[test]
    fn rfc7636_4_3_plain_and_missing_methods_are_refused() {
        assert!(CodeChallenge::parse(Some(CHALLENGE), Some("plain")).is_err());
        assert!(CodeChallenge::parse(Some(CHALLENGE), None).is_err());
        assert!(CodeChallenge::parse(None, Some("S256")).is_err());
        assert!(CodeChallenge::parse(Some("short"), Some("S256")).is_err());
    }

    #[test]
    fn rfc7636_4_1_verifier_shape_is_checked() {
        let c = CodeChallenge::parse(Some(CHALLENGE), Some("S256")).unwrap();
        assert!(c.verify("too-short").is_err());
        assert!(c.verify(&"a".repeat(129)).is_err());
        assert!(c.verify(&format!("{}+", &VERIFIER[..43])).is_err());
    }
}
