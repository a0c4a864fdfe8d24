//! `opaque_access_tokens` (stored by hash, for introspection), refresh-token look-ups,
//! `revoked_access_tokens` (the access-token denylist), `client_assertions` (replay records of
//! `private_key_jwt` assertions), and pruning what has expired.

use tessera_core::client_id::ClientId;
use tessera_core::secret::SecretHash;
use tessera_core::store::{OpaqueAccessToken, RefreshTokenRecord, StoreError, TokenStore};

use crate::grants::GrantRow;
use crate::sqlite_engine::{self, Done, conflict_or_error, error};
use crate::{Store, client_id_column, conflict_or_db, db, hash_column, json, scope_column};

#[derive(sqlx::FromRow)]
struct OpaqueTokenRow {
    token_hash: Vec<u8>,
    jti: String,
    client_id: String,
    sub: String,
    scope: String,
    audience: String,
    issued_at: i64,
    expires_at: i64,
    act: Option<String>,
}

impl OpaqueTokenRow {
    /// Reads the row (by column name) from rusqlite.
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(OpaqueTokenRow {
            token_hash: row.get("token_hash")?,
            jti: row.get("jti")?,
            client_id: row.get("client_id")?,
            sub: row.get("sub")?,
            scope: row.get("scope")?,
            audience: row.get("audience")?,
            issued_at: row.get("issued_at")?,
            expires_at: row.get("expires_at")?,
            act: row.get("act")?,
        })
    }

    /// The row is named by its `jti`, never by the token's hash.
    fn into_token(self) -> Result<OpaqueAccessToken, StoreError> {
        const TABLE: &str = "opaque_access_tokens";
        let row = self.jti.as_str();
        let act = match &self.act {
            None => None,
            Some(raw) => {
                Some(serde_json::from_str(raw).map_err(|e| crate::corrupt(TABLE, "act", row, e))?)
            }
        };
        Ok(OpaqueAccessToken {
            act,
            token_hash: hash_column(TABLE, "token_hash", row, &self.token_hash)?,
            client_id: client_id_column(TABLE, row, &self.client_id)?,
            scope: scope_column(TABLE, row, &self.scope)?,
            audience: json::decode(TABLE, "audience", row, &self.audience, |s| {
                Ok::<_, &str>(s.to_owned())
            })?,
            sub: self.sub,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            jti: self.jti,
        })
    }
}

/// A refresh token joined with its grant.
#[derive(sqlx::FromRow)]
struct RefreshTokenRow {
    #[sqlx(flatten)]
    grant: GrantRow,
    issued_at: i64,
    token_expires_at: i64,
    rotated_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl RefreshTokenRow {
    fn into_record(self) -> Result<RefreshTokenRecord, StoreError> {
        Ok(RefreshTokenRecord {
            grant: self.grant.into_grant()?,
            issued_at: self.issued_at,
            expires_at: self.token_expires_at,
            rotated: self.rotated_at.is_some(),
            grant_revoked: self.revoked_at.is_some(),
        })
    }
}

impl TokenStore for Store {
    async fn insert_opaque_access_token(
        &self,
        token: &OpaqueAccessToken,
    ) -> Result<(), StoreError> {
        // The hash is 256 random bits: a conflict is the `jti`.
        const SQL: &str = "INSERT INTO opaque_access_tokens (token_hash, jti, client_id, sub, \
            scope, audience, issued_at, expires_at, act) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        // `""` for an empty scope set.
        let scope = token.scope.to_string();
        let audience = json::encode(token.audience.iter().map(String::as_str))?;
        let act = match &token.act {
            None => None,
            Some(act) => {
                Some(serde_json::to_string(act).map_err(|e| StoreError::Backend(Box::new(e)))?)
            }
        };
        if let Some(engine) = self.engine() {
            let hash = *token.token_hash.as_bytes();
            let (jti, client_id) = (token.jti.clone(), token.client_id.as_str().to_owned());
            let (sub, issued_at, expires_at) =
                (token.sub.clone(), token.issued_at, token.expires_at);
            return engine
                .write(move |conn| {
                    sqlite_engine::execute(
                        conn,
                        SQL,
                        &[
                            &hash,
                            &jti,
                            &client_id,
                            &sub,
                            &scope,
                            &audience,
                            &issued_at,
                            &expires_at,
                            &act,
                        ],
                    )
                    .map_err(|e| conflict_or_error(e, || format!("access token `{jti}`")))?;
                    Ok(Done::keep(()))
                })
                .await;
        }
        with_writer!(self, |pool| {
            sqlx::query(SQL)
                .bind(token.token_hash.as_bytes().as_slice())
                .bind(token.jti.as_str())
                .bind(token.client_id.as_str())
                .bind(token.sub.as_str())
                .bind(scope.as_str())
                .bind(audience.as_str())
                .bind(token.issued_at)
                .bind(token.expires_at)
                .bind(act.as_deref())
                .execute(pool)
                .await
                .map_err(|e| conflict_or_db(e, || format!("access token `{}`", token.jti)))?;
        });
        Ok(())
    }

    async fn find_opaque_access_token(
        &self,
        token_hash: &SecretHash,
    ) -> Result<Option<OpaqueAccessToken>, StoreError> {
        const SQL: &str = "SELECT token_hash, jti, client_id, sub, scope, audience, issued_at, \
            expires_at, act FROM opaque_access_tokens WHERE token_hash = $1";
        let row: Option<OpaqueTokenRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(token_hash.as_bytes().as_slice())
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(OpaqueTokenRow::into_token).transpose()
    }

    async fn find_live_opaque_access_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<OpaqueAccessToken>, StoreError> {
        // The revocation checks of `GrantStore::is_access_token_revoked`, folded into the
        // lookup so that introspecting an opaque token is one round trip.
        const SQL: &str = "SELECT o.token_hash, o.jti, o.client_id, o.sub, o.scope, o.audience, \
            o.issued_at, o.expires_at, o.act FROM opaque_access_tokens o \
            WHERE o.token_hash = $1 AND o.expires_at > $2 \
            AND NOT EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti = o.jti) \
            AND NOT EXISTS (SELECT 1 FROM grant_access_tokens t JOIN grants g \
                ON g.id = t.grant_id WHERE t.jti = o.jti AND g.revoked_at IS NOT NULL)";
        if let Some(engine) = self.engine() {
            let hash = token_hash.as_bytes();
            let row = engine.read(|conn| {
                sqlite_engine::query_optional(conn, SQL, &[hash, &now], OpaqueTokenRow::from_sqlite)
                    .map_err(error)
            })?;
            return row.map(OpaqueTokenRow::into_token).transpose();
        }
        let row: Option<OpaqueTokenRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(token_hash.as_bytes().as_slice())
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(OpaqueTokenRow::into_token).transpose()
    }

    async fn find_refresh_token(
        &self,
        token_hash: &SecretHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        // The grant's columns under their own names (read by `GrantRow`), the token's renamed.
        const SQL: &str = "SELECT g.id, g.client_id, g.user_id, g.scope, g.auth_time, g.sid, \
            g.audience, g.created_at, g.expires_at, g.dpop_jkt, g.revoked_at, \
            r.created_at AS issued_at, \
            r.expires_at AS token_expires_at, r.rotated_at \
            FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.token_hash = $1";
        let row: Option<RefreshTokenRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(token_hash.as_bytes().as_slice())
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(RefreshTokenRow::into_record).transpose()
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        // Idempotent: a second revocation keeps the first entry.
        const SQL: &str = "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) \
            ON CONFLICT (jti) DO NOTHING";
        if let Some(engine) = self.engine() {
            let jti = jti.to_owned();
            return engine
                .write(move |conn| {
                    sqlite_engine::execute(conn, SQL, &[&jti, &expires_at]).map_err(error)?;
                    Ok(Done::keep(()))
                })
                .await;
        }
        with_writer!(self, |pool| {
            sqlx::query(SQL).bind(jti).bind(expires_at).execute(pool).await.map_err(db)?;
        });
        Ok(())
    }

    async fn record_assertion(
        &self,
        client_id: &ClientId,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        // One conditional write decides: of concurrent calls with one `jti`, one inserts.
        const SQL: &str = "INSERT INTO client_assertions (client_id, jti, expires_at) \
            VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING";
        if let Some(engine) = self.engine() {
            let (client_id, jti) = (client_id.as_str().to_owned(), jti.to_owned());
            return engine
                .write(move |conn| {
                    let inserted =
                        sqlite_engine::execute(conn, SQL, &[&client_id, &jti, &expires_at])
                            .map_err(error)?;
                    Ok(Done::keep(inserted > 0))
                })
                .await;
        }
        let inserted = with_writer!(self, |pool| sqlx::query(SQL)
            .bind(client_id.as_str())
            .bind(jti)
            .bind(expires_at)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(inserted > 0)
    }

    async fn prune_expired(&self, now: i64) -> Result<u64, StoreError> {
        // Children first, so that the count includes them. A grant goes once it has expired
        // and no access token recorded under it is still valid: deleting it earlier would
        // cascade those records away, and an unexpired token of a revoked grant would read as
        // not revoked. What remains of a pruned grant (a code or refresh token that outlived
        // it) cascades with it and is not counted.
        const PRUNE: [&str; 10] = [
            "DELETE FROM authorization_codes WHERE expires_at <= $1",
            "DELETE FROM refresh_tokens WHERE expires_at <= $1",
            "DELETE FROM grant_access_tokens WHERE expires_at <= $1",
            "DELETE FROM grants WHERE expires_at <= $1 AND NOT EXISTS \
                (SELECT 1 FROM grant_access_tokens t \
                WHERE t.grant_id = grants.id AND t.expires_at > $1)",
            "DELETE FROM opaque_access_tokens WHERE expires_at <= $1",
            "DELETE FROM revoked_access_tokens WHERE expires_at <= $1",
            "DELETE FROM client_assertions WHERE expires_at <= $1",
            "DELETE FROM sessions WHERE expires_at <= $1",
            "DELETE FROM device_authorizations WHERE expires_at <= $1",
            "DELETE FROM pushed_authorization_requests WHERE expires_at <= $1",
        ];
        with_writer!(self, |pool| {
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(db)?;
            let mut deleted = 0;
            for sql in PRUNE {
                deleted +=
                    sqlx::query(sql).bind(now).execute(&mut *tx).await.map_err(db)?.rows_affected();
            }
            tx.commit().await.map_err(db)?;
            Ok(deleted)
        })
    }
}
