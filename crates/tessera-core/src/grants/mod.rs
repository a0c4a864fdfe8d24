//! Grant handlers, one module per grant type, registered in one place.
//!
//! The token endpoint knows no concrete grant: it looks the `grant_type` up in a
//! [`GrantRegistry`]. A grant that is not registered does not exist — it is refused with
//! `unsupported_grant_type` and not advertised in metadata.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod dpop;
pub mod refresh_token;
pub mod token_exchange;
mod token_request;
mod tokens_for_grant;

pub use token_request::{ClientCertificate, TokenRequest};

use std::future::Future;
use std::pin::Pin;

use crate::client_auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::grant_type::GrantType;
use crate::token::{IssueContext, TokenResponse};

/// A boxed future, so that handlers of different types sit in one registry.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<TokenResponse>> + Send + 'a>>;

/// One grant type's token-endpoint logic: validate the request, load or consume its state,
/// decide, mint.
pub trait GrantHandler: Send + Sync {
    fn grant_type(&self) -> GrantType;

    /// Handles a token request of this grant type from an authenticated client that is
    /// allowed to use the grant. The handler sees the whole request (method, URL, DPoP proof,
    /// client certificate), so that sender-constrained tokens need no new signature.
    fn handle<'a>(
        &'a self,
        client: &'a AuthenticatedClient,
        request: &'a TokenRequest,
        ctx: IssueContext<'a>,
    ) -> HandlerFuture<'a>;
}

/// The grant types the token endpoint serves.
#[derive(Default)]
pub struct GrantRegistry {
    handlers: Vec<Box<dyn GrantHandler>>,
}

impl GrantRegistry {
    pub fn register(mut self, handler: impl GrantHandler + 'static) -> Self {
        self.handlers.push(Box::new(handler));
        self
    }

    /// The handler for a `grant_type` parameter value.
    pub fn find(&self, grant_type: &str) -> Result<&dyn GrantHandler> {
        self.handlers
            .iter()
            .find(|h| h.grant_type().as_str() == grant_type)
            .map(|h| &**h)
            .ok_or_else(|| Error::UnsupportedGrantType(grant_type.to_owned()))
    }

    /// The grant types served, for metadata.
    pub fn grant_types(&self) -> impl Iterator<Item = GrantType> + '_ {
        self.handlers.iter().map(|h| h.grant_type())
    }
}

/// RFC 6749 §5.2 `unauthorized_client`: the client must be registered for the grant.
pub fn ensure_grant_allowed(client: &AuthenticatedClient, grant: GrantType) -> Result<()> {
    if client.client().allows_grant(grant) {
        Ok(())
    } else {
        Err(Error::GrantTypeNotAllowed(grant.as_str()))
    }
}
