//! Tessera's storage: the core's store traits ([`ClientStore`], [`UserStore`],
//! [`SigningKeyStore`]) implemented once, for SQLite (the embedded default) and PostgreSQL.
//!
//! # Design
//!
//! - **One pool enum, one code base.** [`Store`] wraps `enum Pool { Sqlite(SqlitePool),
//!   Postgres(PgPool) }`. Each operation is written once, as a single SQL text and a single
//!   Rust body, and the internal `with_pool!` macro expands that body once per arm, so the
//!   compiler checks it against both drivers. `$1, $2, …` placeholders work on both (SQLite
//!   reads `$N` as the N-th argument). SQL differs per backend only in the migrations.
//! - **Portable column types.** Rows are read through `#[derive(sqlx::FromRow)]` structs whose
//!   fields are only `i64`, `String`, `Vec<u8>`, `bool` and their `Option`s; lists (redirect
//!   URIs, grant types, scopes, audiences) are JSON text arrays. Every value is re-parsed into
//!   the core's typed values on the way out, and a row that no longer parses is reported as
//!   [`StoreError::Backend`] naming its table and column, never a panic.
//! - **Per-backend migrations.** `migrations/sqlite` and `migrations/postgres` hold the same
//!   schema in each dialect (STRICT tables on SQLite; `BYTEA`/`BOOLEAN` and the "C" collation
//!   on PostgreSQL so that `ORDER BY` sorts bytewise as SQLite does). Both are embedded in the
//!   binary with `sqlx::migrate!`.
//! - **Runtime queries, not `query!`.** The compile-time macros need a live database or an
//!   offline cache per backend at build time, and would type-check each query against one
//!   dialect only. Runtime queries keep the build hermetic; the shared test suite
//!   (`tests/store_suite.rs`) runs every case against both backends instead.
//! - **Durability.** SQLite runs in WAL mode with `synchronous=FULL`, so a write that was
//!   acknowledged survives `kill -9` (and power loss); foreign keys are on and writers wait up
//!   to 5 s for a lock.

use tessera_core::store::StoreError;

/// Runs `$body` with `$pool` bound to whichever pool `$store` holds. The body is compiled once
/// per backend, so it must be valid for both `SqlitePool` and `PgPool`.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::pool::Pool::Sqlite($pool) => $body,
            $crate::pool::Pool::Postgres($pool) => $body,
        }
    };
}

mod clients;
mod json;
mod keys;
mod pool;
mod users;

pub use pool::Store;
pub use tessera_core::store::{ClientStore, SigningKeyStore, UserStore};

/// Wraps a driver error.
fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// Maps a unique-key violation to [`StoreError::Conflict`] naming `what`, other errors to
/// [`StoreError::Backend`].
fn conflict_or_db(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => db(e),
    }
}

/// A stored value that no longer parses: names the table, column and row.
fn corrupt(table: &str, column: &str, row: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unreadable {table}.{column} of `{row}`: {detail}").into())
}
