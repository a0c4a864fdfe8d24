//! One decision event per request: a structured log line (target `tessera::gateway::audit`)
//! and the Prometheus counter `tessera_gateway_requests_total{route, decision}`.
//!
//! An event carries who (sub, client_id, jti) and why, never a token: the `Identity` it reads
//! holds no credential.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};

use http::StatusCode;
use metrics::Counter;

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

/// How many decisions there are (the counters of a route are indexed by decision).
const DECISIONS: usize = Decision::Error as usize + 1;

/// The counter of `route` and `decision`. Handles are made once per pair and kept: looking one
/// up in the recorder builds an owned key and takes its lock, which is not paid per request.
/// The recorder must be installed before the first request (`Gateway::new` does).
fn counter(route: &str, decision: Decision) -> Counter {
    type Routes = HashMap<Box<str>, [Option<Counter>; DECISIONS]>;
    static COUNTERS: OnceLock<RwLock<Routes>> = OnceLock::new();
    let counters = COUNTERS.get_or_init(RwLock::default);
    let found = counters
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(route)
        .and_then(|by_decision| by_decision[decision as usize].clone());
    if let Some(counter) = found {
        return counter;
    }
    let counter = metrics::counter!(
        "tessera_gateway_requests_total",
        "route" => route.to_owned(),
        "decision" => decision.as_str()
    );
    let mut counters = counters.write().unwrap_or_else(PoisonError::into_inner);
    counters.entry(route.into()).or_insert_with(|| std::array::from_fn(|_| None))
        [decision as usize] = Some(counter.clone());
    counter
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
        counter(self.route, self.decision).increment(1);
    }
}
