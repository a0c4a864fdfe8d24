//! The registry of resource servers (issue 15 item 3) as the server reads it: the `resources`
//! table, cached for [`REGISTRY_TTL`] so that an authorization request by a dynamic or
//! metadata-document client costs no extra query. A resource created or deleted through the
//! CLI or another instance takes effect within that time; through this instance's admin API,
//! at once ([`ResourceRegistry::forget`]).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tessera_core::resource_registry::{RegisteredResource, open_scopes};
use tessera_core::scope::ScopeSet;
use tessera_core::store::{ResourceStore, StoreError};
use tessera_store::Store;

/// How long the cached registry is trusted (the same promise as client records).
pub const REGISTRY_TTL: Duration = Duration::from_secs(5);

type Snapshot = Arc<Vec<RegisteredResource>>;

pub struct ResourceRegistry {
    store: Store,
    cached: RwLock<Option<(Instant, Snapshot)>>,
}

impl ResourceRegistry {
    pub fn new(store: Store) -> Self {
        Self { store, cached: RwLock::new(None) }
    }

    /// Every registered resource.
    pub async fn current(&self) -> Result<Snapshot, StoreError> {
        let now = Instant::now();
        if let Some((loaded, snapshot)) = self.read().as_ref()
            && now.duration_since(*loaded) < REGISTRY_TTL
        {
            return Ok(snapshot.clone());
        }
        let snapshot = Arc::new(self.store.list_resources().await?);
        *self.write() = Some((now, snapshot.clone()));
        Ok(snapshot)
    }

    /// The scopes clients the operator did not register may be given: `issuer_scopes` and
    /// those of the resources open to them.
    pub async fn open_scopes(&self, issuer_scopes: &ScopeSet) -> Result<ScopeSet, StoreError> {
        Ok(open_scopes(&self.current().await?, issuer_scopes))
    }

    /// Drops the cached registry, after a change made here.
    pub fn forget(&self) {
        *self.write() = None;
    }

    // A poisoned lock only means another request panicked mid-update; the value is whole.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<(Instant, Snapshot)>> {
        self.cached.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<(Instant, Snapshot)>> {
        self.cached.write().unwrap_or_else(|e| e.into_inner())
    }
}
