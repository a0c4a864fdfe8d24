//! `consents`: remembered consents, one per user and client.

use tessera_core::client_id::ClientId;
use tessera_core::store::{Consent, ConsentStore, StoreError};

use crate::{Store, client_id_column, db, scope_column};

/// The `SELECT` every read starts with, as a literal for `concat!`.
macro_rules! select_consents {
    () => {
        "SELECT user_id, client_id, scope, granted_at FROM consents"
    };
}

#[derive(sqlx::FromRow)]
struct ConsentRow {
    user_id: String,
    client_id: String,
    scope: String,
    granted_at: i64,
}

impl ConsentRow {
    fn into_consent(self) -> Result<Consent, StoreError> {
        const TABLE: &str = "consents";
        let row = format!("{}/{}", self.user_id, self.client_id);
        Ok(Consent {
            client_id: client_id_column(TABLE, &row, &self.client_id)?,
            scope: scope_column(TABLE, &row, &self.scope)?,
            user_id: self.user_id,
            granted_at: self.granted_at,
        })
    }
}

impl ConsentStore for Store {
    async fn find_consent(
        &self,
        user_id: &str,
        client_id: &ClientId,
    ) -> Result<Option<Consent>, StoreError> {
        const SQL: &str = concat!(select_consents!(), " WHERE user_id = $1 AND client_id = $2");
        let row: Option<ConsentRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(user_id)
            .bind(client_id.as_str())
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(ConsentRow::into_consent).transpose()
    }

    async fn save_consent(&self, consent: &Consent) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO consents (user_id, client_id, scope, granted_at) \
            VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, client_id) \
            DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at";
        // `""` for an empty scope set.
        let scope = consent.scope.to_string();
        with_writer!(self, |pool| {
            sqlx::query(SQL)
                .bind(consent.user_id.as_str())
                .bind(consent.client_id.as_str())
                .bind(scope.as_str())
                .bind(consent.granted_at)
                .execute(pool)
                .await
                .map_err(db)?;
        });
        Ok(())
    }

    async fn list_consents(&self, user_id: &str) -> Result<Vec<Consent>, StoreError> {
        const SQL: &str = concat!(select_consents!(), " WHERE user_id = $1 ORDER BY client_id");
        let rows: Vec<ConsentRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(user_id)
            .fetch_all(pool)
            .await
            .map_err(db)?);
        rows.into_iter().map(ConsentRow::into_consent).collect()
    }

    async fn revoke_consent(
        &self,
        user_id: &str,
        client_id: &ClientId,
        now: i64,
    ) -> Result<bool, StoreError> {
        const DELETE: &str = "DELETE FROM consents WHERE user_id = $1 AND client_id = $2";
        // Grants revoked before keep their time.
        const REVOKE: &str = "UPDATE grants SET revoked_at = $1 \
            WHERE user_id = $2 AND client_id = $3 AND revoked_at IS NULL";
        let deleted = with_writer!(self, |pool| {
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(db)?;
            let deleted = sqlx::query(DELETE)
                .bind(user_id)
                .bind(client_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            sqlx::query(REVOKE)
                .bind(now)
                .bind(user_id)
                .bind(client_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            deleted
        });
        Ok(deleted > 0)
    }
}
