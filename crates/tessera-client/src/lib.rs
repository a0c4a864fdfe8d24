//! Tessera's client library: what a service or web application needs to obtain and use
//! tokens from any OAuth 2.1 / OpenID Connect server.
//!
//! - [`discovery`]: RFC 8414 / OIDC Discovery metadata, the issuer checked, cached.
//! - [`TokenManager`]: client-credentials tokens cached per client + scopes + resource,
//!   refreshed ahead of expiry, single-flight, optionally shared between instances through
//!   Redis (sealed with AES-256-GCM), behind a circuit breaker.
//! - [`code_flow`]: authorization code + PKCE for server-side apps: `state` and `nonce` kept
//!   server-side and consumed once, RFC 9207 `iss`, ID tokens validated (`tessera-jose`).
//! - [`refresh`]: the refresh grant, the rotated token stored first, one refresh at a time.
//! - [`device`]: the device authorization grant (RFC 8628), which `tessera login` drives.
//! - [`outgoing`]: a tower layer for `reqwest` that attaches the token and, on `401
//!   invalid_token`, gets a new one and retries once.
//! - [`SealingKey`]: AES-256-GCM for tokens kept outside the process (the shared cache, a
//!   web app's session store).
//! - [`ClientCredentials`]: `client_secret_basic`, `client_secret_post`, `private_key_jwt`.
//!
//! Tokens are verified with `tessera-jose` and OAuth error codes read with `tessera-http`'s
//! vocabulary; this crate depends on no server, store or axum.

pub mod client_auth;
pub mod clock;
pub mod code_flow;
pub mod device;
pub mod discovery;
pub mod error;
pub mod http;
mod issuer_keys;
pub mod outgoing;
mod random;
pub mod refresh;
pub mod seal;
pub mod token_manager;
pub mod tokens;

pub use client_auth::ClientCredentials;
pub use clock::{Clock, ManualClock, SystemClock};
pub use code_flow::{CodeFlow, MemoryStateStore, StateStore};
pub use discovery::{Discovery, Metadata, discover};
pub use error::{CallbackError, Error, OAuthError};
pub use http::Http;
pub use outgoing::{BearerLayer, ServiceTokens, TokenSource};
pub use refresh::{MemoryRefreshTokenStore, RefreshTokenStore, Refresher};
pub use seal::SealingKey;
#[cfg(feature = "redis")]
pub use token_manager::SharedCache;
pub use token_manager::{
    BreakerState, ManagerConfig, Metrics, TokenChange, TokenManager, TokenRequest,
};
pub use tokens::{SecretString, TokenResponse};
