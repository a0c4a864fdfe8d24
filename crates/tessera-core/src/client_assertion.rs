//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9): the client
//! signs a short-lived JWT with a key whose public half it registered. The signature is
//! checked by `tessera-jose` (asymmetric algorithms only, the key's algorithm, never the
//! header's); the claims by the rules below.

use serde::Deserialize;
use tessera_jose::jws::verify_jws;
use tessera_jose::{Jwks, Typ, VerifyError};

use crate::client::Client;
use crate::error::Error;

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT assertion.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest lifetime accepted for an assertion: it is a one-time proof, not a credential.
pub const MAX_ASSERTION_LIFETIME: i64 = 300;

/// Leeway for clocks that run a little apart.
const CLOCK_SKEW: i64 = 30;

/// The algorithms an assertion may be signed with, for metadata
/// (`token_endpoint_auth_signing_alg_values_supported`).
pub const ALLOWED_NAMES: [&str; 7] = tessera_jose::Algorithm::NAMES;

/// Why an assertion is refused. Each is `invalid_client` on the wire; [`Self::UnknownKey`] is
/// told apart because the server then fetches a `jwks_uri` again once (the client may have
/// rotated its keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssertionError {
    /// The assertion's `kid` is not among the client's keys.
    UnknownKey,
    /// Any other reason, described for `error_description`.
    Refused(&'static str),
}

impl AssertionError {
    pub fn reason(self) -> &'static str {
        match self {
            Self::UnknownKey => "the assertion's key is not registered",
            Self::Refused(reason) => reason,
        }
    }
}

impl From<AssertionError> for Error {
    fn from(e: AssertionError) -> Self {
        Error::ClientAssertionRefused(e.reason())
    }
}

/// Proof that a client assertion verified for one client; its `jti` must still be checked for
/// replay. Only [`verify`] makes one.
#[derive(Debug)]
pub struct AssertionVerified {
    client_id: String,
    jti: String,
    expires_at: i64,
}

impl AssertionVerified {
    /// The client the assertion authenticates (its `iss` and `sub`).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// When the assertion stops being acceptable: its `jti` must be remembered until then.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    /// Read as any JSON value, to tell an array (refused) from a missing member.
    #[serde(default)]
    aud: Option<serde_json::Value>,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    jti: String,
}

const CLAIMS_INVALID: &str = "the assertion's signature, audience or claims are invalid";

fn refused(reason: &'static str) -> AssertionError {
    AssertionError::Refused(reason)
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

/// Verifies a client assertion (RFC 7523 §3): signed by one of the client's keys with that
/// key's algorithm, `iss` and `sub` the client_id, `aud` exactly `issuer` as a single string,
/// `exp` present, in the future and at most [`MAX_ASSERTION_LIFETIME`] away, `jti` present.
pub fn verify(
    assertion: &str,
    client: &Client,
    jwks: &Jwks,
    issuer: &str,
    now: i64,
) -> Result<AssertionVerified, AssertionError> {
    // RFC 7523 does not type assertions, so any `typ` is accepted.
    let claims: AssertionClaims = verify_jws(jwks, assertion, Typ::Any).map_err(|e| match e {
        VerifyError::UnknownKey => AssertionError::UnknownKey,
        VerifyError::Malformed => refused("the assertion is malformed"),
        VerifyError::AlgorithmNotAllowed => refused("the assertion's algorithm is not allowed"),
        VerifyError::AlgorithmMismatch => {
            refused("the assertion's algorithm differs from its key's")
        }
        VerifyError::NoKey => refused("the assertion names no key and the client has several"),
        VerifyError::CriticalHeader => refused("the assertion has critical header parameters"),
        _ => refused(CLAIMS_INVALID),
    })?;
    // RFC 7523 §3 item 3, narrowed after the 2025 audience-injection disclosure
    // (draft-ietf-oauth-rfc7523bis §4): the audience is the issuer identifier, as a single
    // string. An endpoint URL or an array would let an assertion minted for one server (or one
    // of its endpoints) be replayed at another that shares the name in its list.
    match claims.aud {
        None => return Err(refused(CLAIMS_INVALID)),
        Some(serde_json::Value::String(aud)) if aud == issuer => {}
        Some(_) => {
            return Err(refused(
                "the assertion's aud must be the issuer identifier, as one string",
            ));
        }
    }
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
    Ok(AssertionVerified {
        client_id: claims.sub,
        jti: claims.jti,
        expires_at: claims.exp + CLOCK_SKEW,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::client::{AuthMethod, ClientRegistration};
    use crate::client_id::ClientId;
    use crate::keys::{KeyEncryptionKey, KeySet, SigningAlg, generate_key};

    const ISSUER: &str = "https://issuer.example";
    const NOW: i64 = 1_000;

    /// A client `pkjwt` and a key pair whose public half is its JWKS.
    fn client_and_keys() -> (Client, KeySet, Jwks) {
        let kek = KeyEncryptionKey::from_encoded(&KeyEncryptionKey::generate_encoded()).unwrap();
        let keys =
            KeySet::load(&[generate_key(SigningAlg::ES256, &kek, 0, 0).unwrap()], &kek).unwrap();
        let jwks = Jwks::parse(keys.jwks_json()).unwrap();
        let (client, _) = ClientRegistration {
            client_id: Some(ClientId::parse("pkjwt").unwrap()),
            client_name: "pkjwt".into(),
            auth_method: Some(AuthMethod::PrivateKeyJwt),
            jwks: Some(keys.jwks_json().to_owned()),
            ..Default::default()
        }
        .into_client(0)
        .unwrap();
        (client, keys, jwks)
    }

    fn assertion(keys: &KeySet, aud: Value) -> String {
        let claims = json!({
            "iss": "pkjwt", "sub": "pkjwt", "aud": aud, "iat": NOW, "exp": NOW + 60, "jti": "j",
        });
        keys.signer(SigningAlg::ES256, NOW).unwrap().sign_jwt("JWT", &claims).unwrap()
    }

    /// RFC 7523 §3 item 3 as narrowed by draft-ietf-oauth-rfc7523bis §4 (the 2025
    /// audience-injection disclosure): `aud` is the issuer identifier, one string.
    #[test]
    fn rfc7523bis_4_client_assertion_aud_must_be_the_issuer_as_a_single_string() {
        let (client, keys, jwks) = client_and_keys();
        let verified = verify(&assertion(&keys, ISSUER.into()), &client, &jwks, ISSUER, NOW);
        let verified = verified.unwrap();
        assert_eq!((verified.client_id(), verified.jti()), ("pkjwt", "j"));
        let only_issuer = "the assertion's aud must be the issuer identifier, as one string";
        for aud in [
            json!([ISSUER]),
            json!([ISSUER, "https://other.example"]),
            json!(format!("{ISSUER}/token")),
            json!("https://other.example"),
            json!(1),
        ] {
            let refused = verify(&assertion(&keys, aud.clone()), &client, &jwks, ISSUER, NOW);
            assert_eq!(refused.unwrap_err(), AssertionError::Refused(only_issuer), "{aud}");
        }
    }

    #[test]
    fn rfc7523_3_an_unknown_kid_is_a_typed_error_the_server_can_refetch_on() {
        let (client, keys, _) = client_and_keys();
        let (_, _, other_jwks) = client_and_keys();
        let refused = verify(&assertion(&keys, ISSUER.into()), &client, &other_jwks, ISSUER, NOW);
        assert_eq!(refused.unwrap_err(), AssertionError::UnknownKey);
    }
}
