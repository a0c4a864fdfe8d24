//! The admin API's errors: JSON `{"error": code, "error_description": text}` with a status
//! that says whose fault it is. Token and scope refusals are the RFC 6750 ones (401
//! `invalid_token` with a Bearer challenge, 403 `insufficient_scope` naming the scope); bad
//! input is a 400 `invalid_request` (never a 500); a missing record a 404 `not_found`; a
//! duplicate a 409 `conflict`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_core::Error;
use utoipa::ToSchema;

use super::operations::OperationError;
use crate::oauth_error::OAuthError;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// `invalid_request`, `not_found`, `conflict`, `invalid_token`, `insufficient_scope`,
    /// `server_error`, …
    pub error: String,
    pub error_description: Option<String>,
}

#[derive(Debug)]
pub enum AdminError {
    /// A token or scope refusal, or a server fault: answered as at the OAuth endpoints.
    OAuth(Error),
    /// 400 `invalid_request`.
    Invalid(String),
    /// 404 `not_found`.
    NotFound(String),
    /// 409 `conflict`.
    Conflict(String),
}

impl From<Error> for AdminError {
    fn from(e: Error) -> Self {
        Self::OAuth(e)
    }
}

impl From<tessera_core::InternalError> for AdminError {
    fn from(e: tessera_core::InternalError) -> Self {
        Self::OAuth(Error::Internal(e))
    }
}

impl From<tessera_core::store::StoreError> for AdminError {
    fn from(e: tessera_core::store::StoreError) -> Self {
        OperationError::from(e).into()
    }
}

impl From<OperationError> for AdminError {
    fn from(e: OperationError) -> Self {
        match e {
            OperationError::Invalid(why) => Self::Invalid(why),
            OperationError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            OperationError::Store(e) => Self::OAuth(e.into()),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code, why) = match self {
            Self::OAuth(e) => return OAuthError(e).into_response(),
            Self::Invalid(why) => (StatusCode::BAD_REQUEST, "invalid_request", why),
            Self::NotFound(why) => (StatusCode::NOT_FOUND, "not_found", why),
            Self::Conflict(why) => (StatusCode::CONFLICT, "conflict", why),
        };
        let body = ErrorBody { error: code.into(), error_description: Some(why) };
        (status, Json(body)).into_response()
    }
}
