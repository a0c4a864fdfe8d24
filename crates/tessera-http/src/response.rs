//! An OAuth error as an HTTP response: status, JSON body (RFC 6749 §5.2), the challenge, the
//! retry delay, and no caching.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ErrorCode;
use crate::challenge::{Challenge, quoted_safe};

/// An error answer. Build it from a code, add what the situation needs, return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorResponse {
    status: StatusCode,
    code: Option<ErrorCode>,
    description: Option<String>,
    challenge: Option<Challenge>,
    retry_after_secs: Option<u64>,
}

impl ErrorResponse {
    /// `{"error": code}` with the code's status ([`ErrorCode::status`]).
    pub fn new(code: ErrorCode) -> Self {
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self {
            status,
            code: Some(code),
            description: None,
            challenge: None,
            retry_after_secs: None,
        }
    }

    /// RFC 6750 §3.1: a request without any credentials is answered with the challenge alone,
    /// no error code (and so no body).
    pub fn unauthenticated(challenge: Challenge) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: None,
            description: None,
            challenge: Some(challenge),
            retry_after_secs: None,
        }
    }

    /// `error_description`. Ignored for `server_error`: a server fault leaves without detail.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        if self.code != Some(ErrorCode::ServerError) {
            self.description = Some(description.into());
        }
        self
    }

    /// A status other than the code's usual one (e.g. 413 for an oversized body).
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// `WWW-Authenticate`.
    pub fn challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// RFC 9110 §10.2.3 `Retry-After`, in whole seconds (at least 1).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    /// The code, if the answer carries one.
    pub fn code(&self) -> Option<ErrorCode> {
        self.code
    }

    /// The status the answer will have.
    pub fn status_code(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let mut response = match self.code {
            Some(code) => {
                let mut body = serde_json::json!({ "error": code.as_str() });
                if let Some(d) = &self.description {
                    // RFC 6749 §5.2: `error_description` is limited to %x20-21 / %x23-5B /
                    // %x5D-7E.
                    body["error_description"] = quoted_safe(d).into();
                }
                (self.status, axum::Json(body)).into_response()
            }
            None => self.status.into_response(),
        };
        no_store(&mut response);
        let headers = response.headers_mut();
        if let Some(challenge) = &self.challenge {
            headers.insert(header::WWW_AUTHENTICATE, challenge.to_header_value());
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// RFC 6749 §5.1 / RFC 6750 §3: answers with tokens, credentials or errors about them are not
/// cached.
pub fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn json(response: Response) -> serde_json::Value {
        let body = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&body).unwrap()
    }

    #[tokio::test]
    async fn rfc6749_5_2_error_body_with_description_and_no_store() {
        let response =
            ErrorResponse::new(ErrorCode::InvalidGrant).description("bad \"code\"").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[header::PRAGMA], "no-cache");
        assert_eq!(
            json(response).await,
            serde_json::json!({"error": "invalid_grant", "error_description": "bad 'code'"})
        );
    }

    #[tokio::test]
    async fn rfc6749_5_2_server_error_never_carries_a_description() {
        let response =
            ErrorResponse::new(ErrorCode::ServerError).description("db down").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(json(response).await, serde_json::json!({"error": "server_error"}));
    }

    #[tokio::test]
    async fn rfc6585_4_too_many_requests_carries_retry_after() {
        let response =
            ErrorResponse::new(ErrorCode::TooManyRequests).retry_after(0).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[tokio::test]
    async fn rfc6750_3_1_no_credentials_is_a_bare_challenge() {
        let response =
            ErrorResponse::unauthenticated(Challenge::bearer().realm("r")).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer realm=\"r\"");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(body.is_empty());
    }
}
