//! Opaque access tokens, checked through the issuer's introspection endpoint (RFC 7662), with
//! a cache.
//!
//! - Entries are keyed by SHA-256 of the token: the cache never holds a token.
//! - An active answer is kept for the configured TTL (30…60 s) but never past the token's
//!   `exp`; an inactive one for [`NEGATIVE_TTL`], so that revocation is seen soon and a flood
//!   of made-up tokens does not reach the issuer once per request.
//! - One introspection per token is in flight at a time: concurrent requests with the same
//!   token wait for it and read its answer from the cache.
//! - The resource authenticates as a client (RFC 7662 §2.1): `client_secret_basic` or
//!   `private_key_jwt` (RFC 7523 §2.2, `aud` = the issuer).
//! - Answers are never logged: they describe a user's grant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use tessera_jose::fetch::{guarded_client, read_capped};
use tessera_jose::{Audience, Confirmation, Scopes};

/// How long an inactive answer is remembered.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// The bounds of the TTL of active answers.
pub const MIN_TTL: Duration = Duration::from_secs(30);
pub const MAX_TTL: Duration = Duration::from_secs(60);
/// The largest introspection answer read.
const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// Entries kept at most; when full, expired entries go first, then all.
const CAPACITY: usize = 16_384;

/// How the resource authenticates at the introspection endpoint.
#[derive(Clone)]
pub enum IntrospectionCredentials {
    /// RFC 6749 §2.3.1 `client_secret_basic`.
    ClientSecret { client_id: String, secret: String },
    /// RFC 7523 §2.2 `private_key_jwt`: assertions signed with this key.
    PrivateKeyJwt {
        client_id: String,
        kid: String,
        alg: jsonwebtoken::Algorithm,
        key: jsonwebtoken::EncodingKey,
    },
}

impl std::fmt::Debug for IntrospectionCredentials {
    // The secret and the key are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClientSecret { client_id, .. } => write!(f, "ClientSecret({client_id}, ..)"),
            Self::PrivateKeyJwt { client_id, kid, .. } => {
                write!(f, "PrivateKeyJwt({client_id}, {kid}, ..)")
            }
        }
    }
}

impl IntrospectionCredentials {
    pub fn client_secret(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self::ClientSecret { client_id: client_id.into(), secret: secret.into() }
    }

    /// `private_key_jwt` with a PKCS#8 PEM private key of algorithm `alg` (ES256, RS256 or
    /// EdDSA) whose public half the issuer knows under `kid`.
    pub fn private_key_jwt(
        client_id: impl Into<String>,
        kid: impl Into<String>,
        alg: tessera_jose::Algorithm,
        pem: &[u8],
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        use tessera_jose::Algorithm as A;
        let key = match alg {
            A::ES256 | A::ES384 => jsonwebtoken::EncodingKey::from_ec_pem(pem)?,
            A::EdDSA => jsonwebtoken::EncodingKey::from_ed_pem(pem)?,
            _ => jsonwebtoken::EncodingKey::from_rsa_pem(pem)?,
        };
        Ok(Self::PrivateKeyJwt {
            client_id: client_id.into(),
            kid: kid.into(),
            alg: alg.jsonwebtoken(),
            key,
        })
    }
}

/// The members of an RFC 7662 §2.2 answer that a resource uses.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Introspected {
    pub active: bool,
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub scope: Scopes,
    #[serde(default)]
    pub aud: Audience,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub cnf: Option<Confirmation>,
}

/// Why introspection gave no answer (the endpoint, not the token): not cached.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IntrospectionError {
    #[error("introspection request failed: {0}")]
    Request(String),
    #[error("introspection answered {0}")]
    Status(u16),
    #[error("introspection answer is not an RFC 7662 document")]
    Document,
}

struct Entry {
    answer: Option<Arc<Introspected>>,
    until: Instant,
}

/// One issuer's introspection endpoint and its cache.
pub(crate) struct Introspector {
    endpoint: String,
    issuer: String,
    credentials: IntrospectionCredentials,
    allow_private_networks: bool,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], Entry>>,
    in_flight: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    requests: std::sync::atomic::AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is one map operation: a panic cannot leave one half-done.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn digest(token: &str) -> [u8; 32] {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(hash.as_ref());
    out
}

fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    // The system generator does not fail on the platforms aws-lc-rs supports; a zero jti
    // would only make the issuer refuse the assertion as replayed.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// How long an answer is cached: an active one for the configured TTL but never past its
/// `exp` (a cached answer must not outlive the token), an inactive one [`NEGATIVE_TTL`].
fn answer_ttl(configured: Duration, answer: Option<&Introspected>, now: i64) -> Duration {
    match answer {
        Some(Introspected { exp: Some(exp), .. }) => {
            configured.min(Duration::from_secs(exp.saturating_sub(now).max(0) as u64))
        }
        Some(_) => configured,
        None => NEGATIVE_TTL,
    }
}

impl Introspector {
    pub(crate) fn new(
        endpoint: String,
        issuer: String,
        credentials: IntrospectionCredentials,
        allow_private_networks: bool,
        ttl: Duration,
    ) -> Self {
        Self {
            endpoint,
            issuer,
            credentials,
            allow_private_networks,
            ttl: ttl.clamp(MIN_TTL, MAX_TTL),
            cache: Mutex::default(),
            in_flight: Mutex::default(),
            requests: Default::default(),
        }
    }

    /// How many introspection requests were sent (metrics, tests).
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Option<Arc<Introspected>>> {
        let cache = lock(&self.cache);
        cache.get(key).filter(|e| Instant::now() < e.until).map(|e| e.answer.clone())
    }

    /// The answer for `token` (`None`: inactive), from the cache or the endpoint.
    pub(crate) async fn introspect(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<Arc<Introspected>>, IntrospectionError> {
        let key = digest(token);
        if let Some(answer) = self.cached(&key) {
            return Ok(answer);
        }
        let flight = lock(&self.in_flight).entry(key).or_default().clone();
        let _turn = flight.lock().await;
        if let Some(answer) = self.cached(&key) {
            return Ok(answer);
        }
        let result = self.request(token, now).await;
        lock(&self.in_flight).remove(&key);
        let answer = result?.filter(|a| a.active).map(Arc::new);
        let ttl = answer_ttl(self.ttl, answer.as_deref(), now);
        let mut cache = lock(&self.cache);
        if cache.len() >= CAPACITY {
            let at = Instant::now();
            cache.retain(|_, e| at < e.until);
            if cache.len() >= CAPACITY {
                cache.clear();
            }
        }
        cache.insert(key, Entry { answer: answer.clone(), until: Instant::now() + ttl });
        Ok(answer)
    }

    async fn request(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<Introspected>, IntrospectionError> {
        self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (client, url) = guarded_client(&self.endpoint, self.allow_private_networks)
            .await
            .map_err(|e| IntrospectionError::Request(e.to_string()))?;
        // The form serializer is not `Send`: it is finished before any `await`.
        let (request, body) = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("token", token).append_pair("token_type_hint", "access_token");
            let mut request = client.post(url);
            match &self.credentials {
                IntrospectionCredentials::ClientSecret { client_id, secret } => {
                    // RFC 6749 §2.3.1: both form-urlencoded before the Basic encoding.
                    let encode = |s: &str| {
                        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                    };
                    let basic =
                        STANDARD.encode(format!("{}:{}", encode(client_id), encode(secret)));
                    request =
                        request.header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"));
                }
                IntrospectionCredentials::PrivateKeyJwt { client_id, kid, alg, key } => {
                    let mut header = jsonwebtoken::Header::new(*alg);
                    header.kid = Some(kid.clone());
                    // RFC 7523 §3: iss = sub = client_id, aud = the issuer, short-lived, unique.
                    let claims = serde_json::json!({
                        "iss": client_id, "sub": client_id, "aud": self.issuer,
                        "iat": now, "exp": now + 60, "jti": random_jti(),
                    });
                    let assertion = jsonwebtoken::encode(&header, &claims, key).map_err(|e| {
                        IntrospectionError::Request(format!("cannot sign the assertion: {e}"))
                    })?;
                    form.append_pair("client_id", client_id)
                        .append_pair(
                            "client_assertion_type",
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                        )
                        .append_pair("client_assertion", &assertion);
                }
            }
            (request, form.finish())
        };
        let response = request
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| IntrospectionError::Request(e.to_string()))?;
        if !response.status().is_success() {
            return Err(IntrospectionError::Status(response.status().as_u16()));
        }
        let body = read_capped(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| IntrospectionError::Request(e.to_string()))?;
        serde_json::from_slice(&body).map(Some).map_err(|_| IntrospectionError::Document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(exp: Option<i64>) -> Introspected {
        serde_json::from_value(serde_json::json!({"active": true, "exp": exp})).unwrap()
    }

    #[test]
    fn rfc7662_4_introspection_cache_never_outlives_the_token_exp() {
        let ttl = Duration::from_secs(60);
        assert_eq!(answer_ttl(ttl, Some(&active(Some(1_000))), 100), ttl);
        assert_eq!(answer_ttl(ttl, Some(&active(Some(110))), 100), Duration::from_secs(10));
        assert_eq!(answer_ttl(ttl, Some(&active(Some(90))), 100), Duration::ZERO);
        assert_eq!(answer_ttl(ttl, Some(&active(None)), 100), ttl);
        assert_eq!(answer_ttl(ttl, None, 100), NEGATIVE_TTL);
    }

    #[test]
    fn the_configured_ttl_is_held_between_30_and_60_seconds() {
        let make = |secs| {
            let credentials = IntrospectionCredentials::client_secret("rs", "secret");
            Introspector::new(
                String::new(),
                String::new(),
                credentials,
                false,
                Duration::from_secs(secs),
            )
            .ttl
        };
        assert_eq!((make(1), make(45), make(600)), (MIN_TTL, Duration::from_secs(45), MAX_TTL));
    }

    #[test]
    fn credentials_never_print_their_secret() {
        let credentials = IntrospectionCredentials::client_secret("rs", "s3cr3t");
        assert_eq!(format!("{credentials:?}"), "ClientSecret(rs, ..)");
    }
}
