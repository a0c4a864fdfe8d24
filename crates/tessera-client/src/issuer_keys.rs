//! The issuer's signing keys (its `jwks_uri`), for validating ID tokens: fetched with the
//! library's HTTP client (the URL is the configured issuer's own, not a peer's choice), cached
//! for five minutes, fetched again at once when a token names a key the set lacks (rotation).

use std::sync::{Arc, Mutex};

use tessera_jose::{Jwks, Verifier};

use crate::clock::Clock;
use crate::error::Error;
use crate::http::Http;

const KEYS_TTL_MS: i64 = 5 * 60 * 1000;

pub(crate) struct IssuerKeys {
    http: Http,
    jwks_uri: String,
    cached: Mutex<Option<(i64, Arc<Verifier>)>>,
}

impl IssuerKeys {
    pub fn new(http: Http, jwks_uri: String) -> Self {
        Self { http, jwks_uri, cached: Mutex::new(None) }
    }

    /// A verifier over the issuer's keys; `refresh` forces a new fetch.
    pub async fn verifier(&self, clock: &dyn Clock, refresh: bool) -> Result<Arc<Verifier>, Error> {
        let now = clock.now_ms();
        if !refresh
            && let Some((at, verifier)) = self.lock().as_ref()
            && now - at < KEYS_TTL_MS
        {
            return Ok(verifier.clone());
        }
        let reply = self.http.get_json(&self.jwks_uri).await?;
        if reply.status != 200 {
            return Err(Error::NotJson { url: self.jwks_uri.clone(), status: reply.status });
        }
        let jwks = Jwks::parse_signing_keys(&reply.body.to_string())
            .map_err(|e| Error::Jwks(tessera_jose::FetchError::Document(e.to_string())))?;
        let verifier = Arc::new(Verifier::without_cache(jwks));
        *self.lock() = Some((now, verifier.clone()));
        Ok(verifier)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(i64, Arc<Verifier>)>> {
        // One assignment or read per critical section: never left half-done.
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }
}
