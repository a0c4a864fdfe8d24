//! `resources`: the registry of resource servers; `admin_clients`: which clients are
//! first-party administration tools.

use tessera_core::client_id::ClientId;
use tessera_core::resource_registry::RegisteredResource;
use tessera_core::secret::SecretHash;
use tessera_core::store::{AdminStore, ResourceStore, StoreError};

use crate::{Store, conflict_or_db, db, scope_column};

#[derive(sqlx::FromRow)]
struct ResourceRow {
    resource: String,
    scope: String,
    dynamic_clients: bool,
    created_at: i64,
}

impl ResourceStore for Store {
    async fn create_resource(&self, resource: &RegisteredResource) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO resources (resource, scope, dynamic_clients, created_at) \
            VALUES ($1, $2, $3, $4)";
        with_writer!(self, |pool| {
            sqlx::query(SQL)
                .bind(resource.resource.as_str())
                .bind(resource.scopes.to_string())
                .bind(resource.dynamic_clients)
                .bind(resource.created_at)
                .execute(pool)
                .await
                .map_err(|e| conflict_or_db(e, || format!("the resource {}", resource.resource)))?;
        });
        Ok(())
    }

    async fn list_resources(&self) -> Result<Vec<RegisteredResource>, StoreError> {
        const SQL: &str = "SELECT resource, scope, dynamic_clients, created_at FROM resources \
            ORDER BY resource";
        let rows: Vec<ResourceRow> =
            with_reader!(self, |pool| sqlx::query_as(SQL).fetch_all(pool).await.map_err(db)?);
        rows.into_iter()
            .map(|row| {
                Ok(RegisteredResource {
                    scopes: scope_column("resources", &row.resource, &row.scope)?,
                    resource: row.resource,
                    dynamic_clients: row.dynamic_clients,
                    created_at: row.created_at,
                })
            })
            .collect()
    }

    async fn delete_resource(&self, resource: &str) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM resources WHERE resource = $1";
        let done = with_writer!(self, |pool| sqlx::query(SQL)
            .bind(resource)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(done > 0)
    }
}

impl AdminStore for Store {
    async fn set_admin_client(&self, client_id: &ClientId, admin: bool) -> Result<(), StoreError> {
        const FLAG: &str =
            "INSERT INTO admin_clients (client_id) VALUES ($1) ON CONFLICT (client_id) DO NOTHING";
        const UNFLAG: &str = "DELETE FROM admin_clients WHERE client_id = $1";
        let sql = if admin { FLAG } else { UNFLAG };
        with_writer!(self, |pool| {
            sqlx::query(sql).bind(client_id.as_str()).execute(pool).await.map_err(db)?;
        });
        Ok(())
    }

    async fn is_admin_client(&self, client_id: &ClientId) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM admin_clients WHERE client_id = $1";
        let (n,): (i64,) = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(client_id.as_str())
            .fetch_one(pool)
            .await
            .map_err(db)?);
        Ok(n > 0)
    }

    async fn replace_client_secret(
        &self,
        client_id: &ClientId,
        secret_hash: &SecretHash,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE clients SET secret_hash = $2 \
            WHERE client_id = $1 AND secret_hash IS NOT NULL";
        let done = with_writer!(self, |pool| sqlx::query(SQL)
            .bind(client_id.as_str())
            .bind(secret_hash.as_bytes().to_vec())
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(done > 0)
    }

    async fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE users SET password_hash = $2 WHERE username = $1";
        let done = with_writer!(self, |pool| sqlx::query(SQL)
            .bind(username)
            .bind(password_hash)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(done > 0)
    }
}
