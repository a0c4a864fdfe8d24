//! DPoP proofs (RFC 9449 §4.3): the checks a server makes on a `DPoP` header, shared by the
//! authorization server (at `/token`) and by resource servers (with `ath`, §7). What this module
//! cannot judge alone is left to the caller: whether the `jti` was seen before (a replay cache)
//! and which server nonces are current.

use std::collections::BTreeMap;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::jwks::{PRIVATE_MEMBERS, public_key};
use crate::jws;

/// RFC 9449 §4.2: the `typ` of a proof.
pub const DPOP_TYP: &str = "dpop+jwt";

/// How a proof is judged besides its own content.
#[derive(Clone, Copy, Debug)]
pub struct ProofRules<'a> {
    /// The request's method (RFC 9449 §4.3 check 8).
    pub method: &'a str,
    /// The request's URL, built by the server (check 9); its query and fragment are ignored.
    pub url: &'a str,
    pub now: i64,
    /// How old (by `iat`) a proof may be, in seconds (check 11).
    pub max_age: i64,
    /// How far in the future `iat` may be, for clock skew.
    pub leeway: i64,
    /// RFC 9449 §7: at a resource, the access token the proof must be bound to (`ath`).
    pub access_token: Option<&'a str>,
}

/// A proof that passed every check of RFC 9449 §4.3 this module can make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpopProof {
    /// RFC 7638 SHA-256 thumbprint of the proof's key: what `cnf.jkt` binds a token to.
    pub jkt: String,
    /// For the caller's replay cache (§11.1).
    pub jti: String,
    pub iat: i64,
    /// The server nonce the proof carries (§8), for the caller to check.
    pub nonce: Option<String>,
}

/// Why a proof is refused (`invalid_dpop_proof`, §7.1). The messages fit an
/// `error_description`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    #[error("the DPoP proof is not a well-formed JWT")]
    Malformed,
    #[error("the DPoP proof's typ is not dpop+jwt")]
    WrongType,
    #[error("the DPoP proof's algorithm is not an allowed asymmetric one")]
    AlgorithmNotAllowed,
    #[error("the DPoP proof has critical header parameters")]
    CriticalHeader,
    #[error("the DPoP proof's jwk is missing, private, or not a usable public key for its alg")]
    BadKey,
    #[error("the DPoP proof's signature does not verify with its jwk")]
    BadSignature,
    #[error("the DPoP proof lacks jti, htm, htu or iat")]
    MissingClaim,
    #[error("the DPoP proof's htm is not this request's method")]
    WrongMethod,
    #[error("the DPoP proof's htu is not this request's URL")]
    WrongUrl,
    #[error("the DPoP proof's iat is too old or in the future")]
    Stale,
    #[error("the DPoP proof has no ath for the access token")]
    MissingAth,
    #[error("the DPoP proof's ath does not match the access token")]
    WrongAth,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// The longest `jti` kept: RFC 9449 §4.2 asks for at least 96 bits of randomness, not more.
const MAX_JTI_LEN: usize = 256;

/// Verifies a DPoP proof (RFC 9449 §4.3 checks 2–12, without the replay and nonce lookups).
pub fn verify_proof(proof: &str, rules: ProofRules<'_>) -> Result<DpopProof, DpopError> {
    let parts = jws::split(proof).map_err(|_| DpopError::Malformed)?;
    let header_json = URL_SAFE_NO_PAD.decode(parts.header).map_err(|_| DpopError::Malformed)?;
    let header: Map<String, Value> =
        serde_json::from_slice(&header_json).map_err(|_| DpopError::Malformed)?;
    let text = |name: &str| header.get(name).and_then(Value::as_str);
    // Check 4: the type.
    if !text("typ").is_some_and(|t| t.eq_ignore_ascii_case(DPOP_TYP)) {
        return Err(DpopError::WrongType);
    }
    if header.contains_key("crit") {
        return Err(DpopError::CriticalHeader);
    }
    // Check 5: an asymmetric algorithm of the allow-list (`none` and HMAC are not on it).
    let alg = text("alg").and_then(Algorithm::parse).ok_or(DpopError::AlgorithmNotAllowed)?;
    // Check 6: `jwk` is a public key; the signature verifies with it (check 7).
    let mut jwk = header.get("jwk").and_then(Value::as_object).cloned().ok_or(DpopError::BadKey)?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(DpopError::BadKey);
    }
    // The key's algorithm is the header's, which must fit the key's type and curve.
    jwk.entry("alg").or_insert_with(|| alg.as_str().into());
    let key = public_key(&jwk).map_err(|_| DpopError::BadKey)?;
    if key.alg() != alg {
        return Err(DpopError::BadKey);
    }
    jws::check_signature(&key, &parts).map_err(|_| DpopError::BadSignature)?;
    let claims: ProofClaims = jws::decode_payload(&parts).map_err(|_| DpopError::Malformed)?;
    let (Some(jti), Some(htm), Some(htu), Some(iat)) =
        (claims.jti, claims.htm, claims.htu, claims.iat)
    else {
        return Err(DpopError::MissingClaim);
    };
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(DpopError::MissingClaim);
    }
    // Check 8: `htm` is the method.
    if htm != rules.method {
        return Err(DpopError::WrongMethod);
    }
    // Check 9: `htu` is the URL, without query and fragment, scheme and host normalised.
    if normalised_url(&htu).is_none() || normalised_url(&htu) != normalised_url(rules.url) {
        return Err(DpopError::WrongUrl);
    }
    // Check 11: `iat` within the acceptable window.
    if iat < rules.now - rules.max_age || iat > rules.now + rules.leeway {
        return Err(DpopError::Stale);
    }
    // Check 12 (at a resource): `ath` is the SHA-256 of the access token.
    if let Some(token) = rules.access_token {
        let ath = claims.ath.ok_or(DpopError::MissingAth)?;
        if ath != URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes())) {
            return Err(DpopError::WrongAth);
        }
    }
    Ok(DpopProof { jkt: thumbprint(&jwk).ok_or(DpopError::BadKey)?, jti, iat, nonce: claims.nonce })
}

/// RFC 9449 §4.3 check 9 and RFC 3986 §6.2.2–6.2.3: scheme and host compared without case,
/// default ports dropped, dot-segments resolved; query and fragment left out.
fn normalised_url(raw: &str) -> Option<String> {
    let mut url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "https" | "http") {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

/// The RFC 7638 JWK SHA-256 thumbprint: the required members of the key's type, in
/// lexicographic order, as JSON without whitespace, hashed and base64url-encoded.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let required: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut members = BTreeMap::new();
    for name in required {
        members.insert(*name, jwk.get(*name)?.as_str()?);
    }
    let json = serde_json::to_string(&members).ok()?;
    Some(URL_SAFE_NO_PAD.encode(digest(&SHA256, json.as_bytes())))
}

/// RFC 9449 §4.2 `ath`: the base64url SHA-256 of an access token.
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_keys::TestKey;

    const URL: &str = "https://auth.example/token";
    const NOW: i64 = 1_700_000_000;

    fn rules() -> ProofRules<'static> {
        ProofRules {
            method: "POST",
            url: URL,
            now: NOW,
            max_age: 300,
            leeway: 5,
            access_token: None,
        }
    }

    fn proof_with(key: &TestKey, header: Value, claims: Value) -> String {
        key.sign_with_header(&header, &claims)
    }

    fn public_jwk(key: &TestKey) -> Value {
        let mut jwk = key.jwk();
        let map = jwk.as_object_mut().unwrap();
        map.remove("kid");
        map.remove("use");
        jwk
    }

    fn proof(key: &TestKey, claims: Value) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": key.alg.as_str(), "jwk": public_jwk(key)});
        proof_with(key, header, claims)
    }

    fn claims() -> Value {
        json!({"jti": "e1j3V_bKic8-LAEB", "htm": "POST", "htu": URL, "iat": NOW})
    }

    #[test]
    fn rfc9449_4_3_a_valid_proof_yields_its_keys_rfc7638_thumbprint() {
        for key in TestKey::all() {
            let got = verify_proof(&proof(&key, claims()), rules()).unwrap();
            let jwk = public_jwk(&key);
            assert_eq!(got.jkt, thumbprint(jwk.as_object().unwrap()).unwrap());
            assert_eq!(got.jti, "e1j3V_bKic8-LAEB");
        }
    }

    #[test]
    fn rfc7638_3_1_thumbprint_of_the_rfcs_example_key() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
        });
        let got = thumbprint(jwk.as_object().unwrap()).unwrap();
        assert_eq!(got, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn rfc9449_4_3_wrong_htm_or_htu_is_refused() {
        let key = TestKey::es256("k");
        let mut c = claims();
        c["htm"] = "GET".into();
        assert_eq!(verify_proof(&proof(&key, c), rules()), Err(DpopError::WrongMethod));
        let mut c = claims();
        c["htu"] = "https://auth.example/introspect".into();
        assert_eq!(verify_proof(&proof(&key, c), rules()), Err(DpopError::WrongUrl));
        // §4.3 check 9: query and fragment ignored; scheme and host compared without case.
        let mut c = claims();
        c["htu"] = "HTTPS://Auth.Example:443/token?x=1#f".into();
        assert!(verify_proof(&proof(&key, c), rules()).is_ok());
    }

    #[test]
    fn rfc9449_4_3_stale_or_future_iat_is_refused() {
        let key = TestKey::es256("k");
        for iat in [NOW - 301, NOW + 6] {
            let mut c = claims();
            c["iat"] = iat.into();
            assert_eq!(verify_proof(&proof(&key, c), rules()), Err(DpopError::Stale), "{iat}");
        }
    }

    #[test]
    fn rfc9449_7_missing_or_wrong_ath_is_refused_at_a_resource() {
        let key = TestKey::es256("k");
        let at_resource = ProofRules { access_token: Some("the-token"), ..rules() };
        assert_eq!(verify_proof(&proof(&key, claims()), at_resource), Err(DpopError::MissingAth));
        let mut c = claims();
        c["ath"] = access_token_hash("another-token").into();
        assert_eq!(verify_proof(&proof(&key, c), at_resource), Err(DpopError::WrongAth));
        let mut c = claims();
        c["ath"] = access_token_hash("the-token").into();
        assert!(verify_proof(&proof(&key, c), at_resource).is_ok());
    }

    #[test]
    fn rfc9449_4_3_wrong_typ_alg_key_or_signature_is_refused() {
        let key = TestKey::es256("k");
        let other = TestKey::es256("o");
        let header = |typ: &str, alg: &str, jwk: Value| json!({"typ": typ, "alg": alg, "jwk": jwk});
        let jwk = public_jwk(&key);
        let cases = [
            (header("JWT", "ES256", jwk.clone()), DpopError::WrongType),
            (header("dpop+jwt", "HS256", jwk.clone()), DpopError::AlgorithmNotAllowed),
            (header("dpop+jwt", "none", jwk.clone()), DpopError::AlgorithmNotAllowed),
            (header("dpop+jwt", "RS256", jwk.clone()), DpopError::BadKey),
            (
                header("dpop+jwt", "ES256", json!({"kty": "oct", "k": "c2VjcmV0"})),
                DpopError::BadKey,
            ),
            (header("dpop+jwt", "ES256", public_jwk(&other)), DpopError::BadSignature),
        ];
        for (h, want) in cases {
            assert_eq!(
                verify_proof(&proof_with(&key, h.clone(), claims()), rules()),
                Err(want),
                "{h}"
            );
        }
        let mut private = jwk.clone();
        private["d"] = "AAAA".into();
        let h = header("dpop+jwt", "ES256", private);
        assert_eq!(verify_proof(&proof_with(&key, h, claims()), rules()), Err(DpopError::BadKey));
        let mut c = claims();
        c.as_object_mut().unwrap().remove("jti");
        assert_eq!(verify_proof(&proof(&key, c), rules()), Err(DpopError::MissingClaim));
        assert_eq!(verify_proof("not.a.jwt", rules()), Err(DpopError::Malformed));
    }
}
