//! One module per endpoint.

pub mod authorize;
pub mod device;
pub mod discovery;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod logout;
pub mod metrics;
pub mod par;
pub mod register;
pub mod revoke;
pub mod token;
pub mod userinfo;
