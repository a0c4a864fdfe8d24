//! The one place where core errors become HTTP responses (RFC 6749 §5.2).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::{Error, ErrorCode};

/// A core error on its way out of an endpoint.
#[derive(Debug)]
pub struct OAuthError(pub Error);

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<tessera_core::store::StoreError> for OAuthError {
    fn from(e: tessera_core::store::StoreError) -> Self {
        Self(e.into())
    }
}

/// The status for each code: 401 for failed client authentication (with a challenge), 500 for
/// server faults, 400 for everything else the client caused (RFC 6749 §5.2).
fn status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::InvalidRequest
        | ErrorCode::InvalidGrant
        | ErrorCode::UnauthorizedClient
        | ErrorCode::UnsupportedGrantType
        | ErrorCode::InvalidScope
        // These travel in redirects from the authorization endpoint; as JSON they are 400s.
        | ErrorCode::UnsupportedResponseType
        | ErrorCode::InvalidTarget
        // RFC 8628 §3.5: polling answers are 400s like the other token errors.
        | ErrorCode::AuthorizationPending
        | ErrorCode::SlowDown
        | ErrorCode::ExpiredToken
        | ErrorCode::AccessDenied
        | ErrorCode::LoginRequired
        | ErrorCode::ConsentRequired => StatusCode::BAD_REQUEST,
    }
}

/// RFC 6749 §5.2: `error_description` is limited to %x20-21 / %x23-5B / %x5D-7E.
fn wire_safe(text: &str) -> String {
    text.chars()
        .map(|c| if matches!(c as u32, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e) { c } else { '\'' })
        .collect()
}

/// A JSON error body with the headers every token-endpoint response carries.
pub fn error_response(status: StatusCode, code: &str, description: Option<&str>) -> Response {
    let mut body = serde_json::json!({ "error": code });
    if let Some(d) = description {
        body["error_description"] = wire_safe(d).into();
    }
    let mut response = (status, axum::Json(body)).into_response();
    no_store(&mut response);
    response
}

/// RFC 6749 §5.1: responses with tokens or credentials are not cached.
pub fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        if code == ErrorCode::ServerError {
            tracing::error!(error = %self.0, "request failed with a server fault");
        }
        let mut response =
            error_response(status(code), code.as_str(), self.0.description().as_deref());
        if code == ErrorCode::InvalidClient {
            // RFC 6749 §5.2: a 401 carries the challenge of the scheme the client may use.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tessera\""),
            );
        }
        response
    }
}

/// Why an endpoint that authenticates clients refused a request: a protocol error, or the
/// client's rate limit (R4.2).
#[derive(Debug)]
pub enum Refusal {
    OAuth(Error),
    RateLimited(crate::rate_limit::Denied),
}

impl Refusal {
    /// The label for metrics and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OAuth(e) => e.code().as_str(),
            Self::RateLimited(_) => "rate_limited",
        }
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Self::OAuth(e)
    }
}

impl From<crate::rate_limit::Denied> for Refusal {
    fn from(d: crate::rate_limit::Denied) -> Self {
        Self::RateLimited(d)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::OAuth(e) => OAuthError(e).into_response(),
            Self::RateLimited(denied) => crate::rate_limit::too_many_requests(&denied),
        }
    }
}
