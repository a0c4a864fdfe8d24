//! What every request handler shares.

use std::sync::Arc;

use tessera_core::clock::Clock;
use tessera_core::grants::GrantRegistry;
use tessera_store::Store;

use crate::client_cache::ClientCache;
use crate::config::Settings;
use crate::key_ring::KeyRing;
use crate::web::throttle::LoginThrottle;

/// The application state, cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub settings: Settings,
    pub store: Store,
    pub clients: ClientCache<Store>,
    pub keys: KeyRing,
    pub grants: GrantRegistry,
    pub clock: Arc<dyn Clock>,
    /// The RFC 8414 metadata document, rendered once at start.
    pub metadata: String,
    pub throttle: LoginThrottle,
    /// Bounds concurrent Argon2id verifications (each costs tens of milliseconds of CPU).
    pub password_checks: tokio::sync::Semaphore,
    /// Verified against for unknown usernames, so timing does not reveal which exist.
    pub dummy_password_hash: Arc<str>,
}

impl AppState {
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Re-reads signing keys from the store (the background refresher calls this).
    pub async fn reload_keys(&self) -> Result<(), tessera_core::InternalError> {
        let inner = &self.0;
        inner.keys.reload(&inner.store, &inner.settings.key_encryption_key, inner.clock.now()).await
    }
}
