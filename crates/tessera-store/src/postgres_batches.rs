//! The two hot conditional writes as one statement each on PostgreSQL (issue 16 item 2).
//!
//! A refresh rotation was six round trips (`BEGIN`, the spend, the grant read, two inserts,
//! `COMMIT`) and a code redemption four. Here the spend, the grant read and the inserts are
//! one statement of data-modifying CTEs, so a rotation is `BEGIN`, that statement, `COMMIT`
//! (three) and a redemption the same (three). The deciding write is the same conditional
//! `UPDATE … WHERE <still unspent and valid>` as the portable path, so of concurrent callers
//! exactly one matches the row (design invariant 1); the caller's check of the grant still
//! runs before `COMMIT`, and a refusal rolls everything back.
//!
//! Only the winning path is batched. When the spend matches nothing (a replay, an unknown or
//! expired value, a refresh within the client's grace window) the statement wrote nothing; the
//! caller then runs the portable path, whose spend misses the same way (a spent value never
//! becomes unspent) and which tells those cases apart. SQLite cannot put `UPDATE` or `INSERT`
//! in a `WITH`, and its statements cost no network round trip: on a file, the portable path's
//! statements run as one job of its writer thread (`sqlite_engine`).

use sqlx::PgPool;
use tessera_core::store::{AuthorizationCode, Grant, RotationRequest, StoreError};

use crate::grants::{CodeRow, GrantRow};
use crate::{conflict_or_db, db};

/// Spends the refresh token, reads its grant, stores the new token and records the access
/// token, in one statement; `$5` is the new token's expiry before the grant's cap; `$8` the
/// presented certificate's thumbprint, which a bound token needs and its successor inherits
/// (RFC 8705 §4).
const ROTATE: &str = "WITH spent AS ( \
        UPDATE refresh_tokens SET rotated_at = $1 \
        WHERE token_hash = $2 AND rotated_at IS NULL AND expires_at > $1 \
        AND grant_id IN (SELECT g.id FROM grants g JOIN users u ON u.id = g.user_id \
            WHERE g.client_id = $3 AND g.revoked_at IS NULL AND g.expires_at > $1 \
            AND u.disabled = FALSE) \
        AND (x5t_s256 IS NULL OR x5t_s256 = $8) \
        RETURNING grant_id, x5t_s256), \
    live AS ( \
        SELECT id, client_id, user_id, scope, auth_time, sid, audience, created_at, expires_at, \
            dpop_jkt \
        FROM grants WHERE id = (SELECT grant_id FROM spent)), \
    new_token AS ( \
        INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at, x5t_s256) \
        SELECT $4, id, $1, LEAST($5, expires_at), (SELECT x5t_s256 FROM spent) FROM live), \
    access_token AS ( \
        INSERT INTO grant_access_tokens (jti, grant_id, expires_at) \
        SELECT $6, id, $7 FROM live) \
    SELECT * FROM live";

/// Spends the code (as the portable path's `SPEND`) and reads its grant, in one statement.
const REDEEM: &str = "WITH spent AS ( \
        UPDATE authorization_codes SET redeemed_at = $1 \
        WHERE code_hash = $2 AND client_id = $3 AND redeemed_at IS NULL AND expires_at > $1 \
        AND grant_id IN (SELECT g.id FROM grants g JOIN users u ON u.id = g.user_id \
            WHERE g.revoked_at IS NULL AND u.disabled = FALSE) \
        RETURNING code_hash, grant_id, client_id, redirect_uri, code_challenge, nonce, \
            expires_at) \
    SELECT s.code_hash, s.grant_id, s.client_id AS code_client_id, s.redirect_uri, \
        s.code_challenge, s.nonce, s.expires_at AS code_expires_at, \
        g.id, g.client_id, g.user_id, g.scope, g.auth_time, g.sid, g.audience, g.created_at, \
        g.expires_at, g.dpop_jkt \
    FROM spent s JOIN grants g ON g.id = s.grant_id";

/// A redeemed code and its grant, as [`REDEEM`] returns them.
#[derive(sqlx::FromRow)]
struct RedeemedRow {
    code_hash: Vec<u8>,
    grant_id: String,
    code_client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    code_expires_at: i64,
    #[sqlx(flatten)]
    grant: GrantRow,
}

/// What the one-statement path decided.
pub(crate) enum Batched<T, R> {
    /// Spent, checked and committed.
    Done(T),
    /// The caller's check refused the grant, for this reason: rolled back.
    Refused(R),
    /// The spend matched nothing and nothing was written: the portable path tells why.
    Missed,
}

/// The rotation of [`RotationRequest`] as one statement; `accept` checks the grant before
/// `COMMIT`.
/// `accept` is taken only when the spend matched: after [`Batched::Missed`] it is still there
/// for the portable path.
pub(crate) async fn rotate<A, R, F: FnOnce(&Grant) -> Result<A, R>>(
    pool: &PgPool,
    rotation: &RotationRequest<'_>,
    accept: &mut Option<F>,
) -> Result<Batched<(Grant, A), R>, StoreError> {
    let mut tx = pool.begin().await.map_err(db)?;
    let row: Option<GrantRow> = sqlx::query_as(ROTATE)
        .bind(rotation.now)
        .bind(rotation.old.as_bytes().as_slice())
        .bind(rotation.client_id.as_str())
        .bind(rotation.new.as_bytes().as_slice())
        .bind(rotation.now.saturating_add(rotation.idle_ttl))
        .bind(rotation.access_token_jti)
        .bind(rotation.access_token_expires_at)
        .bind(rotation.certificate)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| rotation_conflict(e, rotation.access_token_jti))?;
    let Some(row) = row else {
        tx.rollback().await.map_err(db)?;
        return Ok(Batched::Missed);
    };
    // Read before committing: a row that does not parse spends nothing.
    let grant = row.into_grant()?;
    let Some(accept) = accept.take() else {
        tx.rollback().await.map_err(db)?;
        return Err(StoreError::Backend("the grant check was already used".into()));
    };
    let accepted = match accept(&grant) {
        Ok(accepted) => accepted,
        Err(reason) => {
            tx.rollback().await.map_err(db)?;
            return Ok(Batched::Refused(reason));
        }
    };
    tx.commit().await.map_err(db)?;
    Ok(Batched::Done((grant, accepted)))
}

/// A unique-key clash in [`ROTATE`], named as the portable path names it: the access token's
/// jti, or the new refresh token (by its grant, never its value).
fn rotation_conflict(e: sqlx::Error, jti: &str) -> StoreError {
    let on_access_tokens = match &e {
        sqlx::Error::Database(d) => {
            d.constraint().is_some_and(|c| c.starts_with("grant_access_tokens"))
        }
        _ => false,
    };
    if on_access_tokens {
        conflict_or_db(e, || format!("access token `{jti}`"))
    } else {
        conflict_or_db(e, || "a new refresh token".to_owned())
    }
}

/// The redemption of a code as one statement; `check` decides before `COMMIT` and, as
/// `accept` of [`rotate`], is taken only when the spend matched.
pub(crate) async fn redeem<P, R, C: FnOnce(&AuthorizationCode) -> Result<P, R>>(
    pool: &PgPool,
    code_hash: &[u8],
    client_id: &str,
    now: i64,
    check: &mut Option<C>,
) -> Result<Batched<(AuthorizationCode, Grant, P), R>, StoreError> {
    let mut tx = pool.begin().await.map_err(db)?;
    let row: Option<RedeemedRow> = sqlx::query_as(REDEEM)
        .bind(now)
        .bind(code_hash)
        .bind(client_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    let Some(row) = row else {
        tx.rollback().await.map_err(db)?;
        return Ok(Batched::Missed);
    };
    let code = CodeRow {
        code_hash: row.code_hash,
        grant_id: row.grant_id,
        client_id: row.code_client_id,
        redirect_uri: row.redirect_uri,
        code_challenge: row.code_challenge,
        nonce: row.nonce,
        expires_at: row.code_expires_at,
    };
    let (code, grant) = (code.into_code()?, row.grant.into_grant()?);
    let Some(check) = check.take() else {
        tx.rollback().await.map_err(db)?;
        return Err(StoreError::Backend("the code check was already used".into()));
    };
    let proof = match check(&code) {
        Ok(proof) => proof,
        Err(reason) => {
            tx.rollback().await.map_err(db)?;
            return Ok(Batched::Refused(reason));
        }
    };
    tx.commit().await.map_err(db)?;
    Ok(Batched::Done((code, grant, proof)))
}
