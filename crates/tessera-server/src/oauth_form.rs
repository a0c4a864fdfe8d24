//! OAuth form posts (RFC 6749 §3.2): the body as `tessera_http::FormBody` reads it (content type,
//! size cap), parsed by the core's strict `Params` (duplicates and non-UTF-8 are
//! `invalid_request`).
//!
//! This extractor lives in the server, not in `tessera-http`, because `Params` belongs to
//! `tessera-core`, which itself uses `tessera-http` for its wire vocabulary: putting it in
//! `tessera-http` would make the two crates depend on each other.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tessera_core::Error;
use tessera_core::params::Params;
use tessera_http::{FormBody, FormRejection};

use crate::oauth_error::OAuthError;

/// The parameters of an `application/x-www-form-urlencoded` body of at most 16 KiB.
#[derive(Debug)]
pub struct OAuthForm(pub Params);

/// Why a form post was refused: its body (content type, size) or its pairs (duplicates,
/// encoding). Both answer `invalid_request`.
#[derive(Debug)]
pub enum OAuthFormRejection {
    Body(FormRejection),
    Params(Error),
}

impl IntoResponse for OAuthFormRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Body(rejection) => rejection.into_response(),
            Self::Params(error) => OAuthError(error).into_response(),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthFormRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let FormBody(bytes) =
            FormBody::<{ tessera_http::DEFAULT_FORM_LIMIT }>::from_request(req, state)
                .await
                .map_err(OAuthFormRejection::Body)?;
        Params::parse_form(&bytes).map(Self).map_err(OAuthFormRejection::Params)
    }
}

/// The same, for a handler that needs the headers before it decides to read the body.
pub async fn read_form(headers: &HeaderMap, body: Body) -> Result<Params, Response> {
    let FormBody(bytes) = FormBody::<{ tessera_http::DEFAULT_FORM_LIMIT }>::read(headers, body)
        .await
        .map_err(IntoResponse::into_response)?;
    Params::parse_form(&bytes).map_err(|e| OAuthError(e).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};

    use super::*;

    fn post(body: &'static [u8]) -> Request {
        Request::builder()
            .method("POST")
            .uri("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn rfc6749_3_2_duplicate_parameters_are_invalid_request() {
        let rejection = OAuthForm::from_request(post(b"scope=a&scope=b"), &()).await.unwrap_err();
        assert!(matches!(rejection, OAuthFormRejection::Params(Error::DuplicateParameter(_))));
        assert_eq!(rejection.into_response().status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn rfc6749_3_2_non_utf8_form_is_invalid_request() {
        let rejection = OAuthForm::from_request(post(b"scope=%FF"), &()).await.unwrap_err();
        assert!(matches!(rejection, OAuthFormRejection::Params(Error::MalformedRequest(_))));
    }

    #[tokio::test]
    async fn rfc6749_3_2_form_is_parsed() {
        let OAuthForm(params) =
            OAuthForm::from_request(post(b"grant_type=client_credentials"), &()).await.unwrap();
        assert_eq!(params.get("grant_type"), Some("client_credentials"));
    }
}
