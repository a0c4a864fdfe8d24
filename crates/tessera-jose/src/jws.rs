//! Compact JWS (RFC 7515 §7.1) verification against a [`Jwks`]: the header is read, the key
//! chosen by `kid`, the algorithm checked against the key's own, the signature verified.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::alg::Algorithm;
use crate::jwks::{Jwks, PublicKey};

/// Why a token is refused. The messages are fit for an `error_description`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token has the wrong type")]
    WrongType,
    #[error("the token has critical header parameters")]
    CriticalHeader,
    #[error("the token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("the token names no key")]
    NoKey,
    #[error("the token's key is unknown")]
    UnknownKey,
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    #[error("the token's signature or claims are invalid")]
    InvalidSignatureOrClaims,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
}

/// The `typ` header a token must carry (RFC 7515 §4.1.9; RFC 8725 §3.11: explicit typing keeps
/// one kind of JWT from being accepted as another).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Typ {
    /// This media type, compared without case and with an optional `application/` prefix.
    Exactly(&'static str),
    /// Any or none: for tokens of other issuers whose typing is unknown (ID tokens, `bench`).
    Any,
}

impl Typ {
    /// RFC 9068 §2.1: JWT access tokens are typed `at+jwt`.
    pub const ACCESS_TOKEN: Typ = Typ::Exactly("at+jwt");

    fn accepts(self, header_typ: Option<&str>) -> bool {
        let Self::Exactly(wanted) = self else { return true };
        let typ = header_typ.unwrap_or_default();
        typ.eq_ignore_ascii_case(wanted)
            || typ.get(..12).is_some_and(|p| p.eq_ignore_ascii_case("application/"))
                && typ[12..].eq_ignore_ascii_case(wanted)
    }

    /// What a `TokenMemo` digest covers besides the token.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Exactly(typ) => typ,
            Self::Any => "*",
        }
    }
}

/// The header members this verifier reads, borrowed from the decoded header.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default, borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// The three parts of a compact JWS.
pub(crate) struct Parts<'t> {
    pub(crate) header: &'t str,
    payload: &'t str,
    signature: &'t str,
    /// `header.payload`, what the signature covers.
    signing_input: &'t str,
}

pub(crate) fn split(token: &str) -> Result<Parts<'_>, VerifyError> {
    let (signing_input, signature) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
    let (header, payload) = signing_input.split_once('.').ok_or(VerifyError::Malformed)?;
    if payload.contains('.') {
        return Err(VerifyError::Malformed);
    }
    Ok(Parts { header, payload, signature, signing_input })
}

/// Headers up to this size decode on the stack (ours are under 100 bytes).
const STACK_HEADER: usize = 1024;

/// Checks the header against `jwks` and `typ`, and returns the key that must have signed.
pub(crate) fn check_header<'k>(
    jwks: &'k Jwks,
    parts: &Parts<'_>,
    typ: Typ,
) -> Result<&'k PublicKey, VerifyError> {
    let mut stack = [0u8; STACK_HEADER];
    let heap;
    let bytes: &[u8] = match URL_SAFE_NO_PAD.decode_slice(parts.header, &mut stack) {
        Ok(len) => &stack[..len],
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            heap = URL_SAFE_NO_PAD.decode(parts.header).map_err(|_| VerifyError::Malformed)?;
            &heap
        }
        Err(_) => return Err(VerifyError::Malformed),
    };
    // RFC 7515 §5.2 step 3 and RFC 8259 §8.1: the header is UTF-8 JSON. serde_json skips the
    // bytes of members it ignores without checking them, so the text is checked first.
    let text = std::str::from_utf8(bytes).map_err(|_| VerifyError::Malformed)?;
    let header: Header<'_> = serde_json::from_str(text).map_err(|_| VerifyError::Malformed)?;
    // RFC 7515 §4.1.11: a recipient that does not understand a critical extension MUST reject
    // the JWS; this verifier understands none.
    if header.crit.is_some() {
        return Err(VerifyError::CriticalHeader);
    }
    if !typ.accepts(header.typ.as_deref()) {
        return Err(VerifyError::WrongType);
    }
    // RFC 8725 §3.1: `none` and HMAC are not on the list, so they cannot match any key.
    let alg = Algorithm::parse(&header.alg).ok_or(VerifyError::AlgorithmNotAllowed)?;
    let key = match header.kid.as_deref() {
        Some(kid) => jwks.find(kid).ok_or(VerifyError::UnknownKey)?,
        // RFC 7515 §4.1.4: `kid` is optional; without it only a single key is unambiguous.
        None => match jwks.keys() {
            [only] => only,
            _ => return Err(VerifyError::NoKey),
        },
    };
    // The algorithm is the key's; the header may only agree with it.
    if alg != key.alg() {
        return Err(VerifyError::AlgorithmMismatch);
    }
    Ok(key)
}

pub(crate) fn check_signature(key: &PublicKey, parts: &Parts<'_>) -> Result<(), VerifyError> {
    match jsonwebtoken::crypto::verify(
        parts.signature,
        parts.signing_input.as_bytes(),
        key.decoding_key(),
        key.alg().jsonwebtoken(),
    ) {
        Ok(true) => Ok(()),
        _ => Err(VerifyError::InvalidSignatureOrClaims),
    }
}

pub(crate) fn decode_payload<T: DeserializeOwned>(parts: &Parts<'_>) -> Result<T, VerifyError> {
    let json =
        URL_SAFE_NO_PAD.decode(parts.payload).map_err(|_| VerifyError::InvalidSignatureOrClaims)?;
    // RFC 7519 §7.2 step 10: the claims set is UTF-8 JSON, also in members no claim type reads
    // (which serde_json would skip unchecked; found by the `access_token_claims` fuzz target).
    let text = std::str::from_utf8(&json).map_err(|_| VerifyError::InvalidSignatureOrClaims)?;
    serde_json::from_str(text).map_err(|_| VerifyError::InvalidSignatureOrClaims)
}

/// Verifies a compact JWS signed by a key of `jwks` and returns its payload as `T`, checking
/// no claim: for JWTs whose claims follow rules of their own (client assertions, RFC 7523).
/// Tokens of an issuer go through [`crate::Verifier`], which also checks `iss` and time.
pub fn verify_jws<T: DeserializeOwned>(
    jwks: &Jwks,
    token: &str,
    typ: Typ,
) -> Result<T, VerifyError> {
    let parts = split(token)?;
    let key = check_header(jwks, &parts, typ)?;
    check_signature(key, &parts)?;
    decode_payload(&parts)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::claims::BasicClaims;
    use crate::test_keys::TestKey;

    fn claims() -> Value {
        json!({"iss": "https://i", "sub": "s", "exp": 100})
    }

    /// Found by the `access_token_claims` fuzz target: bytes that are not UTF-8 inside a
    /// member no claim type reads.
    #[test]
    fn rfc7519_7_2_a_claims_set_or_header_that_is_not_utf8_is_refused_even_in_unread_members() {
        let key = TestKey::es256("k1");
        let jwks = Jwks::parse(&TestKey::jwks(&[&key])).unwrap();
        let header = br#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#;
        // The same token with valid text verifies: only the bytes make the difference.
        let valid = key.sign_bytes(header, br#"{"iss":"https://i","exp":100,"x":{"y":"sc"}}"#);
        assert!(verify_jws::<BasicClaims>(&jwks, &valid, Typ::Any).is_ok());
        let claims = b"{\"iss\":\"https://i\",\"exp\":100,\"x\":{\"y\":\"s\xff\xffc\"}}";
        let jwt = key.sign_bytes(header, claims);
        assert!(matches!(
            verify_jws::<BasicClaims>(&jwks, &jwt, Typ::Any),
            Err(VerifyError::InvalidSignatureOrClaims)
        ));
        let header = b"{\"alg\":\"ES256\",\"kid\":\"k1\",\"x\":{\"y\":\"s\xff\xffc\"}}";
        let jwt = key.sign_bytes(header, br#"{"iss":"https://i","exp":100}"#);
        assert!(matches!(
            verify_jws::<BasicClaims>(&jwks, &jwt, Typ::Any),
            Err(VerifyError::Malformed)
        ));
    }

    #[test]
    fn rfc7515_a_token_verifies_only_under_the_key_its_kid_names_with_that_keys_algorithm() {
        let keys = TestKey::all();
        let jwks = Jwks::parse(&TestKey::jwks(&keys.iter().collect::<Vec<_>>())).unwrap();
        for key in &keys {
            let jwt = key.sign("JWT", &claims());
            assert_eq!(verify_jws::<Value>(&jwks, &jwt, Typ::Any).unwrap(), claims());
            let mut tampered = jwt.clone();
            tampered.insert(jwt.find('.').unwrap() + 2, 'A');
            assert!(verify_jws::<Value>(&jwks, &tampered, Typ::Any).is_err());
        }
        // Signed by the EC key but naming the Ed25519 key's kid and algorithm.
        let ec = &keys[1];
        let lie = ec.sign_with_header(&json!({"alg": "EdDSA", "kid": "ed"}), &claims());
        assert_eq!(
            verify_jws::<Value>(&jwks, &lie, Typ::Any).unwrap_err(),
            VerifyError::InvalidSignatureOrClaims
        );
        // The EC key's kid with another algorithm: refused before any signature check.
        let swapped = ec.sign_with_header(&json!({"alg": "RS256", "kid": "ec"}), &claims());
        assert_eq!(
            verify_jws::<Value>(&jwks, &swapped, Typ::Any).unwrap_err(),
            VerifyError::AlgorithmMismatch
        );
        let unknown = ec.sign_with_header(&json!({"alg": "ES256", "kid": "nope"}), &claims());
        assert_eq!(
            verify_jws::<Value>(&jwks, &unknown, Typ::Any).unwrap_err(),
            VerifyError::UnknownKey
        );
        let no_kid = ec.sign_with_header(&json!({"alg": "ES256"}), &claims());
        assert_eq!(verify_jws::<Value>(&jwks, &no_kid, Typ::Any).unwrap_err(), VerifyError::NoKey);
        let single = Jwks::parse(&TestKey::jwks(&[ec])).unwrap();
        assert!(verify_jws::<Value>(&single, &no_kid, Typ::Any).is_ok());
    }

    #[test]
    fn rfc8725_3_1_none_and_hmac_tokens_are_refused() {
        let key = TestKey::es256("k");
        let jwks = Jwks::parse(&TestKey::jwks(&[&key])).unwrap();
        for alg in ["none", "HS256", "HS512", "es256"] {
            let header = json!({"alg": alg, "kid": "k"});
            let token = key.sign_with_header(&header, &claims());
            assert_eq!(
                verify_jws::<Value>(&jwks, &token, Typ::Any).unwrap_err(),
                VerifyError::AlgorithmNotAllowed,
                "{alg}"
            );
            let (unsigned, _) = token.rsplit_once('.').unwrap();
            assert!(verify_jws::<Value>(&jwks, &format!("{unsigned}."), Typ::Any).is_err());
        }
    }

    #[test]
    fn rfc7515_4_1_11_a_token_with_crit_is_refused() {
        let key = TestKey::es256("k");
        let jwks = Jwks::parse(&TestKey::jwks(&[&key])).unwrap();
        for crit in [json!(["exp"]), json!([]), json!("b64")] {
            let header = json!({"alg": "ES256", "kid": "k", "crit": crit, "exp": 1});
            let token = key.sign_with_header(&header, &claims());
            assert_eq!(
                verify_jws::<Value>(&jwks, &token, Typ::Any).unwrap_err(),
                VerifyError::CriticalHeader
            );
        }
    }

    #[test]
    fn rfc9068_4_the_typ_header_must_be_at_jwt() {
        let key = TestKey::es256("k");
        let jwks = Jwks::parse(&TestKey::jwks(&[&key])).unwrap();
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+jwt"] {
            let token = key.sign(typ, &claims());
            assert!(verify_jws::<Value>(&jwks, &token, Typ::ACCESS_TOKEN).is_ok(), "{typ}");
        }
        for typ in ["JWT", "at+jwt2", "application/jwt", "", "applicationXat+jwt"] {
            let token = key.sign(typ, &claims());
            assert_eq!(
                verify_jws::<Value>(&jwks, &token, Typ::ACCESS_TOKEN).unwrap_err(),
                VerifyError::WrongType,
                "{typ}"
            );
        }
        let untyped = key.sign_with_header(&json!({"alg": "ES256", "kid": "k"}), &claims());
        assert_eq!(
            verify_jws::<Value>(&jwks, &untyped, Typ::ACCESS_TOKEN).unwrap_err(),
            VerifyError::WrongType
        );
    }

    #[test]
    fn malformed_tokens_are_refused_without_panicking() {
        let key = TestKey::es256("k");
        let jwks = Jwks::parse(&TestKey::jwks(&[&key])).unwrap();
        let big_header = URL_SAFE_NO_PAD
            .encode(json!({"alg": "ES256", "kid": "k", "x": "a".repeat(5000)}).to_string());
        for token in [
            "",
            ".",
            "..",
            "a.b.c.d",
            "eyJ.eyJ.sig",
            "!!!.e30.c2ln",
            "e30.e30.c2ln",
            &format!("{big_header}.e30.c2ln"),
        ] {
            assert!(verify_jws::<Value>(&jwks, token, Typ::Any).is_err(), "{token}");
        }
    }
}
