//! Public JWK sets (RFC 7517 §5), validated once when they are read.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};

use crate::alg::Algorithm;

/// Members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC
/// 8037 §2): a public JWKS that carries one has leaked a secret, and is refused whole.
pub(crate) const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The smallest RSA modulus accepted (RFC 7518 §3.3: 2048 bits or larger).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Why a JWK set is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("the JWKS is not a JSON object with a `keys` array")]
    NotAJwks,
    #[error("the JWKS has no usable key")]
    NoKeys,
    #[error("a key of the JWKS carries the private member `{0}`")]
    PrivateMember(&'static str),
    #[error("the JWKS must hold public keys, not symmetric ones")]
    Symmetric,
    #[error("two keys of the JWKS share the kid `{0}`")]
    DuplicateKid(String),
    #[error("a key of the JWKS is unusable: {0}")]
    Unusable(&'static str),
}

/// One public key, ready to verify: its algorithm is fixed here, from the key, so a token's
/// header can only agree with it, never choose it (RFC 8725 §3.1).
pub struct PublicKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
    /// RFC 7638: how a key is recognised outside a JWS (an RFC 8705 §2.2 self-signed
    /// certificate's key among a client's registered ones).
    thumbprint: Option<String>,
}

impl PublicKey {
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The RFC 7638 SHA-256 thumbprint of the key.
    pub fn thumbprint(&self) -> Option<&str> {
        self.thumbprint.as_deref()
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").field("kid", &self.kid).field("alg", &self.alg).finish()
    }
}

/// A validated set of public signature keys.
#[derive(Debug)]
pub struct Jwks {
    keys: Vec<PublicKey>,
}

/// What to do with a well-formed public key this crate cannot verify with (an encryption key,
/// an algorithm off the allow-list, an unknown key type).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unusable {
    Refuse,
    Skip,
}

impl Jwks {
    /// A set with no key, under which every token is refused (an issuer with no published key
    /// yet).
    pub fn empty() -> Self {
        Self { keys: Vec::new() }
    }

    /// Parses a JWKS in which every key must be usable: a client's registered keys, our own.
    pub fn parse(json: &str) -> Result<Self, JwksError> {
        Self::parse_with(json, Unusable::Refuse)
    }

    /// Parses an issuer's published JWKS, skipping keys that cannot verify signatures here
    /// (`use` = `enc`, unknown `kty`, algorithms off the allow-list); private members,
    /// symmetric keys and duplicate `kid`s still refuse the whole set.
    pub fn parse_signing_keys(json: &str) -> Result<Self, JwksError> {
        Self::parse_with(json, Unusable::Skip)
    }

    fn parse_with(json: &str, unusable: Unusable) -> Result<Self, JwksError> {
        let doc: Value = serde_json::from_str(json).map_err(|_| JwksError::NotAJwks)?;
        let raw_keys = doc.get("keys").and_then(Value::as_array).ok_or(JwksError::NotAJwks)?;
        let mut keys = Vec::with_capacity(raw_keys.len());
        let mut kids = HashSet::new();
        for raw in raw_keys {
            let jwk = raw.as_object().ok_or(JwksError::NotAJwks)?;
            if let Some(member) = PRIVATE_MEMBERS.into_iter().find(|m| jwk.contains_key(*m)) {
                return Err(JwksError::PrivateMember(member));
            }
            if jwk.get("kty").and_then(Value::as_str) == Some("oct") {
                return Err(JwksError::Symmetric);
            }
            if let Some(kid) = jwk.get("kid").and_then(Value::as_str)
                && !kids.insert(kid)
            {
                return Err(JwksError::DuplicateKid(kid.to_owned()));
            }
            match public_key(jwk) {
                Ok(key) => keys.push(key),
                Err(reason) if unusable == Unusable::Refuse => {
                    return Err(JwksError::Unusable(reason));
                }
                Err(_) => {}
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoKeys);
        }
        Ok(Self { keys })
    }

    /// The key named `kid`.
    pub fn find(&self, kid: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }

    /// The keys, in document order.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
}

/// One JWK as a [`PublicKey`], or why it cannot verify signatures here.
pub(crate) fn public_key(jwk: &Map<String, Value>) -> Result<PublicKey, &'static str> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    if text("use").is_some_and(|u| u != "sig") {
        return Err("its `use` is not `sig`");
    }
    let declared = match jwk.get("alg") {
        None => None,
        Some(alg) => {
            Some(alg.as_str().and_then(Algorithm::parse).ok_or("its `alg` is not an allowed one")?)
        }
    };
    let member = |name: &str| text(name).ok_or("a member of its key type is missing");
    let bytes = |name: &str| {
        member(name)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).map_err(|_| "a member is not base64url"))
    };
    // The algorithm comes from the key: declared, or the only one its type allows. An RSA key
    // without `alg` is taken as RS256, the algorithm OpenID Connect assumes (Core §15.1).
    let (alg, key) = match text("kty") {
        Some("RSA") => {
            let alg = declared.unwrap_or(Algorithm::RS256);
            if !matches!(
                alg,
                Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256
            ) {
                return Err("its `alg` does not fit an RSA key");
            }
            let n = bytes("n")?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return Err("its RSA modulus is shorter than 2048 bits");
            }
            let key = DecodingKey::from_rsa_components(member("n")?, member("e")?)
                .map_err(|_| "its RSA members are invalid")?;
            (alg, key)
        }
        Some("EC") => {
            let (alg, size) = match text("crv") {
                Some("P-256") => (Algorithm::ES256, 32),
                Some("P-384") => (Algorithm::ES384, 48),
                _ => return Err("its curve is not P-256 or P-384"),
            };
            if declared.is_some_and(|d| d != alg) {
                return Err("its `alg` does not fit its curve");
            }
            if bytes("x")?.len() != size || bytes("y")?.len() != size {
                return Err("its coordinates do not fit its curve");
            }
            let key = DecodingKey::from_ec_components(member("x")?, member("y")?)
                .map_err(|_| "its EC members are invalid")?;
            (alg, key)
        }
        Some("OKP") => {
            if text("crv") != Some("Ed25519") {
                return Err("its curve is not Ed25519");
            }
            if declared.is_some_and(|d| d != Algorithm::EdDSA) {
                return Err("its `alg` does not fit an Ed25519 key");
            }
            if bytes("x")?.len() != 32 {
                return Err("its public key is not 32 bytes");
            }
            let key = DecodingKey::from_ed_components(member("x")?)
                .map_err(|_| "its OKP members are invalid")?;
            (Algorithm::EdDSA, key)
        }
        _ => return Err("its key type is not RSA, EC or OKP"),
    };
    let thumbprint = crate::dpop::thumbprint(jwk);
    Ok(PublicKey { kid: text("kid").map(str::to_owned), alg, key, thumbprint })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_keys::TestKey;

    fn set_of(keys: &[serde_json::Value]) -> String {
        serde_json::json!({ "keys": keys }).to_string()
    }

    #[test]
    fn rfc7517_5_a_public_jwks_of_every_allowed_key_type_parses() {
        let keys: Vec<_> = TestKey::all().iter().map(TestKey::jwk).collect();
        let jwks = Jwks::parse(&set_of(&keys)).unwrap();
        assert_eq!(jwks.keys().len(), 3);
        for key in TestKey::all() {
            assert_eq!(jwks.find(&key.kid).unwrap().alg(), key.alg);
        }
    }

    #[test]
    fn rfc7517_a_public_jwks_with_a_private_member_is_refused() {
        for member in PRIVATE_MEMBERS {
            let mut jwk = TestKey::es256("k").jwk();
            jwk[member] = "AQAB".into();
            assert_eq!(Jwks::parse(&set_of(&[jwk])).unwrap_err(), JwksError::PrivateMember(member));
        }
    }

    #[test]
    fn rfc8725_3_1_symmetric_keys_are_refused_even_where_unusable_keys_are_skipped() {
        let oct = serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"});
        let es = TestKey::es256("k").jwk();
        for parse in [Jwks::parse, Jwks::parse_signing_keys] {
            // `k` is a private member; without it, the key type alone refuses the set.
            assert!(parse(&set_of(&[es.clone(), oct.clone()])).is_err());
            let bare = serde_json::json!({"kty": "oct", "alg": "HS256"});
            assert_eq!(parse(&set_of(&[es.clone(), bare])).unwrap_err(), JwksError::Symmetric);
        }
    }

    #[test]
    fn rfc7517_4_5_duplicate_kids_are_refused() {
        let a = TestKey::es256("same").jwk();
        let b = TestKey::ed25519("same").jwk();
        assert_eq!(
            Jwks::parse(&set_of(&[a, b])).unwrap_err(),
            JwksError::DuplicateKid("same".into())
        );
    }

    #[test]
    fn rfc8725_3_1_a_key_whose_alg_is_off_the_allow_list_or_its_type_is_refused() {
        let cases = [
            ("alg", "HS256".into()),
            ("alg", "none".into()),
            ("alg", "ES384".into()),
            ("crv", "P-521".into()),
            ("use", "enc".into()),
            ("kty", "XYZ".into()),
        ];
        for (member, value) in cases {
            let mut jwk = TestKey::es256("k").jwk();
            jwk[member] = value;
            assert!(matches!(Jwks::parse(&set_of(&[jwk.clone()])), Err(JwksError::Unusable(_))));
            // An issuer's JWKS may publish keys this crate does not use: they are skipped.
            let other = TestKey::ed25519("ok").jwk();
            let jwks = Jwks::parse_signing_keys(&set_of(&[jwk, other])).unwrap();
            assert_eq!(jwks.keys().len(), 1);
        }
        assert_eq!(Jwks::parse_signing_keys(&set_of(&[])).unwrap_err(), JwksError::NoKeys);
        assert_eq!(Jwks::parse("[]").unwrap_err(), JwksError::NotAJwks);
        assert_eq!(Jwks::parse("not json").unwrap_err(), JwksError::NotAJwks);
    }

    #[test]
    fn the_algorithm_of_a_key_without_alg_follows_from_its_type() {
        for key in TestKey::all() {
            let mut jwk = key.jwk();
            jwk.as_object_mut().unwrap().remove("alg");
            assert_eq!(Jwks::parse(&set_of(&[jwk])).unwrap().keys()[0].alg(), key.alg);
        }
    }
}
