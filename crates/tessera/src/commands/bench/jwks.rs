//! The issuer's signing keys, for the sampled checks of JWTs (access tokens and ID tokens) and
//! for the `jwks-verify` scenario: verified by `tessera-jose`, the same code as the server's.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tessera_jose::{BasicClaims, Expiry, IdTokenClaims, Typ, Verifier};

use super::Endpoints;

/// The issuer's signing keys.
pub(super) struct Jwks {
    issuer: String,
    /// Without the verified-token cache: `jwks-verify` verifies one token again and again
    /// and is meant to measure the signature, as a first presentation costs.
    verifier: Verifier,
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Jwks {
    pub(super) async fn fetch(
        http: &reqwest::Client,
        endpoints: &Endpoints,
    ) -> anyhow::Result<Self> {
        let url = endpoints.jwks_uri.as_deref().context("discovery has no jwks_uri")?;
        let text = http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("cannot fetch {url}"))?
            .text()
            .await
            .with_context(|| format!("cannot read {url}"))?;
        // Keys this tool cannot verify with (encryption keys, other algorithms) are skipped.
        let jwks = tessera_jose::Jwks::parse_signing_keys(&text)
            .with_context(|| format!("{url} holds no usable key"))?;
        Ok(Self { issuer: endpoints.issuer.clone(), verifier: Verifier::without_cache(jwks) })
    }

    /// Verifies a JWT access token's signature with the key its `kid` names, and its `iss`
    /// and `exp` (any `typ`: other servers type their access tokens differently).
    pub(super) fn verify_access_token(&self, token: &str) -> Result<(), &'static str> {
        self.verifier
            .verify::<BasicClaims>(token, Typ::Any, &self.issuer, now(), Expiry::Enforce)
            .map(drop)
            .map_err(|_| "invalid_token")
    }

    /// Verifies an ID token as [`Self::verify_access_token`] does; returns its claims for the
    /// caller's own checks (`aud`, `nonce`).
    pub(super) fn verify_id_token(&self, token: &str) -> Result<IdTokenClaims, &'static str> {
        self.verifier
            .verify::<IdTokenClaims>(token, Typ::Any, &self.issuer, now(), Expiry::Enforce)
            .map(|v| v.into_claims())
            .map_err(|_| "invalid_id_token")
    }
}
