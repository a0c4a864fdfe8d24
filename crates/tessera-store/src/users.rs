//! `users`: accounts of the server's own login.

use tessera_core::store::{StoreError, UserStore};
use tessera_core::user::User;

use crate::{Store, conflict_or_db, db};

/// The `SELECT` every read starts with, as a literal for `concat!`.
macro_rules! select_users {
    () => {
        "SELECT id, username, email, name, password_hash, created_at FROM users"
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
        }
    }
}

impl UserStore for Store {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        // Either unique key may clash, but `id` is 128 random bits: a conflict is the username.
        const SQL: &str = "INSERT INTO users (id, username, email, name, password_hash, \
            created_at) VALUES ($1, $2, $3, $4, $5, $6)";
        with_writer!(self, |pool| {
            sqlx::query(SQL)
                .bind(user.id.as_str())
                .bind(user.username.as_str())
                .bind(user.email.as_deref())
                .bind(user.name.as_deref())
                .bind(user.password_hash.as_str())
                .bind(user.created_at)
                .execute(pool)
                .await
                .map_err(|e| conflict_or_db(e, || format!("user `{}`", user.username)))?;
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

    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM users WHERE username = $1";
        let done = with_writer!(self, |pool| sqlx::query(SQL)
            .bind(username)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(done > 0)
    }
}
