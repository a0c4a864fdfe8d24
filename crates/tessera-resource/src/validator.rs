//! [`TokenValidator`]: the whole check of a request's access token.

use std::sync::Arc;

use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_http::{BearerError, BearerToken};
use tessera_jose::{AccessTokenClaims, Digested, Expiry, FetchError, TokenMemo, Typ, VerifyError};

use crate::config::{ConfigError, ValidatorConfig};
use crate::discovery::{DiscoveryError, discover};
use crate::introspection::{Introspected, Introspector};
use crate::keys::IssuerKeys;
use crate::layer::AuthLayer;
use crate::metadata;
use crate::principal::Principal;
use crate::proof::{ProofError, Scheme, SenderConstraint};
use crate::rejection::{Rejection, RejectionKind};
use crate::revocation::RevocationList;

/// Why a validator could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("cannot fetch the keys of {issuer}: {cause}")]
    Keys { issuer: String, cause: FetchError },
    #[error("cannot connect to the revocation list: {0}")]
    Revocation(#[from] redis::RedisError),
    #[error("{0} advertises no introspection_endpoint, but introspection is configured")]
    NoIntrospection(String),
    #[error(transparent)]
    Dpop(#[from] crate::proof::DpopSetupError),
}

/// One trusted issuer, discovered.
pub(crate) struct Issuer {
    pub issuer: String,
    pub audience: String,
    pub keys: Arc<IssuerKeys>,
    introspector: Option<Arc<Introspector>>,
}

pub(crate) struct Inner {
    pub resource: String,
    pub resource_metadata: Arc<str>,
    pub scopes_supported: Vec<String>,
    skew: i64,
    pub issuers: Vec<Issuer>,
    sender_constraint: Arc<dyn SenderConstraint>,
    /// RFC 9449 §7.1 `algs`, when DPoP is accepted.
    pub dpop_algs: Option<Arc<str>>,
    revocation: Option<Arc<RevocationList>>,
    /// JWT access tokens that passed every check of this validator (its audience included),
    /// by digest: a repeated token is neither decoded nor verified again.
    seen: TokenMemo<Seen>,
}

/// How many tokens a validator remembers whole. An entry (the `Principal` and its strings) is
/// ≈ 600 bytes, so 4,096 bound it to ≈ 2.5 MB; past that many tokens in use, the key set's
/// verifier still remembers 16,384 verified signatures (≈ 50 bytes each), so a token is
/// decoded again but its signature is not checked again.
const REMEMBERED_TOKENS: usize = 4_096;

/// What the validator remembers of a JWT access token that passed its checks.
#[derive(Clone)]
struct Seen {
    principal: Principal,
    /// The index of its issuer in `Inner::issuers`, and the generation of that issuer's key set
    /// it was verified under: served only while that set is still the one in use.
    issuer: usize,
    generation: u64,
}

/// Validates access tokens for one protected resource. Cheap to clone (shared state).
#[derive(Clone)]
pub struct TokenValidator(pub(crate) Arc<Inner>);

impl std::fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenValidator").field("resource", &self.0.resource).finish_non_exhaustive()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What the log may say about a refused token (never the token).
fn reason(error: VerifyError) -> &'static str {
    match error {
        VerifyError::Malformed => "malformed",
        VerifyError::WrongType => "wrong typ (RFC 9068 §4)",
        VerifyError::CriticalHeader => "crit header",
        VerifyError::AlgorithmNotAllowed => "algorithm not allowed (RFC 8725 §3.1)",
        VerifyError::NoKey => "no kid and several keys",
        VerifyError::UnknownKey => "unknown kid",
        VerifyError::AlgorithmMismatch => "alg does not match the key (RFC 8725 §3.1)",
        VerifyError::InvalidSignatureOrClaims => "bad signature or claims",
        VerifyError::WrongIssuer => "wrong iss (RFC 9068 §4)",
        VerifyError::Expired => "expired",
        VerifyError::NotYetValid => "not yet valid (nbf)",
    }
}

/// The unverified `iss` of a JWT, only to choose which issuer's keys to try.
fn peek_issuer(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    let payload = token.split('.').nth(1)?;
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Iss>(&json).ok().map(|c| c.iss)
}

/// RFC 6750 §2.1 `Bearer`, or RFC 9449 §7.1 `DPoP`, from the `Authorization` header.
fn presented(request: &Parts) -> Result<Option<(BearerToken, Scheme)>, BearerError> {
    if let Some(token) = BearerToken::from_headers(&request.headers)? {
        return Ok(Some((token, Scheme::Bearer)));
    }
    Ok(BearerToken::from_headers_with_scheme(&request.headers, "dpop")?
        .map(|token| (token, Scheme::DPoP)))
}

impl TokenValidator {
    /// Reads each issuer's metadata (RFC 8414) and first key set. Fails when the configuration
    /// is unusable or an issuer cannot be reached: better at start than at the first request.
    pub async fn discover(config: ValidatorConfig) -> Result<Self, SetupError> {
        config.check()?;
        let mut issuers = Vec::with_capacity(config.issuers.len());
        for trusted in &config.issuers {
            let found = discover(&trusted.issuer, config.allow_private_networks).await?;
            let keys = IssuerKeys::load(
                found.jwks_uri,
                config.allow_private_networks,
                config.refetch_cooldown,
            )
            .await
            .map_err(|cause| SetupError::Keys { issuer: trusted.issuer.clone(), cause })?;
            let introspector = match (&trusted.introspection, found.introspection_endpoint) {
                (None, _) => None,
                (Some(credentials), Some(endpoint)) => Some(Arc::new(Introspector::new(
                    endpoint,
                    trusted.issuer.clone(),
                    credentials.clone(),
                    config.allow_private_networks,
                    config.introspection_ttl,
                ))),
                (Some(_), None) => return Err(SetupError::NoIntrospection(trusted.issuer.clone())),
            };
            issuers.push(Issuer {
                issuer: trusted.issuer.clone(),
                audience: trusted.audience.clone(),
                keys,
                introspector,
            });
        }
        let revocation = match &config.revocation {
            Some(list) => Some(Arc::new(RevocationList::connect(list).await?)),
            None => None,
        };
        let resource_metadata = metadata::metadata_url(&config.resource).into();
        Ok(Self(Arc::new(Inner {
            resource: config.resource,
            resource_metadata,
            scopes_supported: config.scopes_supported,
            skew: config.skew.as_secs() as i64,
            issuers,
            dpop_algs: config.sender_constraint.dpop_algs().map(Arc::from),
            sender_constraint: config.sender_constraint,
            revocation,
            seen: TokenMemo::new(REMEMBERED_TOKENS),
        })))
    }

    /// A validator for another resource trusting the same issuers, whose tokens must name
    /// `resource` in `aud` at every issuer (RFC 9068 §4), with its own RFC 9728 metadata and
    /// memo of accepted tokens. It shares this validator's key sets, introspection caches and
    /// revocation list: a gateway protecting several audiences reads each issuer's metadata
    /// and keys once, and a key rotation seen by one is seen by all.
    pub fn for_resource<S: Into<String>>(
        &self,
        resource: impl Into<String>,
        scopes_supported: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        let resource = resource.into();
        match url::Url::parse(&resource) {
            Ok(url) if url.fragment().is_none() && url.has_host() => {}
            _ => return Err(ConfigError::Resource(resource)),
        }
        let issuers = self
            .0
            .issuers
            .iter()
            .map(|i| Issuer {
                issuer: i.issuer.clone(),
                audience: resource.clone(),
                keys: i.keys.clone(),
                introspector: i.introspector.clone(),
            })
            .collect();
        Ok(Self(Arc::new(Inner {
            resource_metadata: metadata::metadata_url(&resource).into(),
            resource,
            scopes_supported: scopes_supported.into_iter().map(Into::into).collect(),
            skew: self.0.skew,
            issuers,
            dpop_algs: self.0.dpop_algs.clone(),
            sender_constraint: self.0.sender_constraint.clone(),
            revocation: self.0.revocation.clone(),
            // Its own: what passed this validator's audience check says nothing of another's.
            seen: TokenMemo::new(REMEMBERED_TOKENS),
        })))
    }

    /// This API's identifier (RFC 9728 `resource`).
    pub fn resource(&self) -> &str {
        &self.0.resource
    }

    /// The URL of this API's protected resource metadata (RFC 9728 §3.1), as named in every
    /// challenge (§5.1).
    pub fn resource_metadata_url(&self) -> &str {
        &self.0.resource_metadata
    }

    /// The tower layer that authenticates every request of the routes it wraps.
    pub fn layer(&self) -> AuthLayer {
        AuthLayer::new(self.clone())
    }

    /// How many times `issuer`'s JWKS has been fetched since start (metrics, tests).
    pub fn jwks_fetches(&self, issuer: &str) -> Option<u64> {
        self.0.issuers.iter().find(|i| i.issuer == issuer).map(|i| i.keys.fetches())
    }

    /// How many introspection requests were sent to `issuer` since start (metrics, tests).
    pub fn introspections(&self, issuer: &str) -> Option<u64> {
        let issuer = self.0.issuers.iter().find(|i| i.issuer == issuer)?;
        issuer.introspector.as_deref().map(Introspector::requests)
    }

    fn reject(&self, kind: RejectionKind) -> Rejection {
        Rejection::new(kind, Some(self.0.resource_metadata.clone()))
            .with_dpop(self.0.dpop_algs.clone())
    }

    /// The answer to a refused proof of possession: DPoP's own errors (RFC 9449 §7.1, §9) or
    /// `invalid_token`.
    fn proof_refused(&self, error: ProofError) -> Rejection {
        tracing::info!(error = %error, "sender-constrained token refused");
        self.reject(match error {
            ProofError::InvalidDpopProof(description) => {
                RejectionKind::InvalidDpopProof(description)
            }
            ProofError::UseDpopNonce(nonce) => RejectionKind::UseDpopNonce(nonce),
            ProofError::DpopKeyMismatch => RejectionKind::DpopBindingInvalid("DPoP key binding"),
            ProofError::DpopBoundAsBearer => {
                RejectionKind::DpopBindingInvalid("DPoP-bound token as bearer")
            }
            ProofError::Unavailable => RejectionKind::Unavailable("proof of possession check"),
            _ => RejectionKind::InvalidToken("proof of possession"),
        })
    }

    fn invalid(&self, reason: &'static str) -> Rejection {
        tracing::info!(reason, "access token refused");
        self.reject(RejectionKind::InvalidToken(reason))
    }

    /// Authenticates a request from its parts: the token from `Authorization` (RFC 6750
    /// §2.1), then every check of [`Self::validate`]. This is the whole decision; the layer
    /// and a gateway call it alike.
    pub async fn authenticate(&self, request: &Parts) -> Result<Principal, Rejection> {
        let (token, scheme) = match presented(request) {
            Ok(Some(found)) => found,
            Ok(None) => return Err(self.reject(RejectionKind::MissingToken)),
            Err(e) => return Err(self.reject(RejectionKind::Malformed(e))),
        };
        self.validate(token.as_str(), scheme, request).await
    }

    /// Validates `token` presented with `scheme` on `request`.
    pub async fn validate(
        &self,
        token: &str,
        scheme: Scheme,
        request: &Parts,
    ) -> Result<Principal, Rejection> {
        let now = now();
        // A JWS compact serialization has three parts (RFC 7515 §7.1); anything else is opaque.
        let principal = if token.split('.').count() == 3 {
            self.jwt_principal(token, now).await?
        } else {
            // Boxed, as every path that may wait on the network: the common one, a token seen
            // before, does not carry their state in its future.
            Box::pin(self.validate_opaque(token, now)).await?
        };
        // RFC 7800 §3 / RFC 9449 §7.1 / RFC 8705 §3: a bound token needs its proof.
        match principal.confirmation() {
            Some(cnf) => {
                if let Err(e) =
                    Box::pin(self.0.sender_constraint.verify(cnf, token, scheme, request)).await
                {
                    return Err(self.proof_refused(e));
                }
            }
            // RFC 9449 §7.1: the DPoP scheme is for DPoP-bound tokens only.
            None if scheme == Scheme::DPoP => return Err(self.invalid("DPoP scheme, no cnf")),
            None => {}
        }
        // R7.4: a token revoked at the authorization server is refused here too.
        if let (Some(list), Some(jti)) = (&self.0.revocation, principal.jti()) {
            match list.is_revoked(jti).await {
                Ok(false) => {}
                Ok(true) => return Err(self.invalid("revoked (revocation list)")),
                Err(_) => return Err(self.reject(RejectionKind::Unavailable("revocation list"))),
            }
        }
        Ok(principal)
    }

    /// RFC 7662: an opaque token is what an issuer's introspection endpoint says it is.
    async fn validate_opaque(&self, token: &str, now: i64) -> Result<Principal, Rejection> {
        for issuer in &self.0.issuers {
            let Some(introspector) = &issuer.introspector else { continue };
            match introspector.introspect(token, now).await {
                Ok(Some(answer)) => return self.accept_introspected(issuer, &answer, now),
                Ok(None) => {}
                Err(e) => {
                    // The endpoint failed, not the token: refuse for now, cache nothing.
                    tracing::warn!(issuer = %issuer.issuer, error = %e, "introspection failed");
                    return Err(self.reject(RejectionKind::Unavailable("introspection")));
                }
            }
        }
        Err(self.invalid("opaque token inactive or not introspectable"))
    }

    /// The checks of an active introspection answer, made on every use (also from the cache).
    fn accept_introspected(
        &self,
        issuer: &Issuer,
        answer: &Introspected,
        now: i64,
    ) -> Result<Principal, Rejection> {
        // RFC 7662 §2.2: a refresh token may be described as active; it is no access token.
        if answer.token_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("refresh_token")) {
            return Err(self.invalid("introspected a refresh token"));
        }
        if answer.iss.as_deref().is_some_and(|iss| iss != issuer.issuer) {
            return Err(self.invalid("introspection names another iss"));
        }
        let exp = answer.exp.ok_or_else(|| self.invalid("introspection gave no exp"))?;
        if exp <= now - self.0.skew {
            return Err(self.invalid(reason(VerifyError::Expired)));
        }
        // The same audience rule as for JWTs (RFC 9068 §4; RFC 7662 §2.2 `aud`).
        if !answer.aud.contains(&issuer.audience) {
            return Err(self.invalid("aud does not name this resource"));
        }
        Ok(Principal::from_introspection(
            &issuer.issuer,
            answer,
            exp,
            self.0.resource_metadata.clone(),
        ))
    }

    /// The principal of a JWT access token. A token that passed every check before, under the
    /// key set its issuer still uses, comes from the memo; its expiry is the memo entry's end.
    /// What can change between two presentations (revocation, the proof of a bound token) the
    /// caller checks on every one.
    async fn jwt_principal(&self, token: &str, now: i64) -> Result<Principal, Rejection> {
        let token = Digested::new(Typ::ACCESS_TOKEN, token);
        if let Some(seen) = self.0.seen.get(token.digest(), now)
            && self.0.issuers.get(seen.issuer).map(|i| i.keys.generation()) == Some(seen.generation)
        {
            return Ok(seen.principal);
        }
        let (claims, issuer, generation) = Box::pin(self.validate_jwt(&token, now)).await?;
        // RFC 7519 §4.1.4 as `validate_jwt` applies it: refused from `exp + skew` on.
        let valid_until = claims.exp.saturating_add(self.0.skew);
        let principal = Principal::from_jwt(claims, self.0.resource_metadata.clone());
        let seen = Seen { principal: principal.clone(), issuer, generation };
        self.0.seen.insert(*token.digest(), valid_until, seen, now);
        Ok(principal)
    }

    /// RFC 9068 §4 and RFC 8725: every check of a JWT access token; the claims, with the index
    /// of the issuer and the generation of the key set that verified them.
    async fn validate_jwt(
        &self,
        token: &Digested<'_>,
        now: i64,
    ) -> Result<(AccessTokenClaims, usize, u64), Rejection> {
        let (index, issuer) = match self.0.issuers.as_slice() {
            // One issuer: `iss` is compared exactly by the verifier anyway.
            [only] => (0, only),
            several => {
                let iss =
                    peek_issuer(token.token()).ok_or_else(|| self.invalid("no readable iss"))?;
                several
                    .iter()
                    .enumerate()
                    .find(|(_, i)| i.issuer == iss)
                    .ok_or_else(|| self.invalid("unknown iss"))?
            }
        };
        let skew = self.0.skew;
        let mut keys = issuer.keys.current();
        let claims = loop {
            // The verifier checks `nbf` against its `now`: given `now + skew`, a token is
            // accepted up to `skew` seconds early. `exp` and `iat` are checked below, with the
            // same tolerance the other way.
            let verified = keys.verifier.verify_digested::<AccessTokenClaims>(
                token,
                &issuer.issuer,
                now + skew,
                Expiry::Ignore,
            );
            match verified {
                Ok(verified) => break verified.into_claims(),
                // A key published after the cached set: fetch the set again (single flight,
                // cooldown) and try once more with the newer set.
                Err(VerifyError::UnknownKey) => {
                    match issuer.keys.after_unknown_kid(keys.generation).await {
                        Some(newer) => keys = newer,
                        None => return Err(self.invalid(reason(VerifyError::UnknownKey))),
                    }
                }
                Err(e) => return Err(self.invalid(reason(e))),
            }
        };
        // RFC 7519 §4.1.4: not accepted at or after `exp` (with the configured skew).
        if claims.exp <= now - skew {
            return Err(self.invalid(reason(VerifyError::Expired)));
        }
        // RFC 7519 §4.1.6 / RFC 8725 §3.10: a token issued in the future is not genuine.
        if claims.iat > now + skew {
            return Err(self.invalid("iat in the future"));
        }
        // RFC 9068 §4: the resource MUST check that `aud` contains its identifier.
        if !claims.aud.contains(&issuer.audience) {
            return Err(self.invalid("aud does not name this resource (RFC 9068 §4)"));
        }
        Ok((claims, index, keys.generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_issuer_reads_only_a_well_formed_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://i"}"#);
        assert_eq!(peek_issuer(&format!("h.{payload}.s")).as_deref(), Some("https://i"));
        assert_eq!(peek_issuer("h.!!.s"), None);
        assert_eq!(peek_issuer("nodots"), None);
    }
}
