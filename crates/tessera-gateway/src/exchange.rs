//! Token exchange for the upstream (RFC 8693): a route with `[routes.exchange]` sends its
//! upstream a token of the upstream's own audience, obtained at the issuer's token endpoint
//! for the client's token, instead of the client's token (RFC 9700 §2.3: no passthrough).
//!
//! - By default the gateway acts for the caller (delegation, §1.1): it presents its own
//!   client-credentials token as `actor_token`, so the upstream's token names the caller as
//!   `sub` and the gateway in `act`. With `delegation = false` it impersonates (no `act`).
//! - Exchanged tokens are cached per (subject token, audience, scope, client), keyed by a
//!   SHA-256 digest (no token is kept as a key), until shortly before they expire; concurrent
//!   requests for one key wait for one exchange (single flight).
//! - The token endpoint is the configured one, or the `token_endpoint` of the subject token's
//!   issuer's RFC 8414 metadata, read once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use tessera_core::secret::SecretHash;

use crate::config::{ExchangeAuth, ExchangeConfig};
use crate::upstream::{BoxError, UpstreamClient};

/// RFC 8693 §2.1's grant type and token types.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The largest token-endpoint or metadata answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// A cached token is dropped this long before it expires (at most a quarter of its life), so
/// that it does not expire on its way to the upstream.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Beyond this many cached tokens, expired ones are swept; a cache still full is emptied.
const MAX_CACHED: usize = 10_000;

/// Why no token could be obtained for the upstream.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The authorization server refused to exchange this client's token (RFC 8693 §2.2.2
    /// `invalid_request`, `invalid_scope`, `invalid_target`, `invalid_grant`): the caller's
    /// token does not entitle it to the upstream.
    #[error("the authorization server refused the exchange: {error}")]
    Refused { error: String },
    /// The gateway's own side failed: the endpoint cannot be reached, answers with another
    /// error (its client authentication, a server error), or with no usable token.
    #[error("{0}")]
    Failed(String),
}

fn failed(what: impl std::fmt::Display) -> ExchangeError {
    ExchangeError::Failed(what.to_string())
}

/// A token obtained for an upstream, until shortly before it expires.
#[derive(Clone)]
struct Cached {
    token: Arc<str>,
    until: Instant,
}

/// The exchanged (and actor) tokens of every route, and the token endpoints found.
pub struct Exchanges {
    client: UpstreamClient,
    timeout: Duration,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    flights: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    endpoints: Mutex<HashMap<String, Arc<str>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is one map operation: a panic cannot leave one half-done.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cache key: a digest of everything the token obtained depends on. Fields are separated
/// by a byte no token, URL or scope contains.
fn key(parts: &[&str]) -> [u8; 32] {
    let mut input = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for part in parts {
        input.extend_from_slice(part.as_bytes());
        input.push(0);
    }
    *SecretHash::of(&input).as_bytes()
}

/// RFC 6749 §5.1 / RFC 8693 §2.2.1: the members of a token response used here.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// RFC 6749 §5.2: an error answer.
#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    token_endpoint: String,
}

/// How long a token answered with `expires_in` may be reused.
fn reusable_for(expires_in: Option<u64>) -> Duration {
    let Some(secs) = expires_in else { return Duration::ZERO };
    let life = Duration::from_secs(secs);
    life.saturating_sub(EXPIRY_MARGIN.min(life / 4))
}

impl Exchanges {
    pub fn new(client: UpstreamClient, timeout: Duration) -> Self {
        Self {
            client,
            timeout,
            cache: Mutex::default(),
            flights: Mutex::default(),
            endpoints: Mutex::default(),
        }
    }

    /// A token for `exchange.audience` in exchange for `subject_token` (issued by `issuer`),
    /// from the cache when one is still good.
    pub async fn token_for(
        &self,
        exchange: &ExchangeConfig,
        issuer: &str,
        subject_token: &str,
    ) -> Result<Arc<str>, ExchangeError> {
        let scope = exchange.scope.join(" ");
        let delegation = if exchange.delegation { "act" } else { "imp" };
        let cache_key =
            key(&[subject_token, &exchange.audience, &scope, &exchange.client_id, delegation]);
        self.cached_or(cache_key, async {
            let endpoint = self.endpoint(exchange, issuer).await?;
            let actor = match exchange.delegation {
                true => Some(self.actor_token(exchange, &endpoint).await?),
                false => None,
            };
            let mut form = vec![
                ("grant_type", GRANT_TYPE),
                ("subject_token", subject_token),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("requested_token_type", ACCESS_TOKEN_TYPE),
            ];
            if let Some(actor) = &actor {
                form.push(("actor_token", actor));
                form.push(("actor_token_type", ACCESS_TOKEN_TYPE));
            }
            // RFC 8693 §2.1: `resource` for an absolute URI (RFC 8707), `audience` otherwise.
            let target =
                if url::Url::parse(&exchange.audience).is_ok() { "resource" } else { "audience" };
            form.push((target, &exchange.audience));
            if !scope.is_empty() {
                form.push(("scope", &scope));
            }
            self.token_request(exchange, &endpoint, form).await
        })
        .await
    }

    /// The gateway's own token (client credentials), the `actor_token` of a delegation.
    async fn actor_token(
        &self,
        exchange: &ExchangeConfig,
        endpoint: &str,
    ) -> Result<Arc<str>, ExchangeError> {
        let cache_key = key(&["actor", endpoint, &exchange.client_id]);
        self.cached_or(cache_key, async {
            let form = vec![("grant_type", "client_credentials")];
            self.token_request(exchange, endpoint, form).await
        })
        .await
        // An actor token the server refuses is the gateway's own configuration's fault.
        .map_err(|e| match e {
            ExchangeError::Refused { error } => failed(format!("actor token refused: {error}")),
            other => other,
        })
    }

    /// The cached token of `cache_key`, or the one `fetch` obtains (one fetch per key at a
    /// time: whoever waited finds the token the first one cached).
    async fn cached_or(
        &self,
        cache_key: [u8; 32],
        fetch: impl Future<Output = Result<(Arc<str>, Duration), ExchangeError>>,
    ) -> Result<Arc<str>, ExchangeError> {
        if let Some(token) = self.cached(&cache_key) {
            return Ok(token);
        }
        let flight = lock(&self.flights).entry(cache_key).or_default().clone();
        let _flying = flight.lock().await;
        if let Some(token) = self.cached(&cache_key) {
            return Ok(token);
        }
        let fetched = fetch.await;
        lock(&self.flights).remove(&cache_key);
        let (token, reusable) = fetched?;
        if !reusable.is_zero() {
            let mut cache = lock(&self.cache);
            if cache.len() >= MAX_CACHED {
                let now = Instant::now();
                cache.retain(|_, c| c.until > now);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(
                cache_key,
                Cached { token: token.clone(), until: Instant::now() + reusable },
            );
        }
        Ok(token)
    }

    fn cached(&self, cache_key: &[u8; 32]) -> Option<Arc<str>> {
        let cache = lock(&self.cache);
        cache.get(cache_key).filter(|c| c.until > Instant::now()).map(|c| c.token.clone())
    }

    /// POSTs `form` to the token endpoint, authenticated as the exchange's client.
    async fn token_request(
        &self,
        exchange: &ExchangeConfig,
        endpoint: &str,
        mut form: Vec<(&str, &str)>,
    ) -> Result<(Arc<str>, Duration), ExchangeError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(endpoint)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json");
        match exchange.auth {
            // RFC 6749 §2.3.1: id and secret form-encoded, then Basic.
            ExchangeAuth::ClientSecretBasic => {
                let encode = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = format!(
                    "{}:{}",
                    encode(&exchange.client_id),
                    encode(exchange.client_secret.expose())
                );
                let value = format!("Basic {}", base64_encode(pair.as_bytes()));
                let value = HeaderValue::from_str(&value).map_err(failed)?;
                request = request.header(header::AUTHORIZATION, value);
            }
            ExchangeAuth::ClientSecretPost => {
                form.push(("client_id", &exchange.client_id));
                form.push(("client_secret", exchange.client_secret.expose()));
            }
        }
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let (status, body) = self.send(request, Bytes::from(body)).await?;
        if status == StatusCode::OK {
            let answer: TokenAnswer = serde_json::from_slice(&body)
                .map_err(|_| failed("the token endpoint's answer is not a token response"))?;
            // RFC 8693 §2.2.1: only a Bearer token is usable as is.
            if !answer.token_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
                return Err(failed("the token endpoint issued no Bearer token"));
            }
            return Ok((answer.access_token.into(), reusable_for(answer.expires_in)));
        }
        let error = serde_json::from_slice::<ErrorAnswer>(&body)
            .map_err(|_| failed(format!("the token endpoint answered {status}")))?;
        tracing::info!(error = %error.error, description = error.error_description.as_deref().unwrap_or(""),
            "token exchange refused");
        match (status, error.error.as_str()) {
            (
                StatusCode::BAD_REQUEST,
                "invalid_request" | "invalid_grant" | "invalid_scope" | "invalid_target",
            ) => Err(ExchangeError::Refused { error: error.error }),
            _ => Err(failed(format!("the token endpoint answered {status} {}", error.error))),
        }
    }

    /// The token endpoint: configured, or from the issuer's metadata (read once).
    async fn endpoint(
        &self,
        exchange: &ExchangeConfig,
        issuer: &str,
    ) -> Result<Arc<str>, ExchangeError> {
        if let Some(endpoint) = &exchange.token_endpoint {
            return Ok(endpoint.as_str().into());
        }
        if let Some(found) = lock(&self.endpoints).get(issuer) {
            return Ok(found.clone());
        }
        let mut last = failed(format!("no metadata URL for {issuer}"));
        for url in metadata_urls(issuer) {
            let request = Request::builder().uri(&url).header(header::ACCEPT, "application/json");
            let (status, body) = match self.send(request, Bytes::new()).await {
                Ok(answer) => answer,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            if status != StatusCode::OK {
                last = failed(format!("{url} answered {status}"));
                continue;
            }
            let metadata: Metadata = serde_json::from_slice(&body).map_err(|_| {
                failed(format!("{url} is no RFC 8414 metadata with a token_endpoint"))
            })?;
            // RFC 8414 §3.3: the document must be the issuer's own.
            if metadata.issuer != issuer {
                return Err(failed(format!("{url} names another issuer")));
            }
            let endpoint: Arc<str> = metadata.token_endpoint.into();
            lock(&self.endpoints).insert(issuer.to_owned(), endpoint.clone());
            return Ok(endpoint);
        }
        Err(last)
    }

    /// Sends one request through the upstream client; the answer's status and body (bounded
    /// in size, and in time with the header).
    async fn send(
        &self,
        request: http::request::Builder,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), ExchangeError> {
        let body = Full::new(body).map_err(|never| -> BoxError { match never {} }).boxed_unsync();
        let request = request.body(body).map_err(failed)?;
        let answer = async {
            let response = self.client.request(request).await.map_err(failed)?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| failed(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(answer) => answer,
            Err(_) => Err(failed("the token endpoint did not answer in time")),
        }
    }
}

/// RFC 8414 §3.1's well-known URL (inserted before the issuer's path), then OpenID Connect
/// Discovery's (appended).
fn metadata_urls(issuer: &str) -> Vec<String> {
    let mut urls = Vec::with_capacity(2);
    if let Ok(url) = url::Url::parse(issuer) {
        let path = url.path().trim_end_matches('/');
        let mut well_known = url.clone();
        well_known.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        urls.push(well_known.to_string());
    }
    urls.push(format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')));
    urls
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8693_2_2_1_exchanged_tokens_are_reused_until_shortly_before_expiry() {
        assert_eq!(reusable_for(None), Duration::ZERO);
        assert_eq!(reusable_for(Some(900)), Duration::from_secs(870));
        // A short-lived token keeps three quarters of its life.
        assert_eq!(reusable_for(Some(40)), Duration::from_secs(30));
        assert_eq!(reusable_for(Some(0)), Duration::ZERO);
    }

    #[test]
    fn cache_keys_differ_in_every_part() {
        let base = key(&["t", "https://a", "s", "c", "act"]);
        assert_ne!(base, key(&["t2", "https://a", "s", "c", "act"]));
        assert_ne!(base, key(&["t", "https://b", "s", "c", "act"]));
        assert_ne!(base, key(&["t", "https://a", "s2", "c", "act"]));
        assert_ne!(base, key(&["t", "https://a", "s", "c", "imp"]));
        // The separator keeps a moved boundary from colliding.
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
    }
}
