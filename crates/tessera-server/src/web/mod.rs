//! The server's own HTML pages (login, consent, messages): templates, security headers,
//! cookies, CSRF, the checked page forms, redirects back to clients and login throttling.

pub mod cookies;
pub mod csrf;
pub mod forms;
pub mod pages;
pub mod redirect;
pub mod sign_in;
pub mod throttle;

/// The source of a request, for throttling (trusted proxies and IPv6 /64s resolved).
pub use crate::source_address::SourceAddr;
