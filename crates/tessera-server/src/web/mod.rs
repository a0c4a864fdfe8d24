//! The server's own HTML pages (login, consent, messages): templates, security headers,
//! cookies, CSRF, the checked page forms, redirects back to clients and login throttling.

pub mod cookies;
pub mod csrf;
pub mod forms;
pub mod pages;
pub mod redirect;
pub mod sign_in;
pub mod throttle;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// The peer address of a request, for throttling; `None` when the server was not started with
/// connection info (as in router tests). Forwarding headers are not trusted.
pub struct SourceAddr(pub Option<SocketAddr>);

impl SourceAddr {
    /// The address as a throttling key.
    pub fn key(&self) -> String {
        self.0.map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SourceAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)))
    }
}
