//! The public keys of `private_key_jwt` clients (RFC 7523): their registered `jwks`, or the
//! document at their `jwks_uri`, fetched by `tessera-jose`'s [`JwksFetcher`] (SSRF guard,
//! no proxy, cached, failures cached briefly, one fetch per URL at a time).

use std::sync::Arc;

use tessera_core::client::Client;
use tessera_jose::{FetchError, Jwks, JwksError, JwksFetcher};

/// Why a client's keys are not available; each is an `invalid_client` for the request.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("the client registered no keys")]
    NoKeys,
    #[error("the client's jwks is unusable: {0}")]
    Inline(#[from] JwksError),
    #[error("the client's jwks_uri cannot be used: {0}")]
    Remote(#[from] FetchError),
}

/// The keys of `private_key_jwt` clients.
pub struct ClientKeys {
    fetcher: JwksFetcher,
}

impl ClientKeys {
    /// `allow_private_networks`: `outbound_allow_private_networks` (tests, local development).
    pub fn new(allow_private_networks: bool) -> Self {
        Self { fetcher: JwksFetcher::new(allow_private_networks) }
    }

    /// The client's keys. `refresh` asks for a new fetch of a `jwks_uri` (a `kid` was not
    /// found), honoured at most every `tessera_jose::fetch::REFETCH_AFTER`.
    pub async fn for_client(&self, client: &Client, refresh: bool) -> Result<Arc<Jwks>, KeysError> {
        if let Some(inline) = &client.jwks {
            return Ok(Arc::new(Jwks::parse(inline)?));
        }
        let uri = client.jwks_uri.as_deref().ok_or(KeysError::NoKeys)?;
        Ok(self.fetcher.get(uri, refresh).await?)
    }
}
