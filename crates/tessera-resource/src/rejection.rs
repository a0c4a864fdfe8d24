//! [`Rejection`]: why a request is refused, and its RFC 6750 §3 answer.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_http::{BearerError, Challenge, ErrorCode, ErrorResponse};

/// Why the request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionKind {
    /// RFC 6750 §3.1: no credentials at all — a challenge without an error code.
    MissingToken,
    /// RFC 6750 §3.1 `invalid_request`: the `Authorization` header is malformed.
    Malformed(BearerError),
    /// RFC 6750 §3.1 `invalid_token`. The reason is for the operator's log only: the answer
    /// carries no description that would tell an attacker which check failed.
    InvalidToken(&'static str),
    /// RFC 6750 §3.1 `insufficient_scope`, naming every scope the route needs.
    InsufficientScope(String),
    /// RFC 9449 §7.1 `invalid_dpop_proof`: the DPoP proof is missing or fails a check; the
    /// description is about the client's own proof, so it is told.
    InvalidDpopProof(&'static str),
    /// RFC 9449 §9 `use_dpop_nonce`: the proof must carry this nonce (sent as `DPoP-Nonce`).
    UseDpopNonce(String),
    /// RFC 9449 §7.1/§7.2 `invalid_token` under the `DPoP` scheme: the token is bound to
    /// another key than the proof's, or was presented as a bearer token.
    DpopBindingInvalid(&'static str),
    /// A check that must not be skipped could not be made (the revocation list or the
    /// introspection endpoint is unreachable): `503`, try again.
    Unavailable(&'static str),
}

/// A refusal, rendered by its [`IntoResponse`]: status, `WWW-Authenticate` with
/// `resource_metadata` (RFC 9728 §5.1), and an RFC 6750 error body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    kind: RejectionKind,
    resource_metadata: Option<Arc<str>>,
    /// The DPoP proof algorithms, when the resource accepts DPoP (RFC 9449 §7.1 `algs`).
    dpop_algs: Option<Arc<str>>,
}

impl Rejection {
    pub(crate) fn new(kind: RejectionKind, resource_metadata: Option<Arc<str>>) -> Self {
        Self { kind, resource_metadata, dpop_algs: None }
    }

    /// A resource that accepts DPoP also offers the `DPoP` challenge (RFC 9449 §7.1).
    pub(crate) fn with_dpop(mut self, algs: Option<Arc<str>>) -> Self {
        self.dpop_algs = algs;
        self
    }

    fn is_dpop(&self) -> bool {
        matches!(
            self.kind,
            RejectionKind::InvalidDpopProof(_)
                | RejectionKind::UseDpopNonce(_)
                | RejectionKind::DpopBindingInvalid(_)
        )
    }

    fn dpop_challenge(&self) -> Challenge {
        let challenge = Challenge::dpop();
        match &self.dpop_algs {
            Some(algs) => challenge.algs(algs.as_ref()),
            None => challenge,
        }
    }

    pub fn kind(&self) -> &RejectionKind {
        &self.kind
    }

    /// The response this refusal is answered with (also through [`IntoResponse`]).
    pub fn error_response(&self) -> ErrorResponse {
        let mut challenge = Challenge::bearer();
        let response = match &self.kind {
            RejectionKind::MissingToken => {
                return ErrorResponse::unauthenticated(self.with_metadata(challenge));
            }
            RejectionKind::Malformed(error) => {
                challenge = challenge.error(ErrorCode::InvalidRequest, None);
                ErrorResponse::new(ErrorCode::InvalidRequest).description(error.description())
            }
            RejectionKind::InvalidToken(_) => {
                challenge = challenge.error(ErrorCode::InvalidToken, None);
                ErrorResponse::new(ErrorCode::InvalidToken)
            }
            RejectionKind::InsufficientScope(scope) => {
                challenge = challenge.error(ErrorCode::InsufficientScope, None).scope(scope);
                ErrorResponse::new(ErrorCode::InsufficientScope)
                    .description(format!("the request needs the scope {scope}"))
            }
            RejectionKind::InvalidDpopProof(description) => {
                challenge =
                    self.dpop_challenge().error(ErrorCode::InvalidDpopProof, Some(description));
                ErrorResponse::new(ErrorCode::InvalidDpopProof)
                    .status(StatusCode::UNAUTHORIZED)
                    .description(*description)
            }
            RejectionKind::UseDpopNonce(_) => {
                let description = "the DPoP proof must carry the nonce of DPoP-Nonce";
                challenge = self.dpop_challenge().error(ErrorCode::UseDpopNonce, Some(description));
                ErrorResponse::new(ErrorCode::UseDpopNonce)
                    .status(StatusCode::UNAUTHORIZED)
                    .description(description)
            }
            RejectionKind::DpopBindingInvalid(_) => {
                challenge = self.dpop_challenge().error(ErrorCode::InvalidToken, None);
                ErrorResponse::new(ErrorCode::InvalidToken)
            }
            RejectionKind::Unavailable(_) => {
                return ErrorResponse::new(ErrorCode::TemporarilyUnavailable).retry_after(1);
            }
        };
        response.challenge(self.with_metadata(challenge))
    }

    fn with_metadata(&self, challenge: Challenge) -> Challenge {
        match &self.resource_metadata {
            Some(url) => challenge.resource_metadata(url.as_ref()),
            None => challenge,
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut response = self.error_response().into_response();
        let unauthorized = response.status() == StatusCode::UNAUTHORIZED;
        let headers = response.headers_mut();
        // RFC 9449 §7.1: a resource accepting both schemes offers both challenges; the one
        // carrying the error comes first.
        if self.dpop_algs.is_some() && !self.is_dpop() && unauthorized {
            let challenge = self.with_metadata(self.dpop_challenge());
            headers.append(header::WWW_AUTHENTICATE, challenge.to_header_value());
        }
        // RFC 9449 §9: the nonce the next proof must carry.
        if let RejectionKind::UseDpopNonce(nonce) = &self.kind
            && let Ok(value) = HeaderValue::from_str(nonce)
        {
            headers.insert("dpop-nonce", value);
        }
        response
    }
}
