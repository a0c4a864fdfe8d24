//! An in-memory cache of client records in front of the store, so that the token endpoint does
//! not pay a database round trip for every request.
//!
//! Entries live at most [`CLIENT_CACHE_TTL`]: a client changed or deleted through the CLI or
//! another instance takes effect within that time. Unknown client_ids are not cached, so a
//! client created a moment ago works at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tessera_core::client::Client;
use tessera_core::client_id::ClientId;
use tessera_core::store::{ClientStore, StoreError};

use crate::metadata_documents::MetadataDocuments;

/// How long a cached client record is trusted (the 5-second promise of the admin CLI).
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(5);

/// How long past its freshness a cached record still serves while the database is
/// unreachable, so that paths which need nothing else from it (JWT client credentials, JWT
/// introspection) keep working through a short outage. A client deleted meanwhile keeps
/// working at most this long, and only while the database cannot say otherwise.
pub const CLIENT_CACHE_STALE_IF_UNAVAILABLE: Duration = Duration::from_secs(300);

/// How long a lookup of a record past its freshness may take before the cached record is
/// served instead: far above a healthy lookup (well under a millisecond), far below the
/// pool's acquire bound.
const STALE_LOOKUP_BOUND: Duration = Duration::from_millis(250);

/// The cache. Readers take a shared lock only for a hash lookup and an `Arc` clone.
pub struct ClientCache<S> {
    store: S,
    entries: RwLock<HashMap<ClientId, (Instant, Arc<Client>)>>,
    /// Clients whose client_id is the URL of their metadata document.
    documents: Option<MetadataDocuments>,
}

impl<S: ClientStore> ClientCache<S> {
    pub fn new(store: S) -> Self {
        Self { store, entries: RwLock::new(HashMap::new()), documents: None }
    }

    /// Also resolves client_ids that are metadata-document URLs, through `documents`.
    pub fn with_documents(self, documents: MetadataDocuments) -> Self {
        Self { documents: Some(documents), ..self }
    }

    /// The client record, from the cache while fresh, else from the store.
    pub async fn get(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        if let Some(documents) = &self.documents
            && documents.handles(id)
        {
            return Ok(documents.get(id).await);
        }
        let now = Instant::now();
        let cached = self.read().get(id).cloned();
        if let Some((loaded, client)) = &cached
            && now.duration_since(*loaded) < CLIENT_CACHE_TTL
        {
            return Ok(Some(client.clone()));
        }
        let found = match &cached {
            // A record past its freshness is looked up again, but a database that does not
            // answer within STALE_LOOKUP_BOUND or is unreachable leaves the cached record in
            // service (within the stale window): the request then pays at most one acquire
            // bound in all, for its own store call, not one more here.
            Some((loaded, client))
                if now.duration_since(*loaded)
                    < CLIENT_CACHE_TTL + CLIENT_CACHE_STALE_IF_UNAVAILABLE =>
            {
                match tokio::time::timeout(STALE_LOOKUP_BOUND, self.store.find_client(id)).await {
                    Ok(Ok(found)) => found.map(Arc::new),
                    Ok(Err(StoreError::Unavailable(e))) => {
                        tracing::debug!(client_id = %id, error = %e, "database unreachable: serving the cached client");
                        return Ok(Some(client.clone()));
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {
                        tracing::debug!(client_id = %id, "database slow: serving the cached client");
                        return Ok(Some(client.clone()));
                    }
                }
            }
            _ => self.store.find_client(id).await?.map(Arc::new),
        };
        let mut entries = self.write();
        match &found {
            Some(client) => {
                if entries.len() >= 10_000 {
                    entries.retain(|_, (loaded, _)| now.duration_since(*loaded) < CLIENT_CACHE_TTL);
                }
                entries.insert(id.clone(), (now, client.clone()));
            }
            None => {
                entries.remove(id);
            }
        }
        Ok(found)
    }

    /// Drops a client from the cache, after it was changed or deleted here.
    pub fn forget(&self, id: &ClientId) {
        self.write().remove(id);
    }

    // A poisoned lock only means another request panicked mid-insert; the map is still a
    // valid cache, so keep using it.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ClientId, (Instant, Arc<Client>)>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ClientId, (Instant, Arc<Client>)>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }
}
