//! Sender-constrained tokens (RFC 7800 `cnf`): the hook through which DPoP (RFC 9449) and
//! mutual-TLS (RFC 8705) proofs are checked, and the DPoP check itself.
//!
//! A token carrying `cnf` may only be used by the holder of the key it names. The validator
//! hands every such token to the configured [`SenderConstraint`], with the request parts (the
//! `DPoP` header, method and URL for RFC 9449 §4.3; the client certificate as a request
//! extension for RFC 8705 §3). [`SenderConstraints`] sends a token bound by `jkt` to the
//! [`DpopCheck`] and one bound by `x5t#S256` to a certificate checker.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::hmac;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tessera_jose::Confirmation;
use tessera_jose::dpop::{DpopError, ProofRules, verify_proof};

/// How the token was presented (RFC 6750 §2.1 `Bearer`, RFC 9449 §7.1 `DPoP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    DPoP,
}

/// Why the proof of a bound token is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// RFC 9449 §7.1 / RFC 8705 §3: a bound token without its proof is refused.
    #[error("the token is sender-constrained and no proof of possession was presented")]
    Missing,
    #[error("the proof of possession is invalid")]
    Invalid,
    /// The binding names a method this resource cannot check (e.g. `x5t#S256` without TLS).
    #[error("the token's confirmation method is not supported here")]
    Unsupported,
    /// RFC 9449 §7.1 `invalid_dpop_proof`: the `DPoP` header is missing, malformed, or fails
    /// a check of §4.3 (the reason is safe to tell the client: it is about its own proof).
    #[error("{0}")]
    InvalidDpopProof(&'static str),
    /// RFC 9449 §9: the proof must carry the resource's current nonce, given here.
    #[error("the DPoP proof must carry the resource's nonce")]
    UseDpopNonce(String),
    /// RFC 9449 §7.1: the proof is valid but made with another key than the token's
    /// (`invalid_token`, as the RFC's example says: "Invalid DPoP key binding").
    #[error("the DPoP proof's key is not the one the token is bound to")]
    DpopKeyMismatch,
    /// RFC 9449 §7.2: a DPoP-bound token presented with the `Bearer` scheme.
    #[error("a DPoP-bound token must be presented with the DPoP scheme")]
    DpopBoundAsBearer,
    /// The proof could not be checked (the shared replay cache is unreachable): refused for
    /// now (`503`), since accepting it unchecked could let a replay through.
    #[error("the proof cannot be checked now")]
    Unavailable,
}

impl ProofError {
    /// Whether the refusal is about DPoP, so answered with a `DPoP` challenge (§7.1).
    pub fn is_dpop(&self) -> bool {
        matches!(
            self,
            Self::InvalidDpopProof(_)
                | Self::UseDpopNonce(_)
                | Self::DpopKeyMismatch
                | Self::DpopBoundAsBearer
        )
    }
}

/// The future a [`SenderConstraint`] returns.
pub type ProofFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ProofError>> + Send + 'a>>;

/// Checks the proof of possession of a sender-constrained token.
pub trait SenderConstraint: Send + Sync + 'static {
    /// `cnf` of a validated token, the token itself (a DPoP proof's `ath` is its hash), how
    /// it was presented, and the request.
    fn verify<'a>(
        &'a self,
        cnf: &'a Confirmation,
        token: &'a str,
        scheme: Scheme,
        request: &'a Parts,
    ) -> ProofFuture<'a>;

    /// The DPoP proof algorithms accepted, space-separated, when this checker accepts DPoP
    /// (RFC 9449 §7.1: the `algs` of the `DPoP` challenge); `None` otherwise.
    fn dpop_algs(&self) -> Option<&str> {
        None
    }
}

/// The default: no proof method is configured, so every bound token is refused (RFC 9449
/// §7.1, RFC 8705 §3: accepting it as a bearer token would defeat the binding).
#[derive(Clone, Copy, Debug, Default)]
pub struct RefuseBoundTokens;

impl SenderConstraint for RefuseBoundTokens {
    fn verify<'a>(
        &'a self,
        _cnf: &'a Confirmation,
        _token: &'a str,
        _scheme: Scheme,
        _request: &'a Parts,
    ) -> ProofFuture<'a> {
        Box::pin(std::future::ready(Err(ProofError::Missing)))
    }
}

/// Sends each bound token to the check of its binding: `cnf.jkt` (RFC 9449 §6.1) to DPoP,
/// `cnf.x5t#S256` (RFC 8705 §3.1) to the certificate checker. A binding without its checker
/// is refused; a token bound both ways must pass both.
#[derive(Clone, Default)]
pub struct SenderConstraints {
    dpop: Option<Arc<DpopCheck>>,
    certificate: Option<Arc<dyn SenderConstraint>>,
}

impl SenderConstraints {
    pub fn new(
        dpop: Option<Arc<DpopCheck>>,
        certificate: Option<Arc<dyn SenderConstraint>>,
    ) -> Self {
        Self { dpop, certificate }
    }
}

impl SenderConstraint for SenderConstraints {
    fn verify<'a>(
        &'a self,
        cnf: &'a Confirmation,
        token: &'a str,
        scheme: Scheme,
        request: &'a Parts,
    ) -> ProofFuture<'a> {
        Box::pin(async move {
            let mut checked = false;
            if cnf.jkt.is_some() {
                let dpop = self.dpop.as_ref().ok_or(ProofError::Unsupported)?;
                dpop.verify(cnf, token, scheme, request).await?;
                checked = true;
            }
            if cnf.x5t_s256.is_some() {
                let certificate = self.certificate.as_ref().ok_or(ProofError::Unsupported)?;
                certificate.verify(cnf, token, scheme, request).await?;
                checked = true;
            }
            if checked { Ok(()) } else { Err(ProofError::Unsupported) }
        })
    }

    fn dpop_algs(&self) -> Option<&str> {
        self.dpop.as_ref().map(|d| d.algs.as_str())
    }
}

/// How old (by `iat`) a proof may be by default: it is made for one request (RFC 9449 §11.1).
pub const DPOP_MAX_AGE: Duration = Duration::from_secs(60);
/// Clock skew allowed for a proof's `iat` in the future.
const DPOP_LEEWAY: i64 = 5;
/// A nonce is handed out for this long, and accepted for as long again after.
const NONCE_PERIOD: i64 = 300;
/// The in-process replay cache refuses new proofs beyond this many (forgetting would reopen
/// a replay window).
const REPLAY_CAPACITY: usize = 100_000;
/// The Redis key prefix of the replay cache, shared with the authorization server's.
pub const DPOP_JTI_KEY_PREFIX: &str = "tessera:dpop-jti:";

/// Why a [`DpopCheck`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum DpopSetupError {
    #[error("the external base URL {0:?} is not an absolute http(s) URL")]
    BaseUrl(String),
    #[error("cannot connect to the DPoP replay cache: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The DPoP check of a resource server (RFC 9449 §7): the proof in the `DPoP` header is
/// verified as §4.3 says — `htm` the request's method, `htu` the URL the client called (the
/// configured external base URL and the request's path), `iat` within the window, `ath` the
/// hash of the token, `jti` not seen before (in process, or in a Redis shared by several
/// instances), optionally a nonce of this resource (§9) — and its key must be the token's
/// `cnf.jkt`.
pub struct DpopCheck {
    base: url::Url,
    max_age: i64,
    algs: String,
    seen: Mutex<HashMap<[u8; 32], i64>>,
    redis: Option<ConnectionManager>,
    nonces: Option<hmac::Key>,
}

impl std::fmt::Debug for DpopCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopCheck").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What a client may be told about its refused proof (RFC 9449 §7.1 `error_description`).
fn describe(error: DpopError) -> &'static str {
    match error {
        DpopError::Malformed => "the DPoP proof is not a well-formed JWT",
        DpopError::WrongType => "the DPoP proof's typ is not dpop+jwt",
        DpopError::AlgorithmNotAllowed => "the DPoP proof's alg is not allowed",
        DpopError::CriticalHeader => "the DPoP proof has critical header parameters",
        DpopError::BadKey => "the DPoP proof's jwk is not a usable public key",
        DpopError::BadSignature => "the DPoP proof's signature does not verify",
        DpopError::MissingClaim => "the DPoP proof lacks jti, htm, htu or iat",
        DpopError::WrongMethod => "the DPoP proof's htm is not this request's method",
        DpopError::WrongUrl => "the DPoP proof's htu is not this request's URL",
        DpopError::Stale => "the DPoP proof's iat is too old or in the future",
        DpopError::MissingAth => "the DPoP proof has no ath",
        DpopError::WrongAth => "the DPoP proof's ath is not the hash of this access token",
    }
}

impl DpopCheck {
    /// `external_base_url`: the scheme, host and (optional) path prefix under which clients
    /// call this API, e.g. `https://api.example` — what their proofs' `htu` starts with,
    /// whatever address the server listens on behind a proxy.
    pub fn new(external_base_url: &str) -> Result<Self, DpopSetupError> {
        let base = url::Url::parse(external_base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && u.has_host())
            .ok_or_else(|| DpopSetupError::BaseUrl(external_base_url.to_owned()))?;
        Ok(Self {
            base,
            max_age: DPOP_MAX_AGE.as_secs() as i64,
            algs: tessera_jose::Algorithm::NAMES.join(" "),
            seen: Mutex::default(),
            redis: None,
            nonces: None,
        })
    }

    /// Keeps the replay cache in the Redis at `url` (key prefix `tessera:dpop-jti:`), so that
    /// several instances of the API refuse a proof any of them has seen.
    pub async fn replay_cache_redis(mut self, url: &str) -> Result<Self, DpopSetupError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1);
        self.redis = Some(ConnectionManager::new_with_config(client, config).await?);
        Ok(self)
    }

    /// Requires proofs to carry a nonce of this resource (RFC 9449 §9), computed from
    /// `secret` and the time: instances sharing the secret accept each other's nonces.
    pub fn require_nonce(mut self, secret: &[u8]) -> Self {
        self.nonces = Some(hmac::Key::new(hmac::HMAC_SHA256, secret));
        self
    }

    /// How old a proof may be (default 60 s).
    pub fn proof_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age.as_secs() as i64;
        self
    }

    fn nonce_of_period(key: &hmac::Key, period: i64) -> String {
        let tag = hmac::sign(key, format!("tessera resource dpop nonce {period}").as_bytes());
        URL_SAFE_NO_PAD.encode(&tag.as_ref()[..18])
    }

    /// The nonce to hand out now, when nonces are required.
    pub fn current_nonce(&self) -> Option<String> {
        let key = self.nonces.as_ref()?;
        Some(Self::nonce_of_period(key, now().div_euclid(NONCE_PERIOD)))
    }

    fn nonce_accepted(&self, key: &hmac::Key, nonce: Option<&str>, now: i64) -> bool {
        let Some(nonce) = nonce else { return false };
        let period = now.div_euclid(NONCE_PERIOD);
        let eq = |p: i64| {
            let expected = Self::nonce_of_period(key, p);
            bool::from(subtle_eq(expected.as_bytes(), nonce.as_bytes()))
        };
        eq(period) | eq(period - 1)
    }

    /// The URL the client called: the external base and the request's path (RFC 9449 §4.3
    /// check 9 ignores the query).
    fn request_url(&self, request: &Parts) -> String {
        // The path as the layer sees it: put the layer outside any `nest` (which strips its
        // prefix), or include the prefix in the base URL.
        let path = request.uri.path();
        let base = self.base.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// Records the proof; `Ok(false)` if seen before (or the in-process cache is full).
    async fn first_use(&self, jkt: &str, jti: &str, until: i64, now: i64) -> Result<bool, ()> {
        let mut key = [0u8; 32];
        key.copy_from_slice(digest(&SHA256, format!("{jkt}\n{jti}").as_bytes()).as_ref());
        if let Some(redis) = &self.redis {
            let mut conn = redis.clone();
            let set: Option<String> = redis::cmd("SET")
                .arg(format!("{DPOP_JTI_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(key)))
                .arg("1")
                .arg("NX")
                .arg("EX")
                .arg((until - now).max(1))
                .query_async(&mut conn)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "the DPoP replay cache (Redis) is unreachable");
                })?;
            return Ok(set.is_some());
        }
        // A poisoned lock still holds a consistent map: entries are inserted whole.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= REPLAY_CAPACITY {
            seen.retain(|_, until| *until > now);
        }
        if seen.get(&key).is_some_and(|u| *u > now) || seen.len() >= REPLAY_CAPACITY {
            return Ok(false);
        }
        seen.insert(key, until);
        Ok(true)
    }

    async fn check(
        &self,
        cnf: &Confirmation,
        token: &str,
        scheme: Scheme,
        request: &Parts,
    ) -> Result<(), ProofError> {
        let jkt = cnf.jkt.as_deref().ok_or(ProofError::Unsupported)?;
        // RFC 9449 §7.2: a DPoP-bound token is no bearer token.
        if scheme != Scheme::DPoP {
            return Err(ProofError::DpopBoundAsBearer);
        }
        // §4.3 check 1: exactly one `DPoP` header.
        let mut headers = request.headers.get_all("dpop").iter();
        let proof = match (headers.next(), headers.next()) {
            (Some(value), None) => value
                .to_str()
                .map_err(|_| ProofError::InvalidDpopProof("the DPoP header is not a JWT"))?,
            (None, _) => return Err(ProofError::InvalidDpopProof("no DPoP proof")),
            (Some(_), Some(_)) => {
                return Err(ProofError::InvalidDpopProof("more than one DPoP header"));
            }
        };
        let now = now();
        let url = self.request_url(request);
        let rules = ProofRules {
            method: request.method.as_str(),
            url: &url,
            now,
            max_age: self.max_age,
            leeway: DPOP_LEEWAY,
            access_token: Some(token),
        };
        let verified =
            verify_proof(proof, rules).map_err(|e| ProofError::InvalidDpopProof(describe(e)))?;
        // §9: the resource's nonce, when it requires one.
        if let Some(key) = &self.nonces
            && !self.nonce_accepted(key, verified.nonce.as_deref(), now)
        {
            let current = Self::nonce_of_period(key, now.div_euclid(NONCE_PERIOD));
            return Err(ProofError::UseDpopNonce(current));
        }
        // §7.1: the proof's key must be the one the token is bound to.
        if !bool::from(subtle_eq(verified.jkt.as_bytes(), jkt.as_bytes())) {
            return Err(ProofError::DpopKeyMismatch);
        }
        // §11.1: a proof is used once while it could be accepted.
        let until = now + self.max_age + DPOP_LEEWAY;
        match self.first_use(&verified.jkt, &verified.jti, until, now).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ProofError::InvalidDpopProof("the DPoP proof was already used")),
            // Fail closed: an unchecked proof could be a replay.
            Err(()) => Err(ProofError::Unavailable),
        }
    }
}

/// Constant-time comparison (the lengths are public).
fn subtle_eq(a: &[u8], b: &[u8]) -> subtle::Choice {
    subtle::ConstantTimeEq::ct_eq(a, b)
}

impl SenderConstraint for DpopCheck {
    fn verify<'a>(
        &'a self,
        cnf: &'a Confirmation,
        token: &'a str,
        scheme: Scheme,
        request: &'a Parts,
    ) -> ProofFuture<'a> {
        Box::pin(self.check(cnf, token, scheme, request))
    }

    fn dpop_algs(&self) -> Option<&str> {
        Some(&self.algs)
    }
}
