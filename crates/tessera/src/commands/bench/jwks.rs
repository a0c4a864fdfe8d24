//! The issuer's signing keys, for the sampled checks of JWTs (access tokens and ID tokens) and
//! for the `jwks-verify` scenario.

use std::collections::HashMap;

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::Endpoints;

/// The issuer's signing keys, by `kid`.
pub(super) struct Jwks {
    issuer: String,
    keys: HashMap<String, (DecodingKey, Algorithm)>,
}

impl Jwks {
    pub(super) async fn fetch(
        http: &reqwest::Client,
        endpoints: &Endpoints,
    ) -> anyhow::Result<Self> {
        let url = endpoints.jwks_uri.as_deref().context("discovery has no jwks_uri")?;
        let doc: Value = http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("cannot fetch {url}"))?
            .json()
            .await
            .with_context(|| format!("{url}: not JSON"))?;
        let mut keys = HashMap::new();
        // One key at a time, so that a key type this tool does not know does not lose the rest.
        for raw in doc.get("keys").and_then(Value::as_array).into_iter().flatten() {
            let Ok(jwk) = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(raw.clone()) else {
                continue;
            };
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(&jwk))
            else {
                continue;
            };
            let alg = raw
                .get("alg")
                .and_then(Value::as_str)
                .and_then(|a| a.parse::<Algorithm>().ok())
                .unwrap_or(Algorithm::ES256);
            keys.insert(kid, (key, alg));
        }
        anyhow::ensure!(!keys.is_empty(), "{url} holds no usable key");
        Ok(Self { issuer: endpoints.issuer.clone(), keys })
    }

    /// Verifies a JWT's signature with the key its `kid` names, and its `iss` and `exp`;
    /// returns its claims for the caller's own checks (`aud`, `nonce`).
    pub(super) fn verify(&self, token: &str) -> Result<Value, &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "invalid_token")?;
        let kid = header.kid.as_deref().ok_or("invalid_token")?;
        let (key, alg) = self.keys.get(kid).ok_or("invalid_token")?;
        if header.alg != *alg {
            return Err("invalid_token");
        }
        let mut validation = Validation::new(*alg);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        jsonwebtoken::decode::<Value>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|_| "invalid_token")
    }
}
