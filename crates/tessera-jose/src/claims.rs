//! Typed JWT claims: the RFC 9068 access-token profile, OpenID Connect ID tokens, and the
//! registered claims every verified token has.

use std::fmt;

use serde::{Deserialize, Serialize};

use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};

/// The registered claims the verifier checks on every token (RFC 7519 §4.1).
pub trait Claims: DeserializeOwned {
    fn iss(&self) -> &str;
    fn exp(&self) -> i64;
    fn nbf(&self) -> Option<i64> {
        None
    }
}

/// `aud` (RFC 7519 §4.1.3): one string or an array of strings on the wire, a list here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audience(Vec<String>);

impl Audience {
    pub fn contains(&self, audience: &str) -> bool {
        self.0.iter().any(|a| a == audience)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AudienceVisitor;
        impl<'de> Visitor<'de> for AudienceVisitor {
            type Value = Audience;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience(vec![v.to_owned()]))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Audience, E> {
                Ok(Audience(vec![v]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut all = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(one) = seq.next_element::<String>()? {
                    all.push(one);
                }
                Ok(Audience(all))
            }
        }
        deserializer.deserialize_any(AudienceVisitor)
    }
}

/// `scope` (RFC 9068 §2.2.3, RFC 8693 §4.2): scope tokens separated by single spaces, each
/// `1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3). Kept as the validated string, which is
/// what introspection reports, and read as a set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(String);

impl Scopes {
    /// Parses a `scope` value; `None` if a token is empty or has a character §3.3 forbids.
    pub fn parse(raw: String) -> Option<Self> {
        let token_ok = |t: &str| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        };
        (raw.is_empty() || raw.split(' ').all(token_ok)).then_some(Self(raw))
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.iter().any(|s| s == scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|s| !s.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Scopes::parse(raw).ok_or_else(|| de::Error::custom("scope has an invalid scope token"))
    }
}

/// `cnf` (RFC 7800 §3.1): the key a sender-constrained token is bound to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Confirmation {
    /// RFC 9449 §6.1: the JWK SHA-256 thumbprint (RFC 7638) of the DPoP key.
    #[serde(default)]
    pub jkt: Option<String>,
    /// RFC 8705 §3.1: the SHA-256 thumbprint of the client's TLS certificate.
    #[serde(default, rename = "x5t#S256")]
    pub x5t_s256: Option<String>,
}

/// `act` (RFC 8693 §4.1): who acts on behalf of the subject; a nested `act` is the actor
/// before it (the chain of delegation, most recent outermost). Also the shape of `may_act`
/// (§4.4), which names who may become the actor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// How many actors the chain names (this one and every nested `act`).
    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |a| a.depth())
    }
}

/// An RFC 9068 JWT access token's claims (§2.2).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
    pub jti: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: Scopes,
    /// §2.2.1: when the user authenticated, for tokens of a user grant.
    #[serde(default)]
    pub auth_time: Option<i64>,
    #[serde(default)]
    pub cnf: Option<Confirmation>,
    #[serde(default)]
    pub act: Option<Actor>,
    /// RFC 8693 §4.4: who may act for the subject in a token exchange.
    #[serde(default)]
    pub may_act: Option<Actor>,
}

impl Claims for AccessTokenClaims {
    fn iss(&self) -> &str {
        &self.iss
    }
    fn exp(&self) -> i64 {
        self.exp
    }
    fn nbf(&self) -> Option<i64> {
        self.nbf
    }
}

/// An OpenID Connect ID token's claims (Core §2).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub azp: Option<String>,
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// §3.1.3.6: the access token's hash, binding the two.
    #[serde(default)]
    pub at_hash: Option<String>,
    /// OIDC Front/Back-Channel Logout: the session the token belongs to.
    #[serde(default)]
    pub sid: Option<String>,
}

impl Claims for IdTokenClaims {
    fn iss(&self) -> &str {
        &self.iss
    }
    fn exp(&self) -> i64 {
        self.exp
    }
}

/// Only the registered claims every verified token must have (`iss`, `exp`; `nbf` if given),
/// for tokens of other issuers whose other claims are not ours to require.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct BasicClaims {
    pub iss: String,
    pub exp: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
}

impl Claims for BasicClaims {
    fn iss(&self) -> &str {
        &self.iss
    }
    fn exp(&self) -> i64 {
        self.exp
    }
    fn nbf(&self) -> Option<i64> {
        self.nbf
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn access(extra: serde_json::Value) -> Result<AccessTokenClaims, serde_json::Error> {
        let mut claims = json!({
            "iss": "https://i", "sub": "u", "aud": "https://api", "exp": 100, "iat": 10,
            "jti": "j", "client_id": "c", "scope": "openid orders:read",
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        serde_json::from_value(claims)
    }

    #[test]
    fn rfc7519_4_1_3_aud_is_a_list_whether_one_string_or_an_array() {
        assert_eq!(access(json!({})).unwrap().aud.as_slice(), ["https://api"]);
        let many = access(json!({"aud": ["a", "b"]})).unwrap().aud;
        assert!(many.contains("a") && many.contains("b") && !many.contains("c"));
        assert!(access(json!({"aud": 1})).is_err());
        assert!(access(json!({"aud": [1]})).is_err());
    }

    #[test]
    fn rfc9068_2_2_required_claims_must_be_present() {
        for required in ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"] {
            let mut claims = serde_json::to_value(json!({
                "iss": "https://i", "sub": "u", "aud": "https://api", "exp": 100, "iat": 10,
                "jti": "j", "client_id": "c",
            }))
            .unwrap();
            claims.as_object_mut().unwrap().remove(required);
            assert!(serde_json::from_value::<AccessTokenClaims>(claims).is_err(), "{required}");
        }
    }

    #[test]
    fn rfc6749_3_3_scope_is_a_set_of_valid_scope_tokens() {
        let scope = access(json!({})).unwrap().scope;
        assert!(
            scope.contains("openid") && scope.contains("orders:read") && !scope.contains("orders")
        );
        assert_eq!(scope.iter().collect::<Vec<_>>(), ["openid", "orders:read"]);
        assert!(access(json!({"scope": ""})).unwrap().scope.is_empty());
        for bad in ["a  b", " a", "a ", "a\"b", "a\\b", "é"] {
            assert!(access(json!({"scope": bad})).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc7800_cnf_and_rfc8693_act_are_typed_when_present() {
        let claims = access(json!({
            "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"},
            "act": {"sub": "admin", "iss": "https://i", "act": {"sub": "service"}},
        }))
        .unwrap();
        let cnf = claims.cnf.unwrap();
        assert_eq!(cnf.jkt.as_deref(), Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
        assert_eq!(cnf.x5t_s256.as_deref(), Some("bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"));
        let act = claims.act.unwrap();
        assert_eq!(act.sub, "admin");
        assert_eq!(act.act.unwrap().sub, "service");
        let plain = access(json!({})).unwrap();
        assert_eq!((plain.cnf, plain.act), (None, None));
        let may = access(json!({"may_act": {"sub": "svc"}})).unwrap().may_act.unwrap();
        assert_eq!((may.sub.as_str(), may.depth()), ("svc", 1));
        let act = access(json!({"act": {"sub": "b", "act": {"sub": "a"}}})).unwrap().act.unwrap();
        assert_eq!(act.depth(), 2);
        assert_eq!(
            serde_json::to_value(&act).unwrap(),
            json!({"sub": "b", "act": {"sub": "a"}}),
            "absent members are not written"
        );
    }
}
