//! The server's own HTML pages (login, consent, messages): templates, security headers,
//! cookies, CSRF and login throttling.

pub mod cookies;
pub mod pages;
pub mod sign_in;
pub mod throttle;

/// The source of a request, for throttling (trusted proxies and IPv6 /64s resolved).
pub use crate::source_address::SourceAddr;
