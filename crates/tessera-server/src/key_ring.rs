//! The signing keys a running server uses, reloaded from the store so that `tessera keys
//! rotate` (or another instance) takes effect without a restart.

use std::sync::{Arc, RwLock};

use tessera_core::InternalError;
use tessera_core::keys::{KeyEncryptionKey, KeySet, SigningAlg, StoredKey, generate_key};
use tessera_core::store::SigningKeyStore;

/// The current key set behind a cheap snapshot handle.
pub struct KeyRing {
    current: RwLock<(Vec<KeyVersion>, Arc<KeySet>)>,
}

/// What identifies a key's state; a reload re-parses keys only when this list changes.
#[derive(PartialEq, Eq)]
struct KeyVersion {
    kid: String,
    signing_until: Option<i64>,
    publish_until: Option<i64>,
}

fn versions(stored: &[StoredKey]) -> Vec<KeyVersion> {
    stored
        .iter()
        .map(|k| KeyVersion {
            kid: k.kid.clone(),
            signing_until: k.signing_until,
            publish_until: k.publish_until,
        })
        .collect()
}

impl KeyRing {
    /// Loads the published keys, first creating a key for each algorithm that has none
    /// (first start): it signs at once, as no token exists yet that a cache could miss.
    pub async fn bootstrap(
        store: &impl SigningKeyStore,
        kek: &KeyEncryptionKey,
        now: i64,
    ) -> Result<Self, InternalError> {
        let mut stored = store.published_keys(now).await.map_err(store_error)?;
        let set = KeySet::load(&stored, kek).map_err(|e| InternalError::new("signing keys", e))?;
        let missing: Vec<SigningAlg> =
            SigningAlg::ALL.into_iter().filter(|alg| !set.has_current_key(*alg)).collect();
        if !missing.is_empty() {
            for alg in missing {
                let key = generate_key(alg, kek, now, now)?;
                store.add_key_retiring_others(&key, now).await.map_err(store_error)?;
                tracing::info!(kid = %key.kid, alg = %alg, "generated signing key");
            }
            stored = store.published_keys(now).await.map_err(store_error)?;
        }
        let set = KeySet::load(&stored, kek).map_err(|e| InternalError::new("signing keys", e))?;
        Ok(Self { current: RwLock::new((versions(&stored), Arc::new(set))) })
    }

    /// The key set to use for one request.
    pub fn snapshot(&self) -> Arc<KeySet> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    /// Re-reads the store, prunes keys no longer published, and swaps in the new set if any
    /// key changed.
    pub async fn reload(
        &self,
        store: &impl SigningKeyStore,
        kek: &KeyEncryptionKey,
        now: i64,
    ) -> Result<(), InternalError> {
        let pruned = store.prune_keys(now).await.map_err(store_error)?;
        if pruned > 0 {
            tracing::info!(pruned, "removed expired signing keys from the JWKS");
        }
        let stored = store.published_keys(now).await.map_err(store_error)?;
        let fresh = versions(&stored);
        if self.current.read().unwrap_or_else(|e| e.into_inner()).0 == fresh {
            return Ok(());
        }
        let set = KeySet::load(&stored, kek).map_err(|e| InternalError::new("signing keys", e))?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = (fresh, Arc::new(set));
        tracing::info!("signing keys reloaded");
        Ok(())
    }
}

fn store_error(e: tessera_core::store::StoreError) -> InternalError {
    InternalError::new("signing key store", e)
}

/// Rotates the key of `alg` (requirements R2.5): the new key is published now and signs from
/// `now + publish_ahead`, so resource servers that cache the JWKS see it before any token it
/// signed; the old key stops signing then and stays published until every token it signed has
/// expired (`max_token_lifetime` later).
pub async fn rotate(
    store: &impl SigningKeyStore,
    kek: &KeyEncryptionKey,
    alg: SigningAlg,
    now: i64,
    publish_ahead: i64,
    max_token_lifetime: i64,
) -> Result<StoredKey, InternalError> {
    let activates_at = now + publish_ahead;
    let key = generate_key(alg, kek, now, activates_at)?;
    store
        .add_key_retiring_others(&key, activates_at + max_token_lifetime)
        .await
        .map_err(store_error)?;
    Ok(key)
}
