//! What a resource server is told: who it is, whom it trusts, and how strictly to judge time.

use std::sync::Arc;
use std::time::Duration;

use crate::introspection::IntrospectionCredentials;
use crate::proof::{RefuseBoundTokens, SenderConstraint};
use crate::revocation::RevocationConfig;

/// The default clock skew: RFC 9068 §4 leaves it to the resource; a few seconds absorb clock
/// drift without extending a token's life noticeably.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(5);
/// The largest clock skew accepted: more would let an expired token live on for minutes.
pub const MAX_SKEW: Duration = Duration::from_secs(60);
/// The least time between two JWKS fetches caused by an unknown `kid` (a flood of forged kids
/// must not become a flood of fetches at the issuer).
pub const REFETCH_COOLDOWN: Duration = Duration::from_secs(30);

/// One trusted authorization server.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) introspection: Option<IntrospectionCredentials>,
}

impl IssuerConfig {
    /// Tokens of `issuer` (compared exactly with `iss`, RFC 9068 §4) are accepted when their
    /// `aud` contains `audience` (this API's identifier at that issuer).
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self { issuer: issuer.into(), audience: audience.into(), introspection: None }
    }

    /// Opaque tokens of this issuer are checked at its `introspection_endpoint` (RFC 7662),
    /// authenticating with `credentials`.
    pub fn introspection(mut self, credentials: IntrospectionCredentials) -> Self {
        self.introspection = Some(credentials);
        self
    }
}

/// Why a configuration cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("no issuer is trusted")]
    NoIssuer,
    #[error("issuer {0} is listed twice")]
    DuplicateIssuer(String),
    #[error("the clock skew may be at most 60 s")]
    SkewTooLarge,
    #[error("the introspection cache TTL must be 30 to 60 s")]
    IntrospectionTtl,
    #[error(
        "the resource identifier {0:?} is not an absolute URL without fragment (RFC 9728 §1.2)"
    )]
    Resource(String),
}

/// The configuration of a [`crate::TokenValidator`].
#[derive(Clone)]
pub struct ValidatorConfig {
    pub(crate) resource: String,
    pub(crate) issuers: Vec<IssuerConfig>,
    pub(crate) scopes_supported: Vec<String>,
    pub(crate) skew: Duration,
    pub(crate) allow_private_networks: bool,
    pub(crate) refetch_cooldown: Duration,
    pub(crate) introspection_ttl: Duration,
    pub(crate) revocation: Option<RevocationConfig>,
    pub(crate) sender_constraint: Arc<dyn SenderConstraint>,
}

impl std::fmt::Debug for ValidatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatorConfig")
            .field("resource", &self.resource)
            .field("issuers", &self.issuers)
            .field("skew", &self.skew)
            .finish_non_exhaustive()
    }
}

impl ValidatorConfig {
    /// `resource`: this API's identifier (RFC 9728 §2 `resource`, an https URL; its metadata
    /// is served at the well-known path derived from it).
    pub fn new(resource: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            issuers: Vec::new(),
            scopes_supported: Vec::new(),
            skew: DEFAULT_SKEW,
            allow_private_networks: false,
            refetch_cooldown: REFETCH_COOLDOWN,
            introspection_ttl: crate::introspection::MIN_TTL,
            revocation: None,
            sender_constraint: Arc::new(RefuseBoundTokens),
        }
    }

    /// Trusts one more issuer.
    pub fn issuer(mut self, issuer: IssuerConfig) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// The scopes advertised in the metadata (RFC 9728 §2 `scopes_supported`).
    pub fn scopes_supported<S: Into<String>>(
        mut self,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Tolerance for `exp`, `nbf` and `iat` (default 5 s, at most 60 s).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// Lets metadata, keys and introspection be fetched from loopback and private addresses,
    /// and over plain http there: for development and tests only (the SSRF guard of
    /// `tessera_jose::fetch` otherwise allows only https to global unicast addresses).
    pub fn allow_private_networks(mut self, allow: bool) -> Self {
        self.allow_private_networks = allow;
        self
    }

    /// The least time between two unknown-`kid` refetches of one issuer's JWKS (default 30 s).
    pub fn jwks_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.refetch_cooldown = cooldown;
        self
    }

    /// How long an active introspection answer is cached (30…60 s, default 30 s; never past
    /// the token's `exp`).
    pub fn introspection_cache_ttl(mut self, ttl: Duration) -> Self {
        self.introspection_ttl = ttl;
        self
    }

    /// Checks every token's `jti` against the revocation list the authorization server
    /// publishes to Redis (see `RevocationConfig`).
    pub fn revocation_list(mut self, config: RevocationConfig) -> Self {
        self.revocation = Some(config);
        self
    }

    /// The check of sender-constrained tokens (`cnf`, RFC 7800): DPoP (RFC 9449) or mTLS
    /// (RFC 8705). Without one, a bound token is refused (its proof cannot be checked).
    pub fn sender_constraint(mut self, check: Arc<dyn SenderConstraint>) -> Self {
        self.sender_constraint = check;
        self
    }

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.issuers.is_empty() {
            return Err(ConfigError::NoIssuer);
        }
        for (i, issuer) in self.issuers.iter().enumerate() {
            if self.issuers[..i].iter().any(|other| other.issuer == issuer.issuer) {
                return Err(ConfigError::DuplicateIssuer(issuer.issuer.clone()));
            }
        }
        if self.skew > MAX_SKEW {
            return Err(ConfigError::SkewTooLarge);
        }
        let ttl = crate::introspection::MIN_TTL..=crate::introspection::MAX_TTL;
        if !ttl.contains(&self.introspection_ttl) {
            return Err(ConfigError::IntrospectionTtl);
        }
        match url::Url::parse(&self.resource) {
            Ok(url) if url.fragment().is_none() && url.has_host() => Ok(()),
            _ => Err(ConfigError::Resource(self.resource.clone())),
        }
    }
}
