//! The one error vocabulary of the protocol core.
//!
//! Every variant names the violation, and every wire error code Tessera answers with is reached
//! by at least one variant; [`Error::code`] is the single exhaustive mapping to the wire codes
//! of RFC 6749 §5.2, RFC 6750 §3.1 and RFC 8628 §3.5 (and, as later grants arrive, RFC 8693
//! §2.2.2). The server's `oauth_error` turns an `Error` into HTTP in one exhaustive match.
//! Internal faults carry their cause for operators but leave the server as a bare
//! `server_error` with no description.

use std::borrow::Cow;
use std::fmt;

/// The wire vocabulary (RFC 6749 §5.2, RFC 6750 §3.1, RFC 8628 §3.5, RFC 7009 §2.2.1, …) is
/// shared with every HTTP edge through `tessera-http`, which needs no dependency for it.
pub use tessera_http::ErrorCode;

/// A protocol violation by the caller, or a server fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required parameter is absent.
    #[error("the `{0}` parameter is required")]
    MissingParameter(&'static str),
    /// RFC 6749 §3.2: parameters MUST NOT be included more than once.
    #[error("the `{0}` parameter is included more than once")]
    DuplicateParameter(String),
    /// A parameter is present but its value is malformed.
    #[error("the `{name}` parameter is malformed: {reason}")]
    MalformedParameter { name: &'static str, reason: Cow<'static, str> },
    /// The request as a whole is malformed (wrong content type, not a form, not UTF-8 …).
    #[error("{0}")]
    MalformedRequest(Cow<'static, str>),
    /// RFC 6749 §2.3: the client MUST NOT use more than one authentication method per request.
    #[error("more than one client authentication method was used")]
    MultipleClientAuthentication,
    /// No client authentication was offered where the client must authenticate.
    #[error("client authentication is required")]
    ClientAuthenticationMissing,
    /// Unknown client, wrong secret, or an authentication method the client did not register.
    /// The description is deliberately the same for every cause so it reveals nothing.
    #[error("client authentication failed")]
    ClientAuthenticationFailed,
    /// A `private_key_jwt` assertion failed a check of RFC 7523 §3 (or was replayed). The
    /// reason is safe to show: it names the rule, not the key.
    #[error("client authentication failed: {0}")]
    ClientAssertionRefused(&'static str),
    /// The client may not use this grant type (RFC 6749 §5.2 `unauthorized_client`).
    #[error("the client is not allowed to use the `{0}` grant type")]
    GrantTypeNotAllowed(&'static str),
    /// RFC 7662 §2.1: the authenticated client is not one allowed to introspect tokens.
    #[error("this client is not allowed to introspect tokens")]
    IntrospectionNotAllowed,
    /// RFC 6749 §5.2 `unsupported_grant_type`; OAuth 2.1 drops `password` and `implicit`.
    #[error("the grant type `{0}` is not supported")]
    UnsupportedGrantType(String),
    /// A requested scope exceeds what the client may ask for (RFC 6749 §3.3).
    #[error("the scope `{0}` is not allowed for this client")]
    ScopeNotAllowed(String),
    /// A refresh asked for more than the original grant (RFC 6749 §6).
    #[error("a refresh may only narrow the granted scope, never widen it")]
    ScopeWidened,
    /// No scope was requested and the client has no default scope (RFC 6749 §3.3).
    #[error("no scope was requested and the client has no default scope")]
    NoScope,
    /// RFC 8693 §2.1: a token exchange asked for a scope its subject token does not carry.
    #[error("the scope `{0}` is not in the subject token; an exchange may only narrow its scope")]
    ScopeBeyondSubject(String),
    /// RFC 8693 §2.2.2: the subject or actor token is invalid (unknown, expired, revoked, of
    /// another type) or unacceptable by policy, or the exchange asked for something Tessera
    /// does not issue (`invalid_request`, as the RFC requires).
    #[error("{0}")]
    TokenExchangeRefused(Cow<'static, str>),
    /// RFC 9449 §4.3 / §5: the DPoP proof is invalid, replayed, or required and missing
    /// (`invalid_dpop_proof`).
    #[error("{0}")]
    DpopProofInvalid(Cow<'static, str>),
    /// RFC 9449 §8: the DPoP proof lacks the server's current nonce (`use_dpop_nonce`).
    #[error("the DPoP proof must carry the nonce of the DPoP-Nonce header")]
    DpopNonceRequired,
    /// The scope parameter does not follow RFC 6749 §3.3 syntax.
    #[error("the scope parameter is malformed: {0}")]
    MalformedScope(Cow<'static, str>),
    /// RFC 6749 §4.1.3: the authorization code is unknown, expired, already used, or was
    /// issued to another client or for another redirect URI (`invalid_grant`).
    #[error("{0}")]
    CodeRefused(&'static str),
    /// RFC 7636 §4.6: the `code_verifier` does not match the code's challenge
    /// (`invalid_grant`).
    #[error("{0}")]
    PkceFailed(&'static str),
    /// OAuth 2.1 §4.3.1: a rotated refresh token was presented again; the grant has been
    /// revoked (`invalid_grant`).
    #[error("the refresh token was already used; the whole grant has been revoked")]
    RefreshTokenReused,
    /// Any other invalid grant: a refresh token or device code that is invalid, expired,
    /// revoked or already redeemed (RFC 6749 §5.2 `invalid_grant`).
    #[error("{0}")]
    InvalidGrant(Cow<'static, str>),
    /// RFC 6749 §4.1.2.1: only `response_type=code` is served (OAuth 2.1 drops `token`).
    #[error("the response type `{0}` is not supported; use `code`")]
    UnsupportedResponseType(String),
    /// RFC 8707 §2: the requested resource is unknown or not allowed for this client.
    #[error("the resource `{0}` is not allowed for this client")]
    InvalidTarget(String),
    /// The resource owner denied the request (RFC 6749 §4.1.2.1).
    #[error("the user denied the request")]
    AccessDenied,
    /// OIDC Core §3.1.2.6: `prompt=none` but the user is not signed in.
    #[error("the user is not signed in and prompt=none forbids asking")]
    LoginRequired,
    /// OIDC Core §3.1.2.6: `prompt=none` but consent is needed.
    #[error("consent is needed and prompt=none forbids asking")]
    ConsentRequired,
    /// RFC 6750 §3.1: the request to a protected resource carries no access token at all. Its
    /// code is `invalid_token` for logs and metrics, but on the wire it is a bare challenge:
    /// RFC 6750 §3.1 says such a request SHOULD NOT get an error code.
    #[error("an access token is required")]
    BearerTokenMissing,
    /// RFC 6750 §3.1 `invalid_request`: the access token was presented in a malformed way.
    #[error("{0}")]
    BearerTokenMalformed(&'static str),
    /// RFC 6750 §3.1: the bearer token is malformed, expired, revoked or not meant for this
    /// resource.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// RFC 6750 §3.1: the token is valid but lacks the scope the resource needs.
    #[error("the access token lacks the `{required}` scope")]
    InsufficientScope { required: &'static str },
    /// A rate limit was reached (requirements R4.2); retry after the given seconds.
    #[error("rate limit exceeded; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// RFC 8628 §3.5: the user has not decided yet; poll again after the interval.
    #[error("the user has not approved the request yet")]
    AuthorizationPending,
    /// RFC 8628 §3.5: polled sooner than the interval, which is now 5 seconds longer.
    #[error("polling too fast; wait 5 seconds longer between requests")]
    SlowDown,
    /// RFC 8628 §3.5: the device code expired before the user approved.
    #[error("the device code has expired")]
    ExpiredToken,
    /// RFC 7591 §3.2.2 `invalid_redirect_uri`.
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// RFC 7591 §3.2.2 `invalid_client_metadata`.
    #[error("{0}")]
    InvalidClientMetadata(String),
    /// A server fault. Its cause is logged, never sent to the peer.
    #[error("internal error: {0}")]
    Internal(#[from] InternalError),
    /// The database cannot be reached right now (RFC 6749 §4.1.2.1 / §5.2
    /// `temporarily_unavailable`, 503 with `Retry-After`): the request was not decided and may
    /// be repeated. Its cause is logged, never sent to the peer.
    #[error("the database is unreachable: {0}")]
    StoreUnavailable(InternalError),
}

impl Error {
    /// The single mapping from violations to wire error codes.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::MissingParameter(_)
            | Self::DuplicateParameter(_)
            | Self::MalformedParameter { .. }
            | Self::MalformedRequest(_)
            | Self::MultipleClientAuthentication
            | Self::TokenExchangeRefused(_) => ErrorCode::InvalidRequest,
            Self::ClientAuthenticationMissing
            | Self::ClientAuthenticationFailed
            | Self::ClientAssertionRefused(_) => ErrorCode::InvalidClient,
            Self::GrantTypeNotAllowed(_) | Self::IntrospectionNotAllowed => {
                ErrorCode::UnauthorizedClient
            }
            Self::UnsupportedGrantType(_) => ErrorCode::UnsupportedGrantType,
            Self::ScopeNotAllowed(_)
            | Self::ScopeWidened
            | Self::ScopeBeyondSubject(_)
            | Self::NoScope
            | Self::MalformedScope(_) => ErrorCode::InvalidScope,
            Self::CodeRefused(_)
            | Self::PkceFailed(_)
            | Self::RefreshTokenReused
            | Self::InvalidGrant(_) => ErrorCode::InvalidGrant,
            Self::UnsupportedResponseType(_) => ErrorCode::UnsupportedResponseType,
            Self::InvalidTarget(_) => ErrorCode::InvalidTarget,
            Self::DpopProofInvalid(_) => ErrorCode::InvalidDpopProof,
            Self::DpopNonceRequired => ErrorCode::UseDpopNonce,
            Self::AccessDenied => ErrorCode::AccessDenied,
            Self::LoginRequired => ErrorCode::LoginRequired,
            Self::ConsentRequired => ErrorCode::ConsentRequired,
            Self::BearerTokenMalformed(_) => ErrorCode::InvalidRequest,
            Self::BearerTokenMissing | Self::InvalidToken(_) => ErrorCode::InvalidToken,
            Self::InsufficientScope { .. } => ErrorCode::InsufficientScope,
            Self::RateLimited { .. } => ErrorCode::TooManyRequests,
            Self::AuthorizationPending => ErrorCode::AuthorizationPending,
            Self::SlowDown => ErrorCode::SlowDown,
            Self::ExpiredToken => ErrorCode::ExpiredToken,
            Self::InvalidRedirectUri(_) => ErrorCode::InvalidRedirectUri,
            Self::InvalidClientMetadata(_) => ErrorCode::InvalidClientMetadata,
            Self::Internal(_) => ErrorCode::ServerError,
            Self::StoreUnavailable(_) => ErrorCode::TemporarilyUnavailable,
        }
    }

    /// The `error_description` for the peer: the message, except for server faults, which
    /// leave as a bare `server_error`.
    pub fn description(&self) -> Option<String> {
        match self {
            Self::Internal(_) => None,
            Self::StoreUnavailable(_) => Some(STORE_UNAVAILABLE.to_owned()),
            other => Some(other.to_string()),
        }
    }
}

/// What the peer is told when the database is unreachable: the cause stays in the log.
pub const STORE_UNAVAILABLE: &str =
    "the authorization server cannot reach its database right now; retry shortly";

impl From<crate::client_metadata::MetadataError> for Error {
    fn from(e: crate::client_metadata::MetadataError) -> Self {
        use crate::client_metadata::MetadataError;
        match e {
            MetadataError::InvalidRedirectUri(why) => Self::InvalidRedirectUri(why),
            MetadataError::InvalidClientMetadata(why) => Self::InvalidClientMetadata(why),
        }
    }
}

/// A fault inside the server (storage, crypto). Displayed only to operators.
#[derive(Debug)]
pub struct InternalError {
    context: &'static str,
    cause: Box<dyn std::error::Error + Send + Sync>,
}

impl InternalError {
    pub fn new(
        context: &'static str,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self { context, cause: cause.into() }
    }
}

impl fmt::Display for InternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.cause)
    }
}

impl std::error::Error for InternalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}

/// The result type of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_5_2_server_errors_carry_no_description() {
        let err = Error::Internal(InternalError::new("db", "connection refused"));
        assert_eq!(err.code(), ErrorCode::ServerError);
        assert_eq!(err.description(), None);
    }

    #[test]
    fn rfc6749_4_1_2_1_unreachable_database_is_temporarily_unavailable_without_its_cause() {
        let cause = crate::store::StoreError::Unavailable("connection refused".into());
        let err = Error::from(cause);
        assert_eq!(err.code(), ErrorCode::TemporarilyUnavailable);
        assert_eq!(err.description().as_deref(), Some(STORE_UNAVAILABLE));
        assert!(err.to_string().contains("connection refused"), "the log keeps the cause");
        let other = Error::from(crate::store::StoreError::Backend("disk I/O error".into()));
        assert_eq!(other.code(), ErrorCode::ServerError);
    }

    #[test]
    fn rfc6749_4_1_3_refused_code_exchange_is_invalid_grant() {
        let err = Error::CodeRefused("the code was issued to another client");
        assert_eq!(err.code().as_str(), "invalid_grant");
    }

    #[test]
    fn rfc7636_4_6_pkce_failure_is_invalid_grant() {
        let err = Error::PkceFailed("code_verifier does not match the code_challenge");
        assert_eq!(err.code().as_str(), "invalid_grant");
    }

    #[test]
    fn oauth2_1_4_3_1_refresh_token_reuse_is_invalid_grant() {
        assert_eq!(Error::RefreshTokenReused.code().as_str(), "invalid_grant");
    }

    #[test]
    fn rfc6750_3_1_resource_errors_have_their_codes() {
        assert_eq!(Error::InvalidToken("expired").code().as_str(), "invalid_token");
        let scope = Error::InsufficientScope { required: "openid" };
        assert_eq!(scope.code().as_str(), "insufficient_scope");
        assert_eq!(Error::BearerTokenMalformed("two headers").code().as_str(), "invalid_request");
    }

    #[test]
    fn r4_2_rate_limited_is_too_many_requests_with_its_delay() {
        let err = Error::RateLimited { retry_after_secs: 3 };
        assert_eq!(err.code().as_str(), "too_many_requests");
        assert_eq!(err.description().as_deref(), Some("rate limit exceeded; retry after 3 s"));
    }

    #[test]
    fn rfc8693_2_2_2_refused_exchange_is_invalid_request_and_wider_scope_invalid_scope() {
        let refused = Error::TokenExchangeRefused("the subject token has expired".into());
        assert_eq!(refused.code().as_str(), "invalid_request");
        assert_eq!(Error::ScopeBeyondSubject("a:w".into()).code().as_str(), "invalid_scope");
    }

    #[test]
    fn rfc6749_5_2_client_authentication_failures_are_invalid_client() {
        assert_eq!(Error::ClientAuthenticationFailed.code().as_str(), "invalid_client");
        assert_eq!(Error::ClientAuthenticationMissing.code().as_str(), "invalid_client");
    }
}
