//! The verified identity as the upstream receives it: `X-Tessera-Sub`, `X-Tessera-Client-Id`,
//! `X-Tessera-Scope`, and optionally `X-Tessera-Identity`, a short-lived JWT signed by the
//! gateway's own key (published at the gateway's `/.well-known/jwks.json`).
//!
//! The key is made at start and lives in memory only: an upstream that sees a new `kid`
//! after a restart fetches the JWKS again, and a stolen identity JWT is worthless within
//! its lifetime (at most 5 minutes). The signing code is `tessera-core`'s (`keys`), the same
//! that signs Tessera's access tokens.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::HeaderValue;
use serde::Serialize;
use tessera_core::keys::{KeyEncryptionKey, KeySet, SigningAlg, generate_key};
use tessera_resource::Principal;

use crate::headers;

/// The identity a request was let through with (none on an anonymous route): the validator's
/// `Principal` itself, read in place rather than copied field by field on every request.
#[derive(Clone, Debug)]
pub struct Identity(Principal);

impl Identity {
    pub fn new(principal: Principal) -> Self {
        Self(principal)
    }

    /// The issuer that authenticated the caller.
    pub fn issuer(&self) -> &str {
        self.0.issuer()
    }

    pub fn subject(&self) -> &str {
        self.0.subject()
    }

    pub fn client_id(&self) -> &str {
        self.0.client_id()
    }

    /// The token's scopes, space-separated.
    pub fn scope(&self) -> &str {
        self.0.scopes().as_str()
    }

    pub fn jti(&self) -> Option<&str> {
        self.0.jti()
    }
}

/// The gateway's own signing key, and its JWKS.
pub struct IdentitySigner {
    keys: KeySet,
    /// The `iss` of the JWTs: the gateway's public URL.
    issuer: String,
    lifetime: Duration,
}

/// The signer could not be made (the key generation failed).
#[derive(Debug, thiserror::Error)]
#[error("cannot make the gateway's identity key: {0}")]
pub struct SignerError(String);

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[derive(Serialize)]
struct IdentityClaims<'a> {
    iss: &'a str,
    /// The upstream the JWT is for (RFC 7519 §4.1.3): a JWT meant for one upstream is not
    /// accepted by another that checks its own audience.
    aud: &'a str,
    sub: &'a str,
    client_id: &'a str,
    scope: &'a str,
    /// The issuer that authenticated the caller.
    token_issuer: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

impl IdentitySigner {
    pub fn new(issuer: String, lifetime: Duration) -> Result<Self, SignerError> {
        // The key is sealed only to go through KeySet's one loading path; the sealing key
        // is thrown away with this frame.
        let kek = KeyEncryptionKey::from_encoded(&KeyEncryptionKey::generate_encoded())
            .map_err(SignerError)?;
        let now = now();
        let stored = generate_key(SigningAlg::ES256, &kek, now, now)
            .map_err(|e| SignerError(e.to_string()))?;
        let keys = KeySet::load(&[stored], &kek).map_err(SignerError)?;
        Ok(Self { keys, issuer, lifetime })
    }

    /// The JWKS document (RFC 7517 §5) upstreams verify with.
    pub fn jwks_json(&self) -> &str {
        self.keys.jwks_json()
    }

    /// A JWT of `identity` for `audience`, `None` if signing failed (logged).
    pub fn sign(&self, identity: &Identity, audience: &str) -> Option<String> {
        self.sign_claims(Who {
            sub: identity.subject(),
            client_id: identity.client_id(),
            scope: identity.scope(),
            token_issuer: identity.issuer(),
            audience,
        })
    }

    fn sign_claims(&self, who: Who<'_>) -> Option<String> {
        let now = now();
        let key = self.keys.signer(SigningAlg::ES256, now)?;
        let claims = IdentityClaims {
            iss: &self.issuer,
            aud: who.audience,
            sub: who.sub,
            client_id: who.client_id,
            scope: who.scope,
            token_issuer: who.token_issuer,
            iat: now,
            exp: now + self.lifetime.as_secs() as i64,
            jti: tessera_core::secret::random_id::<12>(),
        };
        match key.sign_jwt("tessera-identity+jwt", &claims) {
            Ok(jwt) => Some(jwt),
            Err(e) => {
                tracing::error!(error = %e, "signing the identity JWT failed");
                None
            }
        }
    }
}

/// Whom an identity JWT describes, and for which upstream.
struct Who<'a> {
    sub: &'a str,
    client_id: &'a str,
    scope: &'a str,
    token_issuer: &'a str,
    audience: &'a str,
}

/// Sets the identity headers (after the client's were stripped). A value that cannot be a
/// header (control characters in a `sub`) is left out rather than forwarded altered.
pub fn set_identity_headers(
    out: &mut HeaderMap,
    identity: &Identity,
    signer: Option<&IdentitySigner>,
    audience: &str,
) {
    let mut set = |name, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.insert(name, value);
        }
    };
    set(headers::SUBJECT, identity.subject());
    set(headers::CLIENT_ID, identity.client_id());
    set(headers::SCOPE, identity.scope());
    if let Some(jwt) = signer.and_then(|s| s.sign(identity, audience)) {
        set(headers::IDENTITY_JWT, &jwt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use tessera_jose::{BasicClaims, Expiry, Jwks, Typ, Verifier};

    #[test]
    fn identity_jwt_verifies_with_the_published_jwks() {
        let signer =
            IdentitySigner::new("https://gw.example".into(), Duration::from_secs(60)).unwrap();
        let who = Who {
            sub: "alice",
            client_id: "app",
            scope: "orders:read",
            token_issuer: "https://id.example",
            audience: "http://orders.internal",
        };
        let jwt = signer.sign_claims(who).unwrap();
        let verifier = Verifier::new(Jwks::parse(signer.jwks_json()).unwrap());
        let typ = Typ::Exactly("tessera-identity+jwt");
        let verified = verifier
            .verify::<BasicClaims>(&jwt, typ, "https://gw.example", now(), Expiry::Enforce)
            .unwrap();
        assert!(verified.claims().exp <= now() + 60);
        let payload = jwt.split('.').nth(1).unwrap();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["aud"], "http://orders.internal");
    }
}
