//! Tessera's storage: the core's store traits ([`ClientStore`], [`UserStore`],
//! [`SigningKeyStore`], [`AuthorizationCodeStore`], [`GrantStore`], [`ConsentStore`],
//! [`SessionStore`], [`TokenStore`], [`AuditStore`], [`DeviceStore`]) implemented once, for
//! SQLite (the embedded default) and PostgreSQL.
//!
//! # Design
//!
//! - **One pool enum, one code base.** [`Store`] wraps `enum Pool { Sqlite { reads, writes,
//!   engine }, Postgres(PgPool) }`. Each operation is written once, as a single SQL text and a single
//!   Rust body, and the internal `with_reader!` / `with_writer!` macros expand that body once
//!   per backend, so the compiler checks it against both drivers. On SQLite, writes go through
//!   one connection, so writers queue in order in the pool instead of sleeping in SQLite's
//!   busy handler; reads go to `query_only` connections beside it. `$1, $2, …` placeholders work on both (SQLite
//!   reads `$N` as the N-th argument). SQL differs per backend only in the migrations and in
//!   one locking read (below).
//! - **The SQLite engine of the hot operations** (`sqlite_engine`, issue 16). Through sqlx,
//!   every SQLite statement is a round trip to the connection's worker thread (two context
//!   switches), and the profile put half the server's CPU there. On a SQLite file, the
//!   operations on the token paths (opaque tokens and their lookup, revocation checks, code
//!   redemption and the grant+code insert, refresh rotation and insert, access-token records,
//!   assertion records, the audit insert) run instead as one job each on a dedicated thread
//!   owning a rusqlite connection: one hop per operation whatever its statements. The thread
//!   **group-commits**: it takes every queued job (up to 64) into one `BEGIN IMMEDIATE`
//!   transaction, each in its own savepoint (its error or refused check rolls back only its
//!   own writes), commits, and only then answers, so an answer still means committed (R5.4).
//!   Their lookups run inline on the caller's thread on a few `query_only` connections (an
//!   indexed WAL read costs less than a hop). The SQL texts are shared with the sqlx bodies,
//!   which PostgreSQL and in-memory SQLite (one connection, not shareable between drivers)
//!   keep running. Cold paths stay on sqlx. Two writers then share SQLite's write lock: the
//!   engine retries it every 100 µs up to 5 s, sqlx with its own busy timeout.
//! - **Portable column types.** Rows are read through `#[derive(sqlx::FromRow)]` structs whose
//!   fields are only `i64`, `String`, `Vec<u8>`, `bool` and their `Option`s; lists (redirect
//!   URIs, grant types, a client's scopes, audiences) are JSON text arrays, while the scope of
//!   a grant or consent is kept as its space-separated form (`''` for none). Every value is
//!   re-parsed into the core's typed values on the way out, and a row that no longer parses is
//!   reported as [`StoreError::Backend`] naming its table and column, never a panic.
//! - **Per-backend migrations.** `migrations/sqlite` and `migrations/postgres` hold the same
//!   schema in each dialect (STRICT tables on SQLite; `BYTEA`/`BOOLEAN` and the "C" collation
//!   on PostgreSQL so that `ORDER BY` sorts bytewise as SQLite does). Both are embedded in the
//!   binary with `sqlx::migrate!`.
//! - **Runtime queries, not `query!`.** The compile-time macros need a live database or an
//!   offline cache per backend at build time, and would type-check each query against one
//!   dialect only. Runtime queries keep the build hermetic; the shared test suite
//!   (`tests/store_suite.rs`) runs every case against both backends instead.
//! - **Single use by conditional writes** (design invariant 1). Redeeming a code and rotating
//!   a refresh token are each one `UPDATE … WHERE <still unspent and valid> RETURNING …`: of
//!   concurrent callers, on one pool or several, exactly one matches the row. Only after a
//!   miss does a read tell a replay from an unknown value. Transactions that write open with
//!   `BEGIN IMMEDIATE` on SQLite (writers queue for the database lock), plain `BEGIN` on
//!   PostgreSQL (whose row lock makes a waiting `UPDATE` re-check its `WHERE` on the committed
//!   row and match nothing). A device-code poll must read before it decides (the time since
//!   the last poll, then the status): it is one write transaction whose read runs under the
//!   write lock, `BEGIN IMMEDIATE` on SQLite and `SELECT … FOR UPDATE` on PostgreSQL (the one
//!   statement whose text differs per backend), and it redeems an approval with a conditional
//!   `UPDATE` all the same. On PostgreSQL the winning rotation and redemption run as one
//!   statement of data-modifying CTEs (`postgres_batches`: three round trips instead of six
//!   and four), with the same conditional `UPDATE` deciding.
//! - **Hashes only.** Codes, refresh tokens, opaque access tokens, session ids, and device and
//!   user codes are stored as their SHA-256, so a copy of the database cannot be replayed.
//! - **Pruning.** [`TokenStore::prune_expired`] deletes, in one transaction, what has expired:
//!   codes, refresh tokens, grants (once no access token recorded under them is still valid,
//!   so that a revoked grant's tokens stay revoked), access-token records, opaque tokens,
//!   denylist entries, assertion records, sessions and device authorizations. The audit trail
//!   and signing keys are not touched (keys have [`SigningKeyStore::prune_keys`]).
//! - **Test support.** The `testing` feature adds the `testing` module: fresh, isolated SQLite
//!   and PostgreSQL databases for this crate's suite and for dependents' tests. Only
//!   dev-dependencies enable it, so it never reaches the server binary.
//! - **Durability.** SQLite runs in WAL mode with `synchronous=NORMAL` by default, so a write
//!   that was acknowledged survives `kill -9` of the server (R5.4) without an fsync per
//!   commit; [`SqliteSync::Full`] (`sqlite_synchronous = "full"`) fsyncs every commit so that
//!   it also survives power loss. Foreign keys are on and writers wait up to 5 s for a lock.

use tessera_core::client_id::ClientId;
use tessera_core::scope::ScopeSet;
use tessera_core::secret::SecretHash;
use tessera_core::store::StoreError;

/// Runs `$body`, which only reads, with `$pool` bound to the store's pool for reads. The body
/// is compiled once per backend, so it must be valid for both `SqlitePool` and `PgPool`.
macro_rules! with_reader {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::pool::Pool::Sqlite { reads: $pool, .. } => $body,
            $crate::pool::Pool::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body`, which writes, with `$pool` bound to the store's pool for writes (on SQLite
/// one connection, so writers queue in order; see [`pool::Pool`]).
macro_rules! with_writer {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::pool::Pool::Sqlite { writes: $pool, .. } => $body,
            $crate::pool::Pool::Postgres($pool) => $body,
        }
    };
}

mod audit;
mod clients;
mod consents;
mod devices;
mod grants;
mod json;
mod keys;
mod pool;
mod postgres_batches;
mod pushed_requests;
mod resources;
mod sessions;
mod sqlite_engine;
#[cfg(feature = "testing")]
pub mod testing;
mod tokens;
mod users;

pub use pool::{
    ConnectOptions, DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, SqliteSync, Store,
};
pub use tessera_core::store::{
    AdminStore, AuditStore, AuthorizationCodeStore, ClientStore, ConsentStore, DeviceStore,
    GrantStore, InitialAccessTokenStore, PushedRequestStore, ResourceStore, SessionStore,
    SigningKeyStore, TokenStore, UserStore,
};

/// Wraps a driver error: [`StoreError::Unavailable`] when the database could not be reached
/// (the request may be repeated once it is back), [`StoreError::Backend`] otherwise.
fn db(e: sqlx::Error) -> StoreError {
    if unreachable(&e) {
        StoreError::Unavailable(Box::new(e))
    } else {
        StoreError::Backend(Box::new(e))
    }
}

/// Whether `e` says that the database is out of reach rather than that a statement failed:
/// no connection within the acquire bound, a socket or TLS failure, a connection the server
/// closed, or PostgreSQL's SQLSTATE class 08 (connection exception), 57P01-57P03 (shutting
/// down, crashed, starting up) and 53300 (too many connections).
fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d)
            if d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() =>
        {
            d.code().is_some_and(|code| {
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
            })
        }
        _ => false,
    }
}

/// Maps a unique-key violation to [`StoreError::Conflict`] naming `what`, other errors as
/// [`db`] does.
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

/// Reads a space-separated scope column; `""` is the empty set.
fn scope_column(table: &str, row: &str, raw: &str) -> Result<ScopeSet, StoreError> {
    if raw.is_empty() {
        return Ok(ScopeSet::default());
    }
    ScopeSet::parse(raw).map_err(|e| corrupt(table, "scope", row, e))
}

/// Reads a client id column.
fn client_id_column(table: &str, row: &str, raw: &str) -> Result<ClientId, StoreError> {
    ClientId::parse(raw).map_err(|e| corrupt(table, "client_id", row, e))
}

/// Reads a SHA-256 column.
fn hash_column(
    table: &str,
    column: &str,
    row: &str,
    bytes: &[u8],
) -> Result<SecretHash, StoreError> {
    SecretHash::from_bytes(bytes)
        .ok_or_else(|| corrupt(table, column, row, format!("{} bytes, expected 32", bytes.len())))
}
