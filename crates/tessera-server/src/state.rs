//! What every request handler shares.

use std::sync::Arc;

use tessera_core::clock::Clock;
use tessera_core::grants::GrantRegistry;
use tessera_store::Store;

use crate::client_cache::ClientCache;
use crate::client_keys::ClientKeys;
use crate::config::Settings;
use crate::dpop_replay::{DpopNonces, DpopReplay};
use crate::key_ring::KeyRing;
use crate::password_checks::PasswordChecks;
use crate::rate_limit::RateLimiter;

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
    pub rate_limiter: RateLimiter,
    /// With `redis_url`: where revoked access-token ids are published for resource servers.
    pub revocation_list: Option<crate::revocation_list::RevocationList>,
    pub client_keys: ClientKeys,
    /// Argon2id verifications, on dedicated threads (each costs tens of milliseconds of CPU).
    pub password_checks: PasswordChecks,
    /// DPoP proofs already used (RFC 9449 §11.1).
    pub dpop_replay: DpopReplay,
    /// DPoP server nonces (RFC 9449 §8), when `dpop_nonce` is on.
    pub dpop_nonces: DpopNonces,
    /// The registry of resource servers (issue 15), shared with the metadata-document clients.
    pub resources: Arc<crate::resource_registry::ResourceRegistry>,
}

impl AppState {
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Deletes expired rows (the background pruner calls this).
    /// Also deletes stale dynamic clients (issue 15): unused for `dynamic_client_unused_days`,
    /// or registered `dynamic_client_unfinished_hours` ago without ever completing a flow.
    pub async fn prune_expired(&self) -> Result<u64, tessera_core::store::StoreError> {
        use tessera_core::store::{ClientStore, TokenStore};
        let now = self.0.clock.now();
        let expired = self.0.store.prune_expired(now).await?;
        let registration = &self.0.settings.registration;
        let stale = self
            .0
            .store
            .prune_dynamic_clients(now - registration.unused_ttl, now - registration.unfinished_ttl)
            .await?;
        if stale > 0 {
            tracing::info!(clients = stale, "deleted stale dynamically registered clients");
        }
        Ok(expired + stale)
    }

    /// With `key_rotation_days` set, rotates every algorithm whose newest key is that old and
    /// has no successor yet (R2.5: the successor is published ahead of use).
    pub async fn rotate_keys_on_schedule(&self) -> Result<(), tessera_core::InternalError> {
        let inner = &self.0;
        let Some(days) = inner.settings.key_rotation_days else { return Ok(()) };
        // Decide on the keys in the store, not on this instance's last reload: a successor made
        // since (by an earlier call, or by another instance) must not get a successor itself.
        self.reload_keys().await?;
        let now = inner.clock.now();
        let keys = inner.keys.snapshot();
        for alg in tessera_core::keys::SigningAlg::ALL {
            if keys.newest_activation(alg).is_some_and(|t| now - t >= days * 86_400) {
                let key = crate::key_ring::rotate(
                    &inner.store,
                    &inner.settings.key_encryption_key,
                    alg,
                    now,
                    inner.settings.key_publish_ahead,
                    inner.settings.max_signed_token_lifetime(),
                )
                .await?;
                tracing::info!(alg = %alg, kid = %key.kid, "rotated signing key on schedule");
            }
        }
        Ok(())
    }

    /// Re-reads signing keys from the store (the background refresher calls this).
    pub async fn reload_keys(&self) -> Result<(), tessera_core::InternalError> {
        let inner = &self.0;
        inner.keys.reload(&inner.store, &inner.settings.key_encryption_key, inner.clock.now()).await
    }
}
