//! One decision event per request: a structured log line (target `tessera::gateway::audit`)
//! and the Prometheus counter `tessera_gateway_requests_total{route, decision}`.
//!
//! An event carries who (sub, client_id, jti) and why, never a token: the `Identity` it reads
//! holds no credential.

use http::StatusCode;

use crate::identity::Identity;

/// What the gateway decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Anonymous,
    Unauthenticated,
    Forbidden,
    RateLimited,
    Unavailable,
    NoRoute,
    TooLarge,
    BadRequest,
    UpstreamError,
    UpstreamTimeout,
    /// The authorization server would not exchange the client's token for the upstream's.
    ExchangeRefused,
    /// No token could be obtained for the upstream (the gateway's side failed).
    ExchangeFailed,
    Error,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Anonymous => "anonymous",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::NoRoute => "no_route",
            Self::TooLarge => "too_large",
            Self::BadRequest => "bad_request",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::ExchangeRefused => "exchange_refused",
            Self::ExchangeFailed => "exchange_failed",
            Self::Error => "error",
        }
    }
}

/// The decision event of one request, built up along the way and emitted once.
#[must_use = "an event is recorded only by emit()"]
pub struct Event<'a> {
    route: &'a str,
    decision: Decision,
    reason: &'static str,
    identity: Option<&'a Identity>,
    status: Option<StatusCode>,
}

impl<'a> Event<'a> {
    pub fn new(route: &'a str, decision: Decision, reason: &'static str) -> Self {
        Self { route, decision, reason, identity: None, status: None }
    }

    pub fn identity(mut self, identity: &'a Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    pub fn decision(mut self, decision: Decision, reason: &'static str) -> Self {
        self.decision = decision;
        self.reason = reason;
        self
    }

    /// The upstream's status, for an allowed request.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn emit(self) {
        let (sub, client_id, jti) = match self.identity {
            Some(i) => (i.subject.as_str(), i.client_id.as_str(), i.jti.as_deref().unwrap_or("")),
            None => ("", "", ""),
        };
        tracing::info!(
            target: "tessera::gateway::audit",
            route = self.route,
            decision = self.decision.as_str(),
            reason = self.reason,
            sub,
            client_id,
            jti,
            upstream_status = self.status.map(|s| s.as_u16()),
            "decision"
        );
        metrics::counter!(
            "tessera_gateway_requests_total",
            "route" => self.route.to_owned(),
            "decision" => self.decision.as_str()
        )
        .increment(1);
    }
}
