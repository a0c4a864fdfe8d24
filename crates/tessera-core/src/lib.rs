//! Tessera's protocol core: the rules of OAuth 2.1 and OpenID Connect as typed values, one
//! error vocabulary, and one module per grant. It does no I/O of its own: storage is reached
//! through the traits in [`store`], time through [`clock::Clock`], and HTTP is the server's.

pub mod admin_scope;
pub mod authorize;
pub mod client;
pub mod client_assertion;
pub mod client_auth;
pub mod client_id;
pub mod client_metadata;
pub mod clock;
pub mod device;
pub mod error;
pub mod grant_type;
pub mod grants;
pub mod id_token;
pub mod introspection;
pub mod issuer;
pub mod keys;
pub mod mtls;
pub mod par;
pub mod params;
pub mod pkce;
pub mod redirect_uri;
pub mod resource;
pub mod resource_registry;
pub mod revocation;
pub mod scope;
pub mod secret;
pub mod store;
pub mod token;
pub mod user;

pub use error::{Error, ErrorCode, InternalError, Result};
