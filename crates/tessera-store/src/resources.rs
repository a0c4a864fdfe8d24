//! `resources`: the registry of resource servers; `admin_clients`: which clients are
//! first-party administration tools.

use tessera_core::client::Client;
use tessera_core::client_id::ClientId;
use tessera_core::mtls::CertificateName;
use tessera_core::resource_registry::RegisteredResource;
use tessera_core::secret::SecretHash;
use tessera_core::store::{AdminStore, GrantRecord, ResourceStore, StoreError};

use crate::clients::{ClientLists, bind_client_columns};
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
        const SET: &str = "UPDATE users SET password_hash = $2 WHERE username = $1 RETURNING id";
        // A reset after a compromise must sign the intruder out: every session ends with the
        // old password, in the same transaction.
        const END_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1";
        with_writer!(self, |pool| {
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(db)?;
            let id: Option<String> = sqlx::query_scalar(SET)
                .bind(username)
                .bind(password_hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            let Some(id) = id else {
                tx.rollback().await.map_err(db)?;
                return Ok(false);
            };
            sqlx::query(END_SESSIONS).bind(id.as_str()).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(true)
        })
    }

    async fn list_grants(
        &self,
        user_id: Option<&str>,
        client_id: Option<&ClientId>,
        limit: u32,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        self.grant_records(user_id, client_id, limit).await
    }

    async fn find_grant(&self, grant_id: &str) -> Result<Option<GrantRecord>, StoreError> {
        self.grant_record(grant_id).await
    }

    async fn update_client(&self, client: &Client) -> Result<bool, StoreError> {
        let lists = ClientLists::of(client)?;
        const SQL: &str = "UPDATE clients SET client_name = $2, secret_hash = $3, \
            token_endpoint_auth_method = $4, redirect_uris = $5, post_logout_redirect_uris = $6, \
            grant_types = $7, scope = $8, default_scope = $9, audience = $10, first_party = $11, \
            introspection = $12, introspection_audience = $13, access_token_format = $14, \
            jwks = $15, jwks_uri = $16, rate_limit_per_second = $17, \
            refresh_token_grace_seconds = $18, application_type = $19, client_uri = $20, \
            logo_uri = $21, tos_uri = $22, policy_uri = $23, \
            token_exchange_subject_clients = $24, token_exchange_subject_audiences = $25, \
            require_pushed_authorization_requests = $26, dpop_bound_access_tokens = $27, \
            id_token_signed_response_alg = $28, tls_client_auth_member = $29, \
            tls_client_auth_value = $30, tls_client_certificate_bound_access_tokens = $31 \
            WHERE client_id = $1 AND registration_token_hash IS NULL";
        let done = with_writer!(self, |pool| bind_client_columns!(sqlx::query(SQL), client, lists)
            .bind(lists.subject_clients.as_str())
            .bind(lists.subject_audiences.as_str())
            .bind(client.require_pushed_authorization_requests)
            .bind(client.dpop_bound_access_tokens)
            .bind(client.id_token_signed_response_alg.as_str())
            .bind(client.tls_client_auth_name.as_ref().map(CertificateName::member))
            .bind(client.tls_client_auth_name.as_ref().map(CertificateName::value))
            .bind(client.tls_client_certificate_bound_access_tokens)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(done > 0)
    }
}
