//! `users`: accounts of the server's own login.

use tessera_core::store::{StoreError, UserStore};
use tessera_core::user::User;

use crate::{Store, conflict_or_db, db};

/// The `SELECT` every read starts with, as a literal for `concat!`.
macro_rules! select_users {
    () => {
        "SELECT id, username, email, name, password_hash, created_at, disabled FROM users"
    };
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    username: String,
    email: Option<String>,
    name: Option<String>,
    password_hash: String,
    created_at: i64,
    disabled: bool,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id,
            username: row.username,
            email: row.email,
            name: row.name,
            password_hash: row.password_hash,
            created_at: row.created_at,
            disabled: row.disabled,
        }
    }
}

impl UserStore for Store {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        // Either unique key may clash, but `id` is 128 random bits: a conflict is the username.
        const SQL: &str = "INSERT INTO users (id, username, email, name, password_hash, \
            created_at, disabled) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        // RFC 9700 §4.15: a `sub` equal to a client_id would make that client's
        // client-credentials tokens (`sub` = client_id) pass for this user's. Checked in the
        // insert's transaction; `create_client` checks the other way round.
        const CLIENT_TAKEN: &str = "SELECT EXISTS (SELECT 1 FROM clients WHERE client_id = $1)";
        with_writer!(self, |pool| {
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(db)?;
            let taken: bool = sqlx::query_scalar(CLIENT_TAKEN)
                .bind(user.id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            if taken {
                tx.rollback().await.map_err(db)?;
                return Err(StoreError::Conflict(format!(
                    "a client whose client_id is the sub `{}`",
                    user.id
                )));
            }
            sqlx::query(SQL)
                .bind(user.id.as_str())
                .bind(user.username.as_str())
                .bind(user.email.as_deref())
                .bind(user.name.as_deref())
                .bind(user.password_hash.as_str())
                .bind(user.created_at)
                .bind(user.disabled)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or_db(e, || format!("user `{}`", user.username)))?;
            tx.commit().await.map_err(db)?;
        });
        Ok(())
    }

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        const SQL: &str = concat!(select_users!(), " WHERE username = $1");
        let row: Option<UserRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(username)
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        Ok(row.map(User::from))
    }

    async fn find_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        const SQL: &str = concat!(select_users!(), " WHERE id = $1");
        let row: Option<UserRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        Ok(row.map(User::from))
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        const SQL: &str = concat!(select_users!(), " ORDER BY username");
        let rows: Vec<UserRow> =
            with_reader!(self, |pool| sqlx::query_as(SQL).fetch_all(pool).await.map_err(db)?);
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn delete_user(&self, username: &str, now: i64) -> Result<bool, StoreError> {
        self.change_user(username, Change::Delete, now).await
    }

    async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let change = if disabled { Change::Disable } else { Change::Enable };
        self.change_user(username, change, now).await
    }
}

/// What [`Store::change_user`] does to an account.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Delete,
    Disable,
    Enable,
}

impl Store {
    /// Deletes, disables or enables the user `username` in one transaction; deleting and
    /// disabling also end everything the user authorized. Whether the user exists.
    ///
    /// On SQLite writers are serialized anyway. On PostgreSQL the order matters: the user's
    /// row first, then the device approvals, then the grants. A poll redeeming an approval
    /// holds that approval's row (`FOR UPDATE`) while it stores its grant, so this waits for it
    /// and then, in a later statement, revokes that grant too; a code redemption or refresh
    /// rotation checks the user in its own conditional write, and what it issues is recorded
    /// under a grant revoked here.
    async fn change_user(
        &self,
        username: &str,
        change: Change,
        now: i64,
    ) -> Result<bool, StoreError> {
        const DELETE: &str = "DELETE FROM users WHERE username = $1 RETURNING id";
        const SET_DISABLED: &str =
            "UPDATE users SET disabled = $2 WHERE username = $1 RETURNING id";
        // Revoking the grants revokes their refresh tokens and the access tokens recorded
        // under them (RFC 7009 §2.1 by analogy: everything issued from them); grants revoked
        // before keep their time.
        const REVOKE_GRANTS: &str =
            "UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
        // An approval not yet redeemed is withdrawn, so that no poll turns it into tokens: the
        // device is told `access_denied` (RFC 8628 §3.5).
        const WITHDRAW_APPROVALS: &str = "UPDATE device_authorizations SET status = 'denied', \
            user_id = NULL, auth_time = NULL, sid = NULL \
            WHERE user_id = $1 AND status = 'approved'";
        const END: [&str; 2] =
            ["DELETE FROM sessions WHERE user_id = $1", "DELETE FROM consents WHERE user_id = $1"];
        with_writer!(self, |pool| {
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(db)?;
            let first = match change {
                Change::Delete => sqlx::query_scalar(DELETE).bind(username),
                Change::Disable | Change::Enable => {
                    sqlx::query_scalar(SET_DISABLED).bind(username).bind(change == Change::Disable)
                }
            };
            let id: Option<String> = first.fetch_optional(&mut *tx).await.map_err(db)?;
            let Some(id) = id else {
                tx.rollback().await.map_err(db)?;
                return Ok(false);
            };
            if change != Change::Enable {
                // Approvals before grants: a poll redeeming one of them holds its row, so this
                // waits for it to commit and then revokes the grant it stored too.
                sqlx::query(WITHDRAW_APPROVALS)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                sqlx::query(REVOKE_GRANTS)
                    .bind(id.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                for sql in END {
                    sqlx::query(sql).bind(id.as_str()).execute(&mut *tx).await.map_err(db)?;
                }
            }
            tx.commit().await.map_err(db)?;
            Ok(true)
        })
    }
}
