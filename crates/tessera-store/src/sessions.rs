//! `sessions`: login sessions of the server's own pages, stored by the hash of the cookie's
//! secret.

use tessera_core::secret::SecretHash;
use tessera_core::store::{Session, SessionStore, StoreError};

use crate::{Store, conflict_or_db, db, hash_column};

#[derive(sqlx::FromRow)]
struct SessionRow {
    id_hash: Vec<u8>,
    sid: String,
    user_id: String,
    auth_time: i64,
    expires_at: i64,
}

impl SessionRow {
    /// The row is named by its public `sid`, never by the hash of the cookie's secret.
    fn into_session(self) -> Result<Session, StoreError> {
        Ok(Session {
            id_hash: hash_column("sessions", "id_hash", &self.sid, &self.id_hash)?,
            sid: self.sid,
            user_id: self.user_id,
            auth_time: self.auth_time,
            expires_at: self.expires_at,
        })
    }
}

impl SessionStore for Store {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        // `id_hash` is 256 random bits: a conflict is the `sid`.
        const SQL: &str = "INSERT INTO sessions (id_hash, sid, user_id, auth_time, expires_at) \
            VALUES ($1, $2, $3, $4, $5)";
        with_writer!(self, |pool| {
            sqlx::query(SQL)
                .bind(session.id_hash.as_bytes().as_slice())
                .bind(session.sid.as_str())
                .bind(session.user_id.as_str())
                .bind(session.auth_time)
                .bind(session.expires_at)
                .execute(pool)
                .await
                .map_err(|e| conflict_or_db(e, || format!("session `{}`", session.sid)))?;
        });
        Ok(())
    }

    async fn find_session(
        &self,
        id_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<Session>, StoreError> {
        // A session counts only while its user exists and is enabled: deleting or disabling
        // a user deletes their sessions, and this join also covers a session opened by a
        // sign-in that was still running then.
        const SQL: &str = "SELECT s.id_hash, s.sid, s.user_id, s.auth_time, s.expires_at \
            FROM sessions s JOIN users u ON u.id = s.user_id \
            WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.disabled = FALSE";
        let row: Option<SessionRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(id_hash.as_bytes().as_slice())
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(SessionRow::into_session).transpose()
    }

    async fn delete_session(&self, id_hash: &SecretHash) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM sessions WHERE id_hash = $1";
        with_writer!(self, |pool| {
            sqlx::query(SQL).bind(id_hash.as_bytes().as_slice()).execute(pool).await.map_err(db)?;
        });
        Ok(())
    }

    async fn record_sign_in_for(
        &self,
        id_hash: &SecretHash,
        request_hash: &SecretHash,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE sessions SET signed_in_for = $1 WHERE id_hash = $2";
        with_writer!(self, |pool| {
            sqlx::query(SQL)
                .bind(request_hash.as_bytes().as_slice())
                .bind(id_hash.as_bytes().as_slice())
                .execute(pool)
                .await
                .map_err(db)?;
        });
        Ok(())
    }

    async fn take_sign_in_for(
        &self,
        id_hash: &SecretHash,
        request_hash: &SecretHash,
    ) -> Result<bool, StoreError> {
        // One conditional write: of two consents posted for one sign-in, one counts it.
        const SQL: &str = "UPDATE sessions SET signed_in_for = NULL \
            WHERE id_hash = $1 AND signed_in_for = $2";
        let taken = with_writer!(self, |pool| sqlx::query(SQL)
            .bind(id_hash.as_bytes().as_slice())
            .bind(request_hash.as_bytes().as_slice())
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(taken == 1)
    }
}
