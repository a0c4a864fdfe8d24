//! Tessera's HTTP edge for OAuth, shared by the authorization server, the gateway and the
//! resource-server library.
//!
//! - [`ErrorCode`]: the wire vocabulary of OAuth errors. It needs no dependency, so the
//!   protocol core names its wire codes with it without linking an HTTP library.
//! - With the `axum` feature: [`ErrorResponse`] (JSON body, status, `WWW-Authenticate`,
//!   `Retry-After`, `Cache-Control: no-store` — one `IntoResponse`), [`Challenge`] (the RFC 6750
//!   §3 / RFC 7617 `WWW-Authenticate` value), [`FormBody`] (an `application/x-www-form-urlencoded`
//!   body of bounded size with a typed rejection) and [`BearerToken`] (RFC 6750 §2.1 extraction).
//!
//! This crate knows no protocol decision and nothing of Tessera's core: it depends on neither
//! `tessera-core` nor storage, so a resource server can answer `invalid_token` exactly as the
//! authorization server does without linking either.

mod error_code;

pub use error_code::ErrorCode;

#[cfg(feature = "axum")]
mod bearer;
#[cfg(feature = "axum")]
mod challenge;
#[cfg(feature = "axum")]
mod form;
#[cfg(feature = "axum")]
mod response;

#[cfg(feature = "axum")]
pub use bearer::{BearerError, BearerToken};
#[cfg(feature = "axum")]
pub use challenge::Challenge;
#[cfg(feature = "axum")]
pub use form::{DEFAULT_FORM_LIMIT, FormBody, FormRejection};
#[cfg(feature = "axum")]
pub use response::{ErrorResponse, no_store};
