//! Protect an axum API with access tokens from Tessera, or from any authorization server that
//! publishes RFC 8414 metadata and RFC 9068 JWT access tokens.
//!
//! - [`ValidatorConfig`] names this API (its RFC 9728 `resource` identifier) and the issuers it
//!   trusts, each with the audience its tokens must carry; [`TokenValidator::discover`] reads
//!   each issuer's metadata (`jwks_uri`, `introspection_endpoint`).
//! - [`TokenValidator::authenticate`] is the whole check of one request: a [`Principal`] or a
//!   [`Rejection`], which renders as the RFC 6750 §3 answer. The gateway calls it directly;
//!   an axum application adds [`TokenValidator::layer`] and reads the [`Principal`] extractor,
//!   with [`RequireScope`] per route.
//! - Keys come from a rotation-safe cache (`keys`): an unknown `kid` refetches the JWKS once
//!   for all concurrent requests, at most once per cooldown; the last good set is kept when a
//!   refresh fails.
//! - [`TokenValidator::metadata_router`] serves the RFC 9728 protected resource metadata.
//!
//! A public API boundary: the gateway builds on it, so its types change only deliberately.

mod config;
mod discovery;
mod introspection;
mod keys;
mod layer;
mod metadata;
pub mod mtls;
mod principal;
mod proof;
mod rejection;
mod revocation;
mod validator;

pub use config::{ConfigError, IssuerConfig, ValidatorConfig};
pub use introspection::IntrospectionCredentials;
pub use layer::{AuthLayer, AuthService, RequireScope, RequireScopeService};
pub use mtls::{CertificateBinding, ClientCertificate};
pub use principal::{Principal, TokenSource};
pub use proof::{
    DPOP_JTI_KEY_PREFIX, DPOP_MAX_AGE, DpopCheck, DpopSetupError, ProofError, ProofFuture,
    RefuseBoundTokens, Scheme, SenderConstraint, SenderConstraints,
};
pub use rejection::{Rejection, RejectionKind};
pub use revocation::{OnOutage, RevocationConfig};
pub use tessera_jose::{Actor, Confirmation, Scopes};
pub use validator::{SetupError, TokenValidator};
