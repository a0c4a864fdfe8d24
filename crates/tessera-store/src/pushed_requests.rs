//! `pushed_authorization_requests` (RFC 9126): stored by the SHA-256 of their `request_uri`,
//! taken once by a `DELETE … RETURNING`, so that of concurrent uses exactly one gets the
//! request.

use tessera_core::client_id::ClientId;
use tessera_core::secret::SecretHash;
use tessera_core::store::{PushedRequest, PushedRequestStore, StoreError};

use crate::{Store, conflict_or_db, db};

impl PushedRequestStore for Store {
    async fn insert_pushed_request(&self, request: &PushedRequest) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO pushed_authorization_requests \
            (request_uri_hash, client_id, params, expires_at) VALUES ($1, $2, $3, $4)";
        with_writer!(self, |pool| {
            sqlx::query(SQL)
                .bind(request.request_uri_hash.as_bytes().as_slice())
                .bind(request.client_id.as_str())
                .bind(request.query.as_str())
                .bind(request.expires_at)
                .execute(pool)
                .await
                // The hash is of 256 random bits: a conflict is named by the client only.
                .map_err(|e| {
                    conflict_or_db(e, || format!("pushed request of `{}`", request.client_id))
                })?;
        });
        Ok(())
    }

    async fn take_pushed_request(
        &self,
        hash: &SecretHash,
        client_id: &ClientId,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        const SQL: &str = "DELETE FROM pushed_authorization_requests \
            WHERE request_uri_hash = $1 AND client_id = $2 AND expires_at > $3 RETURNING params";
        let query: Option<String> = with_writer!(self, |pool| sqlx::query_scalar(SQL)
            .bind(hash.as_bytes().as_slice())
            .bind(client_id.as_str())
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        Ok(query)
    }
}
