//! The gate every request passes before it is forwarded (or answered by forward-auth):
//! the token (`tessera-resource`'s validator, the same code an axum API uses), the route's
//! scopes, the route's rate limit.

use std::collections::HashMap;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use tessera_http::{ErrorCode, ErrorResponse};
use tessera_resource::{
    DpopCheck, IssuerConfig, Rejection, RejectionKind, RequireScope, SenderConstraints, SetupError,
    TokenValidator, ValidatorConfig,
};
use tessera_server::rate_limit::{Limit, RateLimiter};

use crate::config::{GatewayConfig, RateKey, RouteConfig};
use crate::identity::Identity;
use crate::observe::{Decision, Event};

/// One validator per audience (RFC 8707: a token is for one resource; the validator of a
/// route's audience accepts no token meant for another).
pub struct Gate {
    validators: HashMap<String, TokenValidator>,
    limiter: Option<Arc<RateLimiter>>,
}

/// A request let through: with the identity of its token, or anonymously.
pub struct Passed(Option<Identity>);

impl Passed {
    pub fn identity(&self) -> Option<&Identity> {
        self.0.as_ref()
    }

    /// The audit event of this request so far.
    pub fn event<'a>(&'a self, route: &'a RouteConfig) -> Event<'a> {
        let event = Event::new(&route.name, Decision::Allowed, "");
        match &self.0 {
            Some(identity) => event.identity(identity),
            None => event.decision(Decision::Anonymous, "anonymous route"),
        }
    }
}

/// A request refused at the gate, with its answer.
pub struct Denial {
    decision: Decision,
    reason: &'static str,
    identity: Option<Identity>,
    response: Response,
}

impl Denial {
    pub fn event<'a>(&'a self, route: &'a RouteConfig) -> Event<'a> {
        let event = Event::new(&route.name, self.decision, self.reason);
        match &self.identity {
            Some(identity) => event.identity(identity),
            None => event,
        }
    }

    pub fn status(&self) -> http::StatusCode {
        self.response.status()
    }
}

impl IntoResponse for Denial {
    fn into_response(self) -> Response {
        self.response
    }
}

fn rejected(rejection: Rejection, identity: Option<Identity>) -> Denial {
    let (decision, reason) = match rejection.kind() {
        RejectionKind::MissingToken => (Decision::Unauthenticated, "no token"),
        RejectionKind::Malformed(_) => (Decision::Unauthenticated, "malformed authorization"),
        RejectionKind::InvalidToken(reason) => (Decision::Unauthenticated, *reason),
        RejectionKind::InsufficientScope(_) => (Decision::Forbidden, "insufficient scope"),
        RejectionKind::Unavailable(reason) => (Decision::Unavailable, *reason),
        RejectionKind::InvalidDpopProof(reason) => (Decision::Unauthenticated, *reason),
        RejectionKind::UseDpopNonce(_) => (Decision::Unauthenticated, "DPoP nonce required"),
        RejectionKind::DpopBindingInvalid(reason) => (Decision::Unauthenticated, *reason),
        _ => (Decision::Unauthenticated, "refused"),
    };
    Denial { decision, reason, identity, response: rejection.into_response() }
}

impl Gate {
    /// Reads every issuer's metadata and keys once, and makes a validator for every protected
    /// route's audience on them (`TokenValidator::for_resource`: one key set per issuer,
    /// whatever the number of audiences).
    pub async fn discover(
        config: &GatewayConfig,
        limiter: Option<Arc<RateLimiter>>,
    ) -> Result<Self, SetupError> {
        // RFC 8705 §3: a certificate-bound token needs the request's certificate, which the
        // listener attaches (`app::attach_certificate`).
        // RFC 9449 §7: DPoP-bound tokens are accepted with a proof of their key, whose `htu`
        // is the public URL and the request's path; one replay cache for every route (in
        // Redis when configured, so shared by the gateway's instances).
        let mut dpop = DpopCheck::new(config.public_url.as_str())?;
        if let Some(url) = &config.redis_url {
            dpop = dpop.replay_cache_redis(url).await?;
        }
        let constraints: Arc<SenderConstraints> = Arc::new(SenderConstraints::new(
            Some(Arc::new(dpop)),
            Some(Arc::new(tessera_resource::CertificateBinding)),
        ));
        let mut validators: HashMap<String, TokenValidator> = HashMap::new();
        let mut first: Option<TokenValidator> = None;
        for route in config.routes.iter().filter(|r| !r.anonymous) {
            if validators.contains_key(&route.audience) {
                continue;
            }
            let mut scopes: Vec<String> = config
                .routes
                .iter()
                .filter(|r| r.audience == route.audience)
                .flat_map(|r| r.scopes.iter().chain(r.method_scopes.values().flatten()))
                .cloned()
                .collect();
            scopes.sort();
            scopes.dedup();
            let validator = match &first {
                Some(first) => first.for_resource(route.audience.clone(), scopes)?,
                None => {
                    let mut validator_config = ValidatorConfig::new(route.audience.clone())
                        .scopes_supported(scopes)
                        .allow_private_networks(config.allow_private_networks)
                        .sender_constraint(constraints.clone());
                    for issuer in &config.issuers {
                        validator_config = validator_config
                            .issuer(IssuerConfig::new(issuer.clone(), route.audience.clone()));
                    }
                    let validator = TokenValidator::discover(validator_config).await?;
                    first = Some(validator.clone());
                    validator
                }
            };
            validators.insert(route.audience.clone(), validator);
        }
        Ok(Self { validators, limiter })
    }

    /// The RFC 9728 metadata URL of `audience`'s validator, for challenges made outside it.
    pub fn resource_metadata_url(&self, audience: &str) -> Option<&str> {
        self.validators.get(audience).map(TokenValidator::resource_metadata_url)
    }

    /// The validators, one per protected audience (their metadata is served by the gateway).
    pub fn validators(&self) -> impl Iterator<Item = &TokenValidator> {
        self.validators.values()
    }

    /// Whether `request` may take `route` (an anonymous route needs no gate; a protected one
    /// is `503` until the issuers are loaded).
    pub async fn check(
        gate: Option<&Gate>,
        route: &RouteConfig,
        request: &Parts,
    ) -> Result<Passed, Denial> {
        if route.anonymous {
            return Ok(Passed(None));
        }
        match gate {
            Some(gate) => gate.check_token(route, request).await,
            None => {
                let response = ErrorResponse::new(ErrorCode::TemporarilyUnavailable)
                    .description("the gateway is starting")
                    .retry_after(crate::app::DISCOVERY_RETRY.as_secs())
                    .into_response();
                Err(Denial {
                    decision: Decision::Unavailable,
                    reason: "not ready",
                    identity: None,
                    response,
                })
            }
        }
    }

    async fn check_token(&self, route: &RouteConfig, request: &Parts) -> Result<Passed, Denial> {
        let Some(validator) = self.validators.get(&route.audience) else {
            // Every protected route's audience got a validator in `discover`.
            let response = ErrorResponse::new(ErrorCode::ServerError).into_response();
            return Err(Denial {
                decision: Decision::Error,
                reason: "no validator",
                identity: None,
                response,
            });
        };
        let principal = validator.authenticate(request).await.map_err(|r| rejected(r, None))?;
        // RFC 6750 §3.1 insufficient_scope, naming every scope the method needs.
        let required = route.scopes_for(&request.method);
        // The refusal (and its allocations) only when a scope is missing.
        if !required.iter().all(|s| principal.has_scope(s))
            && let Err(refusal) = RequireScope::all(required.iter().cloned()).check(&principal)
        {
            return Err(rejected(refusal, Some(Identity::new(principal))));
        }
        let identity = Identity::new(principal);
        if let (Some(limit), Some(limiter)) = (route.rate_limit, &self.limiter) {
            let who = match limit.key {
                RateKey::ClientId => identity.client_id(),
                RateKey::Subject => identity.subject(),
            };
            let key = format!("gw:{}:{who}", route.name);
            let limit = Limit::per_period(limit.requests, limit.period);
            if let Err(denied) = limiter.check(&key, limit).await {
                let response = ErrorResponse::new(ErrorCode::TooManyRequests)
                    .description("rate limit exceeded")
                    .retry_after(denied.retry_after_secs())
                    .into_response();
                return Err(Denial {
                    decision: Decision::RateLimited,
                    reason: "rate limit",
                    identity: Some(identity),
                    response,
                });
            }
        }
        Ok(Passed(Some(identity)))
    }
}
