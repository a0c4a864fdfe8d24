//! One module per endpoint.

pub mod discovery;
pub mod health;
pub mod jwks;
pub mod metrics;
pub mod token;
