//! `grants` and what descends from them: `authorization_codes` (single use),
//! `refresh_tokens` (rotated, reuse detected) and `grant_access_tokens` (revoked with their
//! grant).

use tessera_core::client_id::ClientId;
use tessera_core::pkce::CodeChallenge;
use tessera_core::secret::SecretHash;
use tessera_core::store::{
    AuthorizationCode, AuthorizationCodeStore, CodeRedemption, Grant, GrantRecord, GrantStore,
    RefreshRotation, RotationRequest, StoreError,
};

use crate::postgres_batches::{self, Batched};
use crate::sqlite_engine::{self, Done, conflict_or_error, error};
use crate::{Store, client_id_column, conflict_or_db, db, hash_column, json, scope_column};

/// The `SELECT` every grant read starts with, as a literal for `concat!`.
macro_rules! select_grants {
    () => {
        "SELECT id, client_id, user_id, scope, auth_time, sid, audience, created_at, expires_at, \
         dpop_jkt FROM grants"
    };
}

/// A `grants` row; `tokens` reads it joined with a refresh token.
#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    id: String,
    client_id: String,
    user_id: String,
    scope: String,
    auth_time: i64,
    sid: Option<String>,
    audience: String,
    created_at: i64,
    expires_at: i64,
    dpop_jkt: Option<String>,
}

impl GrantRow {
    /// Reads the columns of [`select_grants!`] (by name) from a rusqlite row.
    pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(GrantRow {
            id: row.get("id")?,
            client_id: row.get("client_id")?,
            user_id: row.get("user_id")?,
            scope: row.get("scope")?,
            auth_time: row.get("auth_time")?,
            sid: row.get("sid")?,
            audience: row.get("audience")?,
            created_at: row.get("created_at")?,
            expires_at: row.get("expires_at")?,
            dpop_jkt: row.get("dpop_jkt")?,
        })
    }

    pub(crate) fn into_grant(self) -> Result<Grant, StoreError> {
        const TABLE: &str = "grants";
        Ok(Grant {
            client_id: client_id_column(TABLE, &self.id, &self.client_id)?,
            scope: scope_column(TABLE, &self.id, &self.scope)?,
            audience: json::decode(TABLE, "audience", &self.id, &self.audience, |s| {
                Ok::<_, &str>(s.to_owned())
            })?,
            user_id: self.user_id,
            auth_time: self.auth_time,
            sid: self.sid,
            created_at: self.created_at,
            expires_at: self.expires_at,
            dpop_jkt: self.dpop_jkt,
            id: self.id,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CodeRow {
    pub(crate) code_hash: Vec<u8>,
    pub(crate) grant_id: String,
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) nonce: Option<String>,
    pub(crate) expires_at: i64,
}

impl CodeRow {
    /// Reads the columns `SPEND_CODE` returns (by name) from a rusqlite row.
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(CodeRow {
            code_hash: row.get("code_hash")?,
            grant_id: row.get("grant_id")?,
            client_id: row.get("client_id")?,
            redirect_uri: row.get("redirect_uri")?,
            code_challenge: row.get("code_challenge")?,
            nonce: row.get("nonce")?,
            expires_at: row.get("expires_at")?,
        })
    }

    /// The row is named by its grant: the code's hash identifies nothing useful to a reader.
    pub(crate) fn into_code(self) -> Result<AuthorizationCode, StoreError> {
        const TABLE: &str = "authorization_codes";
        Ok(AuthorizationCode {
            code_hash: hash_column(TABLE, "code_hash", &self.grant_id, &self.code_hash)?,
            client_id: client_id_column(TABLE, &self.grant_id, &self.client_id)?,
            redirect_uri: self.redirect_uri,
            code_challenge: CodeChallenge::from_stored(self.code_challenge),
            nonce: self.nonce,
            expires_at: self.expires_at,
            grant_id: self.grant_id,
        })
    }
}

/// What a code that could not be spent was.
#[derive(sqlx::FromRow)]
struct SpentCodeRow {
    grant_id: String,
    client_id: String,
    redeemed_at: Option<i64>,
}

/// What a refresh token that could not be rotated was.
#[derive(sqlx::FromRow)]
struct SpentTokenRow {
    grant_id: String,
    client_id: String,
    rotated_at: Option<i64>,
}

const SELECT_GRANT: &str = concat!(select_grants!(), " WHERE id = $1");

const INSERT_CODE: &str = "INSERT INTO authorization_codes (code_hash, grant_id, client_id, \
    redirect_uri, code_challenge, nonce, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

// The one write that decides a redemption (design invariant 1), only for the client the code
// was issued to (RFC 6749 §4.1.3): another client holding the code cannot spend it. A code of
// a revoked grant (the user withdrew consent before it was redeemed), or of a user who has
// since been deleted or disabled, cannot be spent either.
const SPEND_CODE: &str = "UPDATE authorization_codes SET redeemed_at = $1 \
    WHERE code_hash = $2 AND client_id = $3 AND redeemed_at IS NULL AND expires_at > $1 \
    AND grant_id IN (SELECT g.id FROM grants g JOIN users u ON u.id = g.user_id \
        WHERE g.revoked_at IS NULL AND u.disabled = FALSE) \
    RETURNING code_hash, grant_id, client_id, redirect_uri, code_challenge, nonce, expires_at";
const LOOK_UP_CODE: &str =
    "SELECT grant_id, client_id, redeemed_at FROM authorization_codes WHERE code_hash = $1";

// The one write that decides a rotation (design invariant 1): it spends the token only if it
// is current, unexpired, and of a live grant of this client whose user still exists and is
// enabled (a deletion or disabling revokes the grants too; this also covers grants of users
// deleted before that was so).
const SPEND_REFRESH_TOKEN: &str = "UPDATE refresh_tokens SET rotated_at = $1 \
    WHERE token_hash = $2 AND rotated_at IS NULL AND expires_at > $1 \
    AND grant_id IN (SELECT g.id FROM grants g JOIN users u ON u.id = g.user_id \
        WHERE g.client_id = $3 AND g.revoked_at IS NULL AND g.expires_at > $1 \
        AND u.disabled = FALSE) \
    AND (x5t_s256 IS NULL OR x5t_s256 = $4) \
    RETURNING grant_id, x5t_s256";
const LOOK_UP_REFRESH_TOKEN: &str = "SELECT r.grant_id, g.client_id, r.rotated_at \
    FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.token_hash = $1";
// Within the client's grace window, a token rotated moments ago by a concurrent request of
// the same client is as good as current, as long as its grant is live.
const WITHIN_GRACE: &str = "SELECT g.id, r.x5t_s256 FROM refresh_tokens r \
    JOIN grants g ON g.id = r.grant_id JOIN users u ON u.id = g.user_id \
    WHERE r.token_hash = $1 AND r.rotated_at >= $2 AND g.client_id = $3 \
    AND g.revoked_at IS NULL AND g.expires_at > $4 AND u.disabled = FALSE \
    AND (r.x5t_s256 IS NULL OR r.x5t_s256 = $5)";
pub(crate) const INSERT_GRANT: &str = "INSERT INTO grants (id, client_id, user_id, scope, auth_time, sid, \
    audience, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// The insert of `$grant`, with its scope and audience already encoded as `$scope` and
/// `$audience` (`String`s that outlive the query); on either backend.
macro_rules! insert_grant_query {
    ($grant:expr, $scope:expr, $audience:expr) => {
        sqlx::query($crate::grants::INSERT_GRANT)
            .bind($grant.id.as_str())
            .bind($grant.client_id.as_str())
            .bind($grant.user_id.as_str())
            .bind($scope.as_str())
            .bind($grant.auth_time)
            .bind($grant.sid.as_deref())
            .bind($audience.as_str())
            .bind($grant.created_at)
            .bind($grant.expires_at)
    };
}
pub(crate) use insert_grant_query;

impl AuthorizationCodeStore for Store {
    async fn insert_grant_with_code(
        &self,
        grant: &Grant,
        code: &AuthorizationCode,
    ) -> Result<(), StoreError> {
        // `""` for an empty scope set.
        let scope = grant.scope.to_string();
        let audience = json::encode(grant.audience.iter().map(String::as_str))?;
        if let Some(engine) = self.engine() {
            let (grant, code) = (grant.clone(), code.clone());
            return engine
                .write(move |conn| {
                    insert_grant_sqlite(conn, &grant, &scope, &audience)?;
                    sqlite_engine::execute(
                        conn,
                        INSERT_CODE,
                        &[
                            code.code_hash.as_bytes(),
                            &code.grant_id,
                            &code.client_id.as_str(),
                            &code.redirect_uri,
                            &code.code_challenge.as_str(),
                            &code.nonce,
                            &code.expires_at,
                        ],
                    )
                    .map_err(|e| {
                        conflict_or_error(e, || {
                            format!("authorization code of grant `{}`", grant.id)
                        })
                    })?;
                    Ok(Done::keep(()))
                })
                .await;
        }
        with_writer!(self, |pool| {
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(db)?;
            insert_grant_query!(grant, scope, audience)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or_db(e, || format!("grant `{}`", grant.id)))?;
            sqlx::query(INSERT_CODE)
                .bind(code.code_hash.as_bytes().as_slice())
                .bind(code.grant_id.as_str())
                .bind(code.client_id.as_str())
                .bind(code.redirect_uri.as_str())
                .bind(code.code_challenge.as_str())
                .bind(code.nonce.as_deref())
                .bind(code.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    conflict_or_db(e, || format!("authorization code of grant `{}`", grant.id))
                })?;
            tx.commit().await.map_err(db)?;
        });
        Ok(())
    }

    async fn redeem_code<P: Send + 'static, R: Send + 'static>(
        &self,
        code_hash: &SecretHash,
        client_id: &ClientId,
        now: i64,
        check: impl FnOnce(&AuthorizationCode) -> Result<P, R> + Send + 'static,
    ) -> Result<CodeRedemption<P, R>, StoreError> {
        if let Some(engine) = self.engine() {
            let (hash, client_id) = (*code_hash.as_bytes(), client_id.as_str().to_owned());
            return engine
                .write(move |conn| redeem_code_sqlite(conn, &hash, &client_id, now, check))
                .await;
        }
        let hash = code_hash.as_bytes().as_slice();
        // PostgreSQL: the spend and the grant read as one statement (issue 16 item 2).
        let mut check = Some(check);
        if let (crate::pool::Pool::Postgres(pool), true) = (&self.pool, self.postgres_batches) {
            match postgres_batches::redeem(pool, hash, client_id.as_str(), now, &mut check).await? {
                Batched::Done((code, grant, proof)) => {
                    return Ok(CodeRedemption::Redeemed { code: Box::new(code), grant, proof });
                }
                Batched::Refused(reason) => return Ok(CodeRedemption::Refused(reason)),
                Batched::Missed => {}
            }
        }
        let Some(check) = check else {
            return Err(StoreError::Backend("the code check was used without a spend".into()));
        };
        // An explicit transaction also makes the write durable before the answer is used,
        // whatever the driver does with a partly read `RETURNING` statement, and lets a
        // refused check undo the write.
        with_writer!(self, |pool| {
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(db)?;
            let code: Option<CodeRow> = sqlx::query_as(SPEND_CODE)
                .bind(now)
                .bind(hash)
                .bind(client_id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            let outcome = match code {
                Some(code) => {
                    let grant: GrantRow = sqlx::query_as(SELECT_GRANT)
                        .bind(code.grant_id.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db)?;
                    // Read before committing: a row that does not parse spends nothing.
                    let (code, grant) = (code.into_code()?, grant.into_grant()?);
                    match check(&code) {
                        Ok(proof) => {
                            CodeRedemption::Redeemed { code: Box::new(code), grant, proof }
                        }
                        Err(reason) => {
                            tx.rollback().await.map_err(db)?;
                            return Ok(CodeRedemption::Refused(reason));
                        }
                    }
                }
                None => {
                    let missed: Option<SpentCodeRow> = sqlx::query_as(LOOK_UP_CODE)
                        .bind(hash)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db)?;
                    missed_code(missed, client_id.as_str())
                }
            };
            tx.commit().await.map_err(db)?;
            Ok(outcome)
        })
    }
}

impl GrantStore for Store {
    async fn insert_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        let scope = grant.scope.to_string();
        let audience = json::encode(grant.audience.iter().map(String::as_str))?;
        with_writer!(self, |pool| insert_grant_query!(grant, scope, audience)
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(|e| conflict_or_db(e, || format!("grant `{}`", grant.id)))?);
        Ok(())
    }

    async fn insert_refresh_token(
        &self,
        token_hash: &SecretHash,
        grant_id: &str,
        now: i64,
        expires_at: i64,
        certificate: Option<&str>,
    ) -> Result<(), StoreError> {
        if let Some(engine) = self.engine() {
            let (hash, grant_id) = (*token_hash.as_bytes(), grant_id.to_owned());
            let certificate = certificate.map(str::to_owned);
            return engine
                .write(move |conn| {
                    sqlite_engine::execute(
                        conn,
                        INSERT_REFRESH_TOKEN,
                        &[&hash, &grant_id, &now, &expires_at, &certificate],
                    )
                    .map_err(|e| refresh_token_conflict_sqlite(e, &grant_id))?;
                    Ok(Done::keep(()))
                })
                .await;
        }
        with_writer!(self, |pool| {
            sqlx::query(INSERT_REFRESH_TOKEN)
                .bind(token_hash.as_bytes().as_slice())
                .bind(grant_id)
                .bind(now)
                .bind(expires_at)
                .bind(certificate)
                .execute(pool)
                .await
                .map_err(|e| refresh_token_conflict(e, grant_id))?;
        });
        Ok(())
    }

    async fn rotate_refresh_token<A: Send + 'static, R: Send + 'static>(
        &self,
        rotation: RotationRequest<'_>,
        accept: impl FnOnce(&Grant) -> Result<A, R> + Send + 'static,
    ) -> Result<RefreshRotation<A, R>, StoreError> {
        if let Some(engine) = self.engine() {
            let owned = OwnedRotation::of(&rotation);
            return engine.write(move |conn| rotate_sqlite(conn, &owned, accept)).await;
        }
        // PostgreSQL: spend, grant read and inserts as one statement (issue 16 item 2).
        let mut accept = Some(accept);
        if let (crate::pool::Pool::Postgres(pool), true) = (&self.pool, self.postgres_batches) {
            match postgres_batches::rotate(pool, &rotation, &mut accept).await? {
                Batched::Done((grant, accepted)) => {
                    return Ok(RefreshRotation::Rotated { grant, accepted });
                }
                Batched::Refused(reason) => return Ok(RefreshRotation::Refused(reason)),
                Batched::Missed => {}
            }
        }
        let Some(accept) = accept else {
            return Err(StoreError::Backend("the grant check was used without a spend".into()));
        };
        let RotationRequest {
            old,
            new,
            client_id,
            now,
            idle_ttl,
            access_token_jti,
            access_token_expires_at,
            grace_seconds,
            certificate,
        } = rotation;
        with_writer!(self, |pool| {
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(db)?;
            // The grant and the certificate binding the new token inherits (RFC 8705 §4).
            let spent: Option<(String, Option<String>)> = sqlx::query_as(SPEND_REFRESH_TOKEN)
                .bind(now)
                .bind(old.as_bytes().as_slice())
                .bind(client_id.as_str())
                .bind(certificate)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            let spent = match spent {
                Some(spent) => Some(spent),
                None if grace_seconds > 0 => sqlx::query_as(WITHIN_GRACE)
                    .bind(old.as_bytes().as_slice())
                    .bind(now.saturating_sub(grace_seconds))
                    .bind(client_id.as_str())
                    .bind(now)
                    .bind(certificate)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?,
                None => None,
            };
            let Some((grant_id, bound_to)) = spent else {
                let missed: Option<SpentTokenRow> = sqlx::query_as(LOOK_UP_REFRESH_TOKEN)
                    .bind(old.as_bytes().as_slice())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.rollback().await.map_err(db)?;
                return Ok(missed_refresh_token(missed, client_id.as_str()));
            };
            let row: GrantRow = sqlx::query_as(SELECT_GRANT)
                .bind(grant_id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            let grant = row.into_grant()?;
            let accepted = match accept(&grant) {
                Ok(accepted) => accepted,
                Err(reason) => {
                    tx.rollback().await.map_err(db)?;
                    return Ok(RefreshRotation::Refused(reason));
                }
            };
            let expires_at = now.saturating_add(idle_ttl).min(grant.expires_at);
            sqlx::query(INSERT_REFRESH_TOKEN)
                .bind(new.as_bytes().as_slice())
                .bind(grant.id.as_str())
                .bind(now)
                .bind(expires_at)
                .bind(bound_to.as_deref())
                .execute(&mut *tx)
                .await
                .map_err(|e| refresh_token_conflict(e, &grant.id))?;
            sqlx::query(RECORD_ACCESS_TOKEN)
                .bind(access_token_jti)
                .bind(grant.id.as_str())
                .bind(access_token_expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or_db(e, || format!("access token `{access_token_jti}`")))?;
            tx.commit().await.map_err(db)?;
            Ok(RefreshRotation::Rotated { grant, accepted })
        })
    }

    async fn record_access_token(
        &self,
        grant_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        if let Some(engine) = self.engine() {
            let (grant_id, jti) = (grant_id.to_owned(), jti.to_owned());
            return engine
                .write(move |conn| {
                    sqlite_engine::execute(
                        conn,
                        RECORD_ACCESS_TOKEN,
                        &[&jti, &grant_id, &expires_at],
                    )
                    .map_err(|e| conflict_or_error(e, || format!("access token `{jti}`")))?;
                    Ok(Done::keep(()))
                })
                .await;
        }
        with_writer!(self, |pool| {
            sqlx::query(RECORD_ACCESS_TOKEN)
                .bind(jti)
                .bind(grant_id)
                .bind(expires_at)
                .execute(pool)
                .await
                .map_err(|e| conflict_or_db(e, || format!("access token `{jti}`")))?;
        });
        Ok(())
    }

    async fn record_derived_access_token(
        &self,
        subject_jti: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO grant_access_tokens (jti, grant_id, expires_at) \
            SELECT $1, grant_id, $2 FROM grant_access_tokens WHERE jti = $3";
        let done = with_writer!(self, |pool| sqlx::query(SQL)
            .bind(jti)
            .bind(expires_at)
            .bind(subject_jti)
            .execute(pool)
            .await
            .map_err(|e| conflict_or_db(e, || format!("access token `{jti}`")))?
            .rows_affected());
        Ok(done > 0)
    }

    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<(), StoreError> {
        // The first revocation's time is kept.
        const SQL: &str = "UPDATE grants SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2";
        with_writer!(self, |pool| {
            sqlx::query(SQL).bind(now).bind(grant_id).execute(pool).await.map_err(db)?;
        });
        Ok(())
    }

    async fn grant_access_tokens(
        &self,
        grant_id: &str,
        now: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        const SQL: &str = "SELECT jti, expires_at FROM grant_access_tokens \
            WHERE grant_id = $1 AND expires_at > $2";
        with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(grant_id)
            .bind(now)
            .fetch_all(pool)
            .await
            .map_err(db))
    }

    async fn bind_refresh_tokens_to_dpop_key(
        &self,
        grant_id: &str,
        jkt: &str,
    ) -> Result<(), StoreError> {
        // The first binding stays: a later proof of another key changes nothing.
        const SQL: &str = "UPDATE grants SET dpop_jkt = $2 WHERE id = $1 AND dpop_jkt IS NULL";
        with_writer!(self, |pool| {
            sqlx::query(SQL).bind(grant_id).bind(jkt).execute(pool).await.map_err(db)?;
        });
        Ok(())
    }

    async fn revoked_user_access_tokens(
        &self,
        user_id: &str,
        client_id: Option<&ClientId>,
        now: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        const SQL: &str = "SELECT t.jti, t.expires_at FROM grant_access_tokens t \
            JOIN grants g ON g.id = t.grant_id \
            WHERE g.user_id = $1 AND g.revoked_at IS NOT NULL AND t.expires_at > $2 \
            AND ($3 IS NULL OR g.client_id = $3)";
        let client_id = client_id.map(|c| c.as_str().to_owned());
        with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(user_id)
            .bind(now)
            .bind(client_id.clone())
            .fetch_all(pool)
            .await
            .map_err(db))
    }

    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        // On the denylist, or recorded under a revoked grant.
        const SQL: &str = "SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1) \
            OR EXISTS (SELECT 1 FROM grant_access_tokens t JOIN grants g ON g.id = t.grant_id \
                WHERE t.jti = $1 AND g.revoked_at IS NOT NULL)";
        if let Some(engine) = self.engine() {
            return engine.read(|conn| {
                let revoked = sqlite_engine::query_optional(conn, SQL, &[&jti], |row| row.get(0))
                    .map_err(error)?;
                Ok(revoked.unwrap_or(false))
            });
        }
        with_reader!(self, |pool| sqlx::query_scalar(SQL)
            .bind(jti)
            .fetch_one(pool)
            .await
            .map_err(db))
    }
}

/// A `grants` row with its revocation time, as the admin API lists it.
#[derive(sqlx::FromRow)]
struct GrantRecordRow {
    #[sqlx(flatten)]
    grant: GrantRow,
    revoked_at: Option<i64>,
}

impl GrantRecordRow {
    fn into_record(self) -> Result<GrantRecord, StoreError> {
        Ok(GrantRecord { grant: self.grant.into_grant()?, revoked_at: self.revoked_at })
    }
}

/// The `SELECT` of [`GrantRecordRow`]s.
macro_rules! select_grant_records {
    () => {
        "SELECT id, client_id, user_id, scope, auth_time, sid, audience, created_at, expires_at, \
         dpop_jkt, revoked_at FROM grants"
    };
}

impl Store {
    /// The grants of a user and/or client, newest first (`AdminStore::list_grants`).
    pub(crate) async fn grant_records(
        &self,
        user_id: Option<&str>,
        client_id: Option<&ClientId>,
        limit: u32,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        const SQL: &str = concat!(
            select_grant_records!(),
            " WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR client_id = $2) \
             ORDER BY created_at DESC, id LIMIT $3"
        );
        let user_id = user_id.map(str::to_owned);
        let client_id = client_id.map(|c| c.as_str().to_owned());
        let rows: Vec<GrantRecordRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(user_id.clone())
            .bind(client_id.clone())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(db)?);
        rows.into_iter().map(GrantRecordRow::into_record).collect()
    }

    /// One grant, revoked or not (`AdminStore::find_grant`).
    pub(crate) async fn grant_record(
        &self,
        grant_id: &str,
    ) -> Result<Option<GrantRecord>, StoreError> {
        const SQL: &str = concat!(select_grant_records!(), " WHERE id = $1");
        let row: Option<GrantRecordRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(grant_id)
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(GrantRecordRow::into_record).transpose()
    }
}

const RECORD_ACCESS_TOKEN: &str =
    "INSERT INTO grant_access_tokens (jti, grant_id, expires_at) VALUES ($1, $2, $3)";

const INSERT_REFRESH_TOKEN: &str = "INSERT INTO refresh_tokens (token_hash, grant_id, \
    created_at, expires_at, x5t_s256) VALUES ($1, $2, $3, $4, $5)";

/// A refresh token's hash is 256 random bits: a clash is named by its grant, never its value.
fn refresh_token_conflict(e: sqlx::Error, grant_id: &str) -> StoreError {
    conflict_or_db(e, || format!("refresh token of grant `{grant_id}`"))
}

/// A refresh-token clash on the SQLite engine, named as [`refresh_token_conflict`] names it.
fn refresh_token_conflict_sqlite(e: rusqlite::Error, grant_id: &str) -> StoreError {
    conflict_or_error(e, || format!("refresh token of grant `{grant_id}`"))
}

/// What a code that [`SPEND_CODE`] did not match was, from its [`LOOK_UP_CODE`] row.
fn missed_code<P, R>(missed: Option<SpentCodeRow>, client_id: &str) -> CodeRedemption<P, R> {
    match missed {
        // Another client learns only that: it spends nothing and revokes nothing (RFC 6749
        // §10.5).
        Some(row) if row.client_id != client_id => CodeRedemption::IssuedToAnotherClient,
        Some(SpentCodeRow { grant_id, redeemed_at: Some(_), .. }) => {
            CodeRedemption::AlreadyRedeemed { grant_id }
        }
        // Never redeemed: unknown, expired, of a revoked grant or a user gone.
        _ => CodeRedemption::Unknown,
    }
}

/// What a refresh token that [`SPEND_REFRESH_TOKEN`] did not match was, from its
/// [`LOOK_UP_REFRESH_TOKEN`] row.
fn missed_refresh_token<A, R>(
    missed: Option<SpentTokenRow>,
    client_id: &str,
) -> RefreshRotation<A, R> {
    match missed {
        // Reuse is told only to the client the token was issued to: anyone else presenting
        // it learns nothing and cannot revoke the grant.
        Some(SpentTokenRow { grant_id, client_id: owner, rotated_at: Some(_) })
            if owner == client_id =>
        {
            RefreshRotation::Reused { grant_id }
        }
        _ => RefreshRotation::Invalid,
    }
}

/// [`INSERT_GRANT`] on the SQLite engine, with the scope and audience already encoded.
fn insert_grant_sqlite(
    conn: &rusqlite::Connection,
    grant: &Grant,
    scope: &str,
    audience: &str,
) -> Result<(), StoreError> {
    sqlite_engine::execute(
        conn,
        INSERT_GRANT,
        &[
            &grant.id,
            &grant.client_id.as_str(),
            &grant.user_id,
            &scope,
            &grant.auth_time,
            &grant.sid,
            &audience,
            &grant.created_at,
            &grant.expires_at,
        ],
    )
    .map_err(|e| conflict_or_error(e, || format!("grant `{}`", grant.id)))?;
    Ok(())
}

/// The redemption of `redeem_code` as one job of the SQLite writer: the same statements as
/// the sqlx body, in the job's savepoint (a refused check or an unreadable row rolls the
/// spend back).
fn redeem_code_sqlite<P, R>(
    conn: &rusqlite::Connection,
    hash: &[u8; 32],
    client_id: &str,
    now: i64,
    check: impl FnOnce(&AuthorizationCode) -> Result<P, R>,
) -> Result<Done<CodeRedemption<P, R>>, StoreError> {
    let spent = sqlite_engine::query_optional(conn, SPEND_CODE, &[&now, hash, &client_id], |row| {
        CodeRow::from_sqlite(row)
    })
    .map_err(error)?;
    let Some(code) = spent else {
        let missed = sqlite_engine::query_optional(conn, LOOK_UP_CODE, &[hash], |row| {
            Ok(SpentCodeRow {
                grant_id: row.get("grant_id")?,
                client_id: row.get("client_id")?,
                redeemed_at: row.get("redeemed_at")?,
            })
        })
        .map_err(error)?;
        return Ok(Done::keep(missed_code(missed, client_id)));
    };
    let grant = read_grant_sqlite(conn, &code.grant_id)?;
    // Read before committing: a row that does not parse spends nothing.
    let (code, grant) = (code.into_code()?, grant.into_grant()?);
    Ok(match check(&code) {
        Ok(proof) => Done::keep(CodeRedemption::Redeemed { code: Box::new(code), grant, proof }),
        Err(reason) => Done::undo(CodeRedemption::Refused(reason)),
    })
}

/// The grant a spend just matched (its foreign key guarantees it exists).
fn read_grant_sqlite(conn: &rusqlite::Connection, grant_id: &str) -> Result<GrantRow, StoreError> {
    sqlite_engine::query_optional(conn, SELECT_GRANT, &[&grant_id], GrantRow::from_sqlite)
        .map_err(error)?
        .ok_or_else(|| StoreError::Backend(format!("grant `{grant_id}` is missing").into()))
}

/// A [`RotationRequest`] that owns its values, to be sent to the SQLite writer thread.
struct OwnedRotation {
    old: [u8; 32],
    new: [u8; 32],
    client_id: String,
    now: i64,
    idle_ttl: i64,
    access_token_jti: String,
    access_token_expires_at: i64,
    grace_seconds: i64,
    certificate: Option<String>,
}

impl OwnedRotation {
    fn of(rotation: &RotationRequest<'_>) -> Self {
        OwnedRotation {
            old: *rotation.old.as_bytes(),
            new: *rotation.new.as_bytes(),
            client_id: rotation.client_id.as_str().to_owned(),
            now: rotation.now,
            idle_ttl: rotation.idle_ttl,
            access_token_jti: rotation.access_token_jti.to_owned(),
            access_token_expires_at: rotation.access_token_expires_at,
            grace_seconds: rotation.grace_seconds,
            certificate: rotation.certificate.map(str::to_owned),
        }
    }
}

/// The rotation of `rotate_refresh_token` as one job of the SQLite writer: the same
/// statements as the sqlx body, in the job's savepoint (a refused check, an unreadable row or
/// a failed insert rolls the spend back).
fn rotate_sqlite<A, R>(
    conn: &rusqlite::Connection,
    r: &OwnedRotation,
    accept: impl FnOnce(&Grant) -> Result<A, R>,
) -> Result<Done<RefreshRotation<A, R>>, StoreError> {
    let spent_row = |row: &rusqlite::Row<'_>| -> rusqlite::Result<(String, Option<String>)> {
        Ok((row.get(0)?, row.get(1)?))
    };
    // The grant and the certificate binding the new token inherits (RFC 8705 §4).
    let mut spent = sqlite_engine::query_optional(
        conn,
        SPEND_REFRESH_TOKEN,
        &[&r.now, &r.old, &r.client_id, &r.certificate],
        spent_row,
    )
    .map_err(error)?;
    if spent.is_none() && r.grace_seconds > 0 {
        spent = sqlite_engine::query_optional(
            conn,
            WITHIN_GRACE,
            &[&r.old, &r.now.saturating_sub(r.grace_seconds), &r.client_id, &r.now, &r.certificate],
            spent_row,
        )
        .map_err(error)?;
    }
    let Some((grant_id, bound_to)) = spent else {
        let missed = sqlite_engine::query_optional(conn, LOOK_UP_REFRESH_TOKEN, &[&r.old], |row| {
            Ok(SpentTokenRow {
                grant_id: row.get("grant_id")?,
                client_id: row.get("client_id")?,
                rotated_at: row.get("rotated_at")?,
            })
        })
        .map_err(error)?;
        return Ok(Done::undo(missed_refresh_token(missed, &r.client_id)));
    };
    let grant = read_grant_sqlite(conn, &grant_id)?.into_grant()?;
    let accepted = match accept(&grant) {
        Ok(accepted) => accepted,
        Err(reason) => return Ok(Done::undo(RefreshRotation::Refused(reason))),
    };
    let expires_at = r.now.saturating_add(r.idle_ttl).min(grant.expires_at);
    sqlite_engine::execute(
        conn,
        INSERT_REFRESH_TOKEN,
        &[&r.new, &grant.id, &r.now, &expires_at, &bound_to],
    )
    .map_err(|e| refresh_token_conflict_sqlite(e, &grant.id))?;
    let jti = r.access_token_jti.as_str();
    sqlite_engine::execute(
        conn,
        RECORD_ACCESS_TOKEN,
        &[&jti, &grant.id, &r.access_token_expires_at],
    )
    .map_err(|e| conflict_or_error(e, || format!("access token `{jti}`")))?;
    Ok(Done::keep(RefreshRotation::Rotated { grant, accepted }))
}
