//! The body of an OAuth form post: `application/x-www-form-urlencoded` (RFC 6749 §3.2,
//! Appendix B), of bounded size. Parsing the pairs is left to the caller's own strict parser
//! (Tessera's is `tessera_core::params::Params`), so this crate stays free of the core.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::{ErrorCode, ErrorResponse};

/// The largest form body accepted unless a caller chooses another limit: far above any OAuth
/// request, far below what could tie up memory.
pub const DEFAULT_FORM_LIMIT: usize = 16 * 1024;

/// The raw bytes of a form body of at most `LIMIT` bytes whose content type is
/// `application/x-www-form-urlencoded`.
#[derive(Clone, Debug)]
pub struct FormBody<const LIMIT: usize = DEFAULT_FORM_LIMIT>(pub Bytes);

/// Why a body is not an acceptable form. Each answers `invalid_request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormRejection {
    /// RFC 6749 §3.2: the body must be `application/x-www-form-urlencoded`.
    NotAForm,
    /// The body is larger than the limit, or could not be read whole.
    TooLarge { limit: usize },
}

impl<const LIMIT: usize> FormBody<LIMIT> {
    /// Reads the body of a request whose headers were taken apart from it.
    pub async fn read(headers: &HeaderMap, body: Body) -> Result<Self, FormRejection> {
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(FormRejection::NotAForm);
        }
        axum::body::to_bytes(body, LIMIT)
            .await
            .map(Self)
            .map_err(|_| FormRejection::TooLarge { limit: LIMIT })
    }
}

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for FormBody<LIMIT> {
    type Rejection = FormRejection;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        Self::read(&parts.headers, body).await
    }
}

impl FormRejection {
    /// The error answer: `invalid_request`, with 413 for an oversized body.
    pub fn to_error_response(self) -> ErrorResponse {
        match self {
            Self::NotAForm => ErrorResponse::new(ErrorCode::InvalidRequest).description(
                "the request body must be application/x-www-form-urlencoded (RFC 6749 §3.2)",
            ),
            Self::TooLarge { limit } => ErrorResponse::new(ErrorCode::InvalidRequest)
                .status(StatusCode::PAYLOAD_TOO_LARGE)
                .description(format!("the request body exceeds {limit} bytes")),
        }
    }
}

impl IntoResponse for FormRejection {
    fn into_response(self) -> Response {
        self.to_error_response().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content_type: Option<&str>, body: &'static [u8]) -> Request {
        let mut builder = Request::builder().method("POST").uri("/token");
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        builder.body(Body::from(body)).unwrap()
    }

    #[tokio::test]
    async fn rfc6749_3_2_form_content_type_is_required() {
        let err = FormBody::<64>::from_request(request(Some("application/json"), b"{}"), &())
            .await
            .unwrap_err();
        assert_eq!(err, FormRejection::NotAForm);
        assert_eq!(err.to_error_response().code(), Some(ErrorCode::InvalidRequest));
        let err = FormBody::<64>::from_request(request(None, b"a=b"), &()).await.unwrap_err();
        assert_eq!(err, FormRejection::NotAForm);
    }

    #[tokio::test]
    async fn rfc6749_3_2_form_with_charset_parameter_is_accepted() {
        let ct = "Application/X-WWW-Form-Urlencoded; charset=UTF-8";
        let FormBody(bytes) =
            FormBody::<64>::from_request(request(Some(ct), b"a=b"), &()).await.unwrap();
        assert_eq!(&bytes[..], b"a=b");
    }

    #[tokio::test]
    async fn oversized_form_is_413_invalid_request() {
        let ct = Some("application/x-www-form-urlencoded");
        let err = FormBody::<4>::from_request(request(ct, b"a=bcdef"), &()).await.unwrap_err();
        assert_eq!(err, FormRejection::TooLarge { limit: 4 });
        let response = err.to_error_response();
        assert_eq!(response.status_code(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.code(), Some(ErrorCode::InvalidRequest));
    }
}
