//! `device_authorizations`: the device authorization grant (RFC 8628), stored by the hashes of
//! its device code and user code. A user's decision is one conditional write; a poll is one
//! write transaction that reads the row under the write lock (SQLite's, taken at
//! `BEGIN IMMEDIATE`; on PostgreSQL the row's, `SELECT … FOR UPDATE`), so concurrent polls are
//! decided one after the other and exactly one of them redeems an approval.

use tessera_core::client_id::ClientId;
use tessera_core::secret::SecretHash;
use tessera_core::store::{
    DeviceApproval, DeviceAuthorization, DevicePoll, DeviceState, DeviceStore, Grant, StoreError,
};

use crate::grants::insert_grant_query;
use crate::pool::Pool;
use crate::{
    Store, client_id_column, conflict_or_db, corrupt, db, hash_column, json, scope_column,
};

/// The `SELECT` every device authorization read starts with, as a literal for `concat!`.
macro_rules! select_device_authorizations {
    () => {
        "SELECT device_code_hash, user_code_hash, client_id, scope, audience, status, user_id, \
         auth_time, sid, grant_id, interval, last_polled_at, created_at, expires_at \
         FROM device_authorizations"
    };
}

#[derive(sqlx::FromRow)]
struct DeviceRow {
    device_code_hash: Vec<u8>,
    user_code_hash: Vec<u8>,
    client_id: String,
    scope: String,
    audience: String,
    status: String,
    user_id: Option<String>,
    auth_time: Option<i64>,
    sid: Option<String>,
    grant_id: Option<String>,
    interval: i64,
    last_polled_at: Option<i64>,
    created_at: i64,
    expires_at: i64,
}

impl DeviceRow {
    /// The row is named by its client: the codes' hashes identify nothing useful to a reader.
    fn into_authorization(self) -> Result<DeviceAuthorization, StoreError> {
        const TABLE: &str = "device_authorizations";
        let row = self.client_id.as_str();
        Ok(DeviceAuthorization {
            device_code_hash: hash_column(TABLE, "device_code_hash", row, &self.device_code_hash)?,
            user_code_hash: hash_column(TABLE, "user_code_hash", row, &self.user_code_hash)?,
            client_id: client_id_column(TABLE, row, &self.client_id)?,
            scope: scope_column(TABLE, row, &self.scope)?,
            audience: json::decode(TABLE, "audience", row, &self.audience, |s| {
                Ok::<_, &str>(s.to_owned())
            })?,
            state: self.state(TABLE, row)?,
            interval: self.interval,
            last_polled_at: self.last_polled_at,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}

impl DeviceRow {
    /// The state from `status` and the columns it requires: an approval needs its user, a
    /// redemption also its grant.
    fn state(&self, table: &str, row: &str) -> Result<DeviceState, StoreError> {
        let approval = || match (&self.user_id, self.auth_time, &self.sid) {
            (Some(user_id), Some(auth_time), Some(sid)) => {
                Ok(DeviceApproval { user_id: user_id.clone(), auth_time, sid: sid.clone() })
            }
            _ => Err(corrupt(table, "user_id", row, format!("{} without its user", self.status))),
        };
        Ok(match self.status.as_str() {
            "pending" => DeviceState::Pending,
            "approved" => DeviceState::Approved(approval()?),
            "denied" => DeviceState::Denied,
            "redeemed" => DeviceState::Redeemed {
                approval: approval()?,
                grant_id: self
                    .grant_id
                    .clone()
                    .ok_or_else(|| corrupt(table, "grant_id", row, "redeemed without its grant"))?,
            },
            other => {
                return Err(corrupt(table, "status", row, format!("`{other}` is not a status")));
            }
        })
    }
}

const SELECT_BY_DEVICE_CODE: &str =
    concat!(select_device_authorizations!(), " WHERE device_code_hash = $1");
/// The same, locking the row until the transaction ends (PostgreSQL; SQLite has no row locks
/// and its `BEGIN IMMEDIATE` holds the database's write lock instead).
const SELECT_BY_DEVICE_CODE_FOR_UPDATE: &str =
    concat!(select_device_authorizations!(), " WHERE device_code_hash = $1 FOR UPDATE");

impl DeviceStore for Store {
    async fn insert_device_authorization(
        &self,
        authorization: &DeviceAuthorization,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO device_authorizations (device_code_hash, user_code_hash, \
            client_id, scope, audience, status, user_id, auth_time, sid, grant_id, interval, \
            last_polled_at, created_at, expires_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
        // `""` for an empty scope set.
        let scope = authorization.scope.to_string();
        let audience = json::encode(authorization.audience.iter().map(String::as_str))?;
        let (approval, grant_id) = match &authorization.state {
            DeviceState::Pending | DeviceState::Denied => (None, None),
            DeviceState::Approved(approval) => (Some(approval), None),
            DeviceState::Redeemed { approval, grant_id } => (Some(approval), Some(grant_id)),
        };
        with_writer!(self, |pool| {
            sqlx::query(SQL)
                .bind(authorization.device_code_hash.as_bytes().as_slice())
                .bind(authorization.user_code_hash.as_bytes().as_slice())
                .bind(authorization.client_id.as_str())
                .bind(scope.as_str())
                .bind(audience.as_str())
                .bind(authorization.state.name())
                .bind(approval.map(|a| a.user_id.as_str()))
                .bind(approval.map(|a| a.auth_time))
                .bind(approval.map(|a| a.sid.as_str()))
                .bind(grant_id.map(String::as_str))
                .bind(authorization.interval)
                .bind(authorization.last_polled_at)
                .bind(authorization.created_at)
                .bind(authorization.expires_at)
                .execute(pool)
                .await
                // The device code's hash is 256 random bits: a conflict is the user code, which
                // is short. It is named by the client, never by its value.
                .map_err(|e| {
                    conflict_or_db(e, || {
                        format!(
                            "user code of a device authorization of client `{}`",
                            authorization.client_id
                        )
                    })
                })?;
        });
        Ok(())
    }

    async fn find_pending_by_user_code(
        &self,
        user_code_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        const SQL: &str = concat!(
            select_device_authorizations!(),
            " WHERE user_code_hash = $1 AND status = 'pending' AND expires_at > $2"
        );
        let row: Option<DeviceRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(user_code_hash.as_bytes().as_slice())
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(DeviceRow::into_authorization).transpose()
    }

    async fn decide_device_authorization(
        &self,
        user_code_hash: &SecretHash,
        approval: Option<&DeviceApproval>,
        now: i64,
    ) -> Result<bool, StoreError> {
        // The one write that decides: of concurrent decisions, exactly one finds it pending.
        // An approval needs an enabled user (one deleted or disabled meanwhile approves
        // nothing).
        const SQL: &str = "UPDATE device_authorizations \
            SET status = $1, user_id = $2, auth_time = $3, sid = $4 \
            WHERE user_code_hash = $5 AND status = 'pending' AND expires_at > $6 \
            AND ($2 IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = $2 AND disabled = FALSE))";
        let state = match approval {
            Some(approval) => DeviceState::Approved(approval.clone()),
            None => DeviceState::Denied,
        };
        let decided = with_writer!(self, |pool| sqlx::query(SQL)
            .bind(state.name())
            .bind(approval.map(|a| a.user_id.as_str()))
            .bind(approval.map(|a| a.auth_time))
            .bind(approval.map(|a| a.sid.as_str()))
            .bind(user_code_hash.as_bytes().as_slice())
            .bind(now)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(decided == 1)
    }

    async fn poll_device_authorization(
        &self,
        device_code_hash: &SecretHash,
        client_id: &ClientId,
        now: i64,
        grant_of: impl FnOnce(&DeviceAuthorization, &DeviceApproval) -> Grant + Send,
    ) -> Result<DevicePoll, StoreError> {
        // `interval + 5`: RFC 8628 §3.5.
        const SLOW_DOWN: &str = "UPDATE device_authorizations \
            SET interval = interval + 5, last_polled_at = $1 WHERE device_code_hash = $2";
        const RECORD_POLL: &str =
            "UPDATE device_authorizations SET last_polled_at = $1 WHERE device_code_hash = $2";
        // Conditional although the row is locked: an approval is redeemed at most once
        // whatever the isolation (design invariant 1), and only while the approving user
        // exists and is enabled. A deletion or disabling of the user writes the user's row
        // and then this row (`UserStore::delete_user`): it waits for this transaction, then
        // finds the authorization redeemed and revokes the grant stored here with it.
        const REDEEM: &str = "UPDATE device_authorizations SET status = 'redeemed', grant_id = $2 \
            WHERE device_code_hash = $1 AND status = 'approved' \
            AND user_id IN (SELECT id FROM users WHERE disabled = FALSE)";
        let load = match self.pool {
            Pool::Sqlite { .. } => SELECT_BY_DEVICE_CODE,
            Pool::Postgres(_) => SELECT_BY_DEVICE_CODE_FOR_UPDATE,
        };
        let hash = device_code_hash.as_bytes().as_slice();
        // One write transaction: on SQLite `BEGIN IMMEDIATE` takes the write lock before the
        // read, on PostgreSQL the read locks the row, so each poll sees the previous one's
        // commit (its `last_polled_at`, interval and state).
        with_writer!(self, |pool| {
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(db)?;
            let row: Option<DeviceRow> =
                sqlx::query_as(load).bind(hash).fetch_optional(&mut *tx).await.map_err(db)?;
            // Another client's device code is as unknown to this one as a made-up one.
            let Some(row) = row.filter(|row| row.client_id == client_id.as_str()) else {
                tx.rollback().await.map_err(db)?;
                return Ok(DevicePoll::Unknown);
            };
            // Read before writing: a row that does not parse changes nothing.
            let mut authorization = row.into_authorization()?;
            // A redeemed device code presented again is a replay whenever it comes: neither
            // `slow_down` nor `expired_token` (RFC 8628 §3.5, RFC 6749 §4.1.2 by analogy).
            if let DeviceState::Redeemed { grant_id, .. } = authorization.state {
                tx.rollback().await.map_err(db)?;
                return Ok(DevicePoll::AlreadyRedeemed { grant_id });
            }
            if authorization.expires_at <= now {
                tx.rollback().await.map_err(db)?;
                return Ok(DevicePoll::Expired);
            }
            let too_soon = authorization
                .last_polled_at
                .is_some_and(|last| now.saturating_sub(last) < authorization.interval);
            if too_soon {
                sqlx::query(SLOW_DOWN).bind(now).bind(hash).execute(&mut *tx).await.map_err(db)?;
                tx.commit().await.map_err(db)?;
                return Ok(DevicePoll::SlowDown);
            }
            sqlx::query(RECORD_POLL).bind(now).bind(hash).execute(&mut *tx).await.map_err(db)?;
            authorization.last_polled_at = Some(now);
            let answer = match &authorization.state {
                DeviceState::Approved(approval) => Ok(approval.clone()),
                DeviceState::Pending => Err(DevicePoll::Pending),
                DeviceState::Denied => Err(DevicePoll::Denied),
                // Answered above already; the same answer.
                DeviceState::Redeemed { grant_id, .. } => {
                    Err(DevicePoll::AlreadyRedeemed { grant_id: grant_id.clone() })
                }
            };
            let approval = match answer {
                Ok(approval) => approval,
                Err(outcome) => {
                    tx.commit().await.map_err(db)?;
                    return Ok(outcome);
                }
            };
            let grant = grant_of(&authorization, &approval);
            let redeemed = sqlx::query(REDEEM)
                .bind(hash)
                .bind(grant.id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            if redeemed != 1 {
                // The row is locked and was approved: the approving user has been deleted or
                // disabled since, which withdraws the approval.
                tx.commit().await.map_err(db)?;
                return Ok(DevicePoll::Denied);
            }
            let scope = grant.scope.to_string();
            let audience = json::encode(grant.audience.iter().map(String::as_str))?;
            insert_grant_query!(grant, scope, audience)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or_db(e, || format!("grant `{}`", grant.id)))?;
            tx.commit().await.map_err(db)?;
            // As it is stored now.
            authorization.state = DeviceState::Redeemed { approval, grant_id: grant.id.clone() };
            Ok(DevicePoll::Approved { authorization: Box::new(authorization), grant })
        })
    }
}
