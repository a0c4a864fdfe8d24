//! The storage traits the core needs: one small trait per aggregate (ORY fosite's habit), each
//! implemented for SQLite and PostgreSQL by `tessera-store`. Times are unix seconds.

use std::future::Future;

use crate::client::Client;
use crate::client_id::ClientId;
use crate::keys::StoredKey;
use crate::user::User;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record with the same identity exists already.
    #[error("{0} already exists")]
    Conflict(String),
    /// The database failed or returned something the core cannot read.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for crate::error::Error {
    fn from(e: StoreError) -> Self {
        crate::error::Error::Internal(crate::error::InternalError::new("storage", e))
    }
}

/// Registered clients.
pub trait ClientStore: Send + Sync {
    fn create_client(&self, client: &Client)
    -> impl Future<Output = Result<(), StoreError>> + Send;
    fn find_client(
        &self,
        id: &ClientId,
    ) -> impl Future<Output = Result<Option<Client>, StoreError>> + Send;
    /// All clients, ordered by client_id.
    fn list_clients(&self) -> impl Future<Output = Result<Vec<Client>, StoreError>> + Send;
    /// Whether a client was deleted.
    fn delete_client(&self, id: &ClientId)
    -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// User accounts.
pub trait UserStore: Send + Sync {
    fn create_user(&self, user: &User) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn find_user_by_username(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
    /// All users, ordered by username.
    fn list_users(&self) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send;
    /// Whether a user was deleted.
    fn delete_user(&self, username: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Signing keys, private parts encrypted at rest.
pub trait SigningKeyStore: Send + Sync {
    /// All keys that are still published (`publish_until` unset or later than `now`), oldest
    /// first.
    fn published_keys(
        &self,
        now: i64,
    ) -> impl Future<Output = Result<Vec<StoredKey>, StoreError>> + Send;
    /// Adds a key and, in the same transaction, retires every current key of the same
    /// algorithm: they stop signing at `new.activates_at` and stay published until
    /// `publish_until`. On first start there is nothing to retire.
    fn add_key_retiring_others(
        &self,
        new: &StoredKey,
        publish_until: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deletes keys no longer published at `now`; returns how many.
    fn prune_keys(&self, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
