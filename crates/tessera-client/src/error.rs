//! The one error type of the client library.

use tessera_http::ErrorCode;

/// Everything that can go wrong on the client side, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The peer could not be reached, or did not answer in time.
    #[error("cannot reach {url}: {source}")]
    Network {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The peer answered something that is not the JSON the protocol asks for.
    #[error("{url} answered HTTP {status} with a body that is not JSON; is this an OAuth server?")]
    NotJson { url: String, status: u16 },
    /// The peer answered with more than [`crate::http::MAX_BODY`] bytes.
    #[error("{url} answered with too large a body")]
    TooLarge { url: String },
    /// An OAuth error response (RFC 6749 §5.2).
    #[error("{0}")]
    OAuth(OAuthError),
    /// A server's metadata is unusable (RFC 8414 §3.3, OIDC Discovery §4.3).
    #[error("discovery: {0}")]
    Discovery(String),
    /// A URL that credentials would travel to is neither https nor loopback http.
    #[error("{what} `{url}` is not https (plain http only on a loopback address)")]
    InsecureUrl { what: &'static str, url: String },
    /// A token response is malformed (RFC 6749 §5.1).
    #[error("the token response is invalid: {0}")]
    InvalidTokenResponse(&'static str),
    /// The token endpoint failed and no unexpired token is left to serve (the circuit breaker
    /// is open, or the last attempt failed).
    #[error("no valid token: the token endpoint is unavailable ({reason})")]
    Unavailable { reason: String },
    /// The callback of an authorization request failed a check (state, iss, error).
    #[error("the authorization response is refused: {0}")]
    Callback(CallbackError),
    /// The ID token failed OIDC Core §3.1.3.7.
    #[error("the ID token is refused: {0}")]
    IdToken(#[from] tessera_jose::IdTokenError),
    /// The issuer's keys could not be obtained.
    #[error("cannot fetch the issuer's keys: {0}")]
    Jwks(#[from] tessera_jose::FetchError),
    /// The shared cache failed; the caller is served without it where possible.
    #[error("the shared token cache failed: {0}")]
    SharedCache(String),
    /// The library was configured with something unusable.
    #[error("configuration: {0}")]
    Config(String),
}

/// An OAuth error answer (RFC 6749 §5.2, RFC 6750 §3.1, RFC 8628 §3.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    /// The code, when it is one of the registered codes.
    pub code: Option<ErrorCode>,
    /// The code as sent.
    pub raw_code: String,
    pub description: Option<String>,
}

impl OAuthError {
    /// Whether retrying the same request cannot succeed: the credentials, the grant or the
    /// request itself were refused (RFC 6749 §5.2). Server faults, rate limits and unknown
    /// codes are worth another try later.
    pub fn is_definitive(&self) -> bool {
        match self.code {
            Some(
                ErrorCode::InvalidRequest
                | ErrorCode::InvalidClient
                | ErrorCode::InvalidGrant
                | ErrorCode::UnauthorizedClient
                | ErrorCode::UnsupportedGrantType
                | ErrorCode::InvalidScope
                | ErrorCode::InvalidTarget
                | ErrorCode::AccessDenied
                | ErrorCode::ExpiredToken,
            ) => true,
            Some(_) => false,
            None => (400..500).contains(&self.status) && self.status != 429,
        }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {d}", self.raw_code),
            None => f.write_str(&self.raw_code),
        }
    }
}

/// Why an authorization response (the redirect back to the client) is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// RFC 6749 §10.12: the `state` is unknown, already used or expired.
    #[error("unknown or already used state")]
    UnknownState,
    /// RFC 9207 §2.4: the `iss` parameter is missing or names another issuer.
    #[error("the iss parameter is missing or names another issuer")]
    WrongIssuer,
    /// RFC 6749 §4.1.2.1: the server answered with an error.
    #[error("the authorization server answered {0}")]
    Denied(String),
    /// The response carries no `code`.
    #[error("the response has no code")]
    MissingCode,
}

impl Error {
    /// The OAuth error code of the answer, if this is an OAuth error.
    pub fn oauth_code(&self) -> Option<ErrorCode> {
        match self {
            Error::OAuth(e) => e.code,
            _ => None,
        }
    }

    /// Whether the same request may succeed later (network, server faults, rate limits).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Network { .. } | Error::NotJson { .. } | Error::TooLarge { .. } => true,
            Error::OAuth(e) => !e.is_definitive(),
            Error::Unavailable { .. } | Error::SharedCache(_) => true,
            _ => false,
        }
    }
}
