//! [`Rejection`]: why a request is refused, and its RFC 6750 §3 answer.

use std::sync::Arc;

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
}

impl Rejection {
    pub(crate) fn new(kind: RejectionKind, resource_metadata: Option<Arc<str>>) -> Self {
        Self { kind, resource_metadata }
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
        self.error_response().into_response()
    }
}
