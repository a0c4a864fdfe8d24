//! The resource-server library's integration tests: one binary, one module per subject.

#[allow(dead_code)] // not every helper is used by every module
mod support;

mod certificate_binding;
mod dpop;
mod errors;
mod jwks_cache;
mod jwt_rules;
mod metadata;
mod revocation;
