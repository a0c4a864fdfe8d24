//! The OAuth error codes a peer can receive, with the HTTP status each one answers with.

/// Every error code Tessera's services put on the wire, in one enum. Each variant cites the
/// specification that registers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// RFC 6749 §5.2 / §4.1.2.1, RFC 6750 §3.1: the request is malformed.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed.
    InvalidClient,
    /// RFC 6749 §5.2: the grant (code, refresh token, device code) is invalid.
    InvalidGrant,
    /// RFC 6749 §5.2 / §4.1.2.1: the client may not use this grant or response type.
    UnauthorizedClient,
    /// RFC 6749 §5.2.
    UnsupportedGrantType,
    /// RFC 6749 §5.2 / §4.1.2.1.
    InvalidScope,
    /// RFC 6749 §4.1.2.1.
    UnsupportedResponseType,
    /// RFC 8707 §2: the requested resource is unknown or not allowed.
    InvalidTarget,
    /// RFC 9449 §5: the DPoP proof at the token endpoint is invalid.
    InvalidDpopProof,
    /// RFC 9449 §8: the proof must carry the server's current nonce (`DPoP-Nonce`).
    UseDpopNonce,
    /// RFC 6749 §4.1.2.1, RFC 8628 §3.5: the resource owner denied the request.
    AccessDenied,
    /// OIDC Core §3.1.2.6.
    LoginRequired,
    /// OIDC Core §3.1.2.6.
    ConsentRequired,
    /// RFC 6750 §3.1: the access token is expired, revoked, malformed or invalid.
    InvalidToken,
    /// RFC 6750 §3.1: the token lacks the privileges the request needs.
    InsufficientScope,
    /// RFC 8628 §3.5.
    AuthorizationPending,
    /// RFC 8628 §3.5.
    SlowDown,
    /// RFC 8628 §3.5.
    ExpiredToken,
    /// RFC 7009 §2.2.1: the server cannot revoke tokens of the presented type.
    UnsupportedTokenType,
    /// RFC 6749 §4.1.2.1: the server cannot serve the request now (overload, maintenance).
    TemporarilyUnavailable,
    /// A rate limit was reached (RFC 6585 §4 status 429; not an RFC 6749 registry entry,
    /// hence a name that says what happened).
    TooManyRequests,
    /// RFC 7591 §3.2.2: a redirect URI of a registration is invalid.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: a member of a registration's client metadata is invalid.
    InvalidClientMetadata,
    /// RFC 6749 §4.1.2.1 / §5.2 by extension: a server fault, always without description.
    ServerError,
}

impl ErrorCode {
    /// Every code, for parsing answers of a peer.
    pub const ALL: [ErrorCode; 20] = [
        Self::InvalidRequest,
        Self::InvalidClient,
        Self::InvalidGrant,
        Self::UnauthorizedClient,
        Self::UnsupportedGrantType,
        Self::InvalidScope,
        Self::UnsupportedResponseType,
        Self::InvalidTarget,
        Self::AccessDenied,
        Self::LoginRequired,
        Self::ConsentRequired,
        Self::InvalidToken,
        Self::InsufficientScope,
        Self::AuthorizationPending,
        Self::SlowDown,
        Self::ExpiredToken,
        Self::UnsupportedTokenType,
        Self::TemporarilyUnavailable,
        Self::TooManyRequests,
        Self::ServerError,
    ];

    /// The code a peer wrote on the wire (the client library reads token endpoint answers
    /// with it); `None` for a code this vocabulary does not know.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    /// The code as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::AccessDenied => "access_denied",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::TooManyRequests => "too_many_requests",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::ServerError => "server_error",
        }
    }

    /// The HTTP status a JSON answer with this code carries (the codes of the authorization
    /// endpoint travel in redirects instead; as JSON they are 400s).
    pub fn status(self) -> u16 {
        match self {
            // RFC 6749 §5.2: 401 when the client authenticated through a header (and the
            // caller adds the challenge); RFC 6750 §3.1: `invalid_token` is a 401.
            Self::InvalidClient | Self::InvalidToken => 401,
            // RFC 6750 §3.1.
            Self::InsufficientScope => 403,
            Self::TooManyRequests => 429,
            Self::TemporarilyUnavailable => 503,
            Self::ServerError => 500,
            // RFC 6749 §5.2: everything else the client caused is a 400, including the
            // RFC 8628 §3.5 polling answers and the RFC 7009 §2.2.1 refusal.
            Self::InvalidRequest
            | Self::InvalidGrant
            | Self::UnauthorizedClient
            | Self::UnsupportedGrantType
            | Self::InvalidScope
            | Self::UnsupportedResponseType
            | Self::InvalidTarget
            | Self::InvalidDpopProof
            | Self::UseDpopNonce
            | Self::AccessDenied
            | Self::LoginRequired
            | Self::ConsentRequired
            | Self::AuthorizationPending
            | Self::SlowDown
            | Self::ExpiredToken
            | Self::UnsupportedTokenType
            // RFC 7591 §3.2.2: registration errors are 400s.
            | Self::InvalidRedirectUri
            | Self::InvalidClientMetadata => 400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6750_3_1_token_errors_are_401_and_403() {
        assert_eq!(ErrorCode::InvalidToken.status(), 401);
        assert_eq!(ErrorCode::InsufficientScope.status(), 403);
        assert_eq!(ErrorCode::InsufficientScope.as_str(), "insufficient_scope");
    }

    #[test]
    fn every_code_parses_back_from_its_wire_form() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("Invalid_Client"), None);
        assert_eq!(ErrorCode::parse(""), None);
    }

    #[test]
    fn rfc6749_5_2_client_caused_errors_are_400_and_faults_500() {
        assert_eq!(ErrorCode::InvalidGrant.status(), 400);
        assert_eq!(ErrorCode::SlowDown.status(), 400);
        assert_eq!(ErrorCode::ServerError.status(), 500);
        assert_eq!(ErrorCode::TemporarilyUnavailable.as_str(), "temporarily_unavailable");
        assert_eq!(ErrorCode::UnsupportedTokenType.as_str(), "unsupported_token_type");
    }
}
