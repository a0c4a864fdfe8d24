//! The one place where core errors become HTTP responses: [`error_response`] is one exhaustive
//! `match` over `tessera_core::Error` deciding the challenge and the retry delay; the status
//! and body come from the wire code (`tessera_http`).

use axum::response::{IntoResponse, Response};
use tessera_core::Error;
use tessera_http::{Challenge, ErrorResponse};

/// The protection space named in `WWW-Authenticate` challenges (RFC 7617 §2, RFC 6750 §3).
pub const REALM: &str = "tessera";

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

/// The `Retry-After` of a request refused because the database is unreachable: the pool
/// reconnects on the next request, so a client may come back soon.
pub const STORE_RETRY_AFTER_SECS: u64 = 1;

/// The answer to a core error. Server faults are logged here and leave as a bare
/// `server_error` (the description is dropped by `ErrorResponse` itself).
pub fn error_response(error: &Error) -> ErrorResponse {
    let code = error.code();
    let mut answer = ErrorResponse::new(code);
    if let Some(description) = error.description() {
        answer = answer.description(description);
    }
    let bearer = || Challenge::bearer().realm(REALM).error(code, error.description().as_deref());
    match error {
        Error::Internal(cause) => {
            tracing::error!(error = %cause, "request failed with a server fault");
            answer
        }
        // RFC 6749 §4.1.2.1 / §5.2 `temporarily_unavailable`, RFC 9110 §15.6.4: a 503 says
        // when to come back; the cause (which may name the database host) stays in the log.
        Error::StoreUnavailable(cause) => {
            tracing::warn!(error = %cause, "request refused: the database is unreachable");
            answer.retry_after(STORE_RETRY_AFTER_SECS)
        }
        // RFC 6749 §5.2: a 401 carries the challenge of the scheme the client may use.
        Error::ClientAuthenticationMissing
        | Error::ClientAuthenticationFailed
        | Error::ClientAssertionRefused(_) => answer.challenge(Challenge::basic().realm(REALM)),
        // RFC 6750 §3.1: no credentials at all: the challenge alone, without an error code.
        Error::BearerTokenMissing => {
            ErrorResponse::unauthenticated(Challenge::bearer().realm(REALM))
        }
        // RFC 6750 §3: every refusal of a protected resource carries the Bearer challenge
        // with its error, and `insufficient_scope` names the scope needed.
        Error::BearerTokenMalformed(_) | Error::InvalidToken(_) => answer.challenge(bearer()),
        Error::InsufficientScope { required } => answer.challenge(bearer().scope(*required)),
        // RFC 6585 §4: a 429 says when to come back.
        Error::RateLimited { retry_after_secs } => answer.retry_after(*retry_after_secs),
        Error::MissingParameter(_)
        | Error::DuplicateParameter(_)
        | Error::MalformedParameter { .. }
        | Error::MalformedRequest(_)
        | Error::MultipleClientAuthentication
        | Error::TokenExchangeRefused(_)
        | Error::GrantTypeNotAllowed(_)
        | Error::IntrospectionNotAllowed
        | Error::UnsupportedGrantType(_)
        | Error::ScopeNotAllowed(_)
        | Error::ScopeWidened
        | Error::ScopeBeyondSubject(_)
        | Error::NoScope
        | Error::MalformedScope(_)
        | Error::CodeRefused(_)
        | Error::PkceFailed(_)
        | Error::RefreshTokenReused
        | Error::InvalidGrant(_)
        | Error::UnsupportedResponseType(_)
        | Error::InvalidTarget(_)
        | Error::DpopProofInvalid(_)
        | Error::DpopNonceRequired
        | Error::AccessDenied
        | Error::LoginRequired
        | Error::ConsentRequired
        | Error::AuthorizationPending
        | Error::SlowDown
        | Error::ExpiredToken
        | Error::InvalidRedirectUri(_)
        | Error::InvalidClientMetadata(_) => answer,
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        error_response(&self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};
    use http_body_util::BodyExt;
    use tessera_core::InternalError;

    use super::*;

    async fn answer(error: Error) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = OAuthError(error).into_response();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (parts.status, parts.headers, json)
    }

    #[tokio::test]
    async fn rfc6749_4_1_3_refused_code_exchange_answers_invalid_grant() {
        let (status, _, body) = answer(Error::CodeRefused("the code has expired")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], "the code has expired");
    }

    #[tokio::test]
    async fn rfc7636_4_6_pkce_failure_answers_invalid_grant() {
        let (status, _, body) = answer(Error::PkceFailed("code_verifier does not match")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant");
    }

    #[tokio::test]
    async fn oauth2_1_4_3_1_refresh_token_reuse_answers_invalid_grant() {
        let (status, _, body) = answer(Error::RefreshTokenReused).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant");
    }

    #[tokio::test]
    async fn r4_2_rate_limited_is_a_429_with_retry_after_and_no_store() {
        let (status, headers, body) = answer(Error::RateLimited { retry_after_secs: 2 }).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "2");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(
            body,
            serde_json::json!({
                "error": "too_many_requests",
                "error_description": "rate limit exceeded; retry after 2 s"
            })
        );
    }

    #[tokio::test]
    async fn rfc6750_3_1_insufficient_scope_is_403_with_the_scope_in_the_challenge() {
        let (status, headers, body) = answer(Error::InsufficientScope { required: "openid" }).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"], "insufficient_scope");
        let challenge = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Bearer realm=\"tessera\", error=\"insufficient_scope\""));
        assert!(challenge.ends_with("scope=\"openid\""), "{challenge}");
    }

    #[tokio::test]
    async fn rfc6750_3_1_missing_token_is_a_challenge_without_error() {
        let (status, headers, body) = answer(Error::BearerTokenMissing).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer realm=\"tessera\"");
        assert_eq!(body, serde_json::Value::Null);
    }

    #[tokio::test]
    async fn rfc6749_5_2_invalid_client_is_401_with_a_basic_challenge() {
        let (status, headers, _) = answer(Error::ClientAuthenticationFailed).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Basic realm=\"tessera\"");
    }

    #[tokio::test]
    async fn rfc6749_5_2_unreachable_database_is_503_temporarily_unavailable_with_retry_after() {
        let cause = tessera_core::store::StoreError::Unavailable("pool timed out".into());
        let (status, headers, body) = answer(Error::from(cause)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "1");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(body["error"], "temporarily_unavailable");
        let description = body["error_description"].as_str().unwrap();
        assert!(!description.contains("pool timed out"), "the cause stays in the log");
    }

    #[tokio::test]
    async fn rfc6749_5_2_server_faults_leave_as_bare_server_error() {
        let fault = Error::Internal(InternalError::new("db", "connection refused"));
        let (status, _, body) = answer(fault).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, serde_json::json!({"error": "server_error"}));
    }
}
