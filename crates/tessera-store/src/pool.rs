//! Connecting, migrating and the [`Store`] handle.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use tessera_core::store::StoreError;

use crate::db;
use crate::sqlite_engine::Engine;

// `sqlx::migrate!` is this same proc macro behind sqlx's `macros` feature, which would also
// bring in the compile-time-checked `query!` machinery this crate does not use; the `derive`
// feature already builds `sqlx-macros`, so it is called directly. `build.rs` makes cargo
// rebuild when a migration changes.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a SQLite writer waits for another one to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a pooled connection by default (`database_acquire_timeout_ms`).
/// The bound is what makes an outage fail fast: with the database gone, opening a connection
/// is retried until this deadline and the request is then answered `503` instead of hanging.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// How many connections a pool keeps at most by default (`database_max_connections`; sqlx's
/// own default).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// How a [`Store`] connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// When SQLite commits are durable.
    pub sqlite_sync: SqliteSync,
    /// How long a caller waits for a pooled connection before its call fails with
    /// `StoreError::Unavailable`.
    pub acquire_timeout: Duration,
    /// The most connections of the PostgreSQL pool, or of SQLite's sqlx read pool. Each store
    /// call holds one for its round trips, so on PostgreSQL this bounds the calls in flight.
    pub max_connections: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            sqlite_sync: SqliteSync::default(),
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Pool settings shared by every pool. sqlx pings a connection before lending it out by default
/// (`test_before_acquire`): one more round trip per store call, measured at 16 µs on SQLite and
/// 75 µs on the local PostgreSQL (bench/README.md), for a check that still cannot stop a
/// connection from failing right after it. A query on a broken connection fails (the request
/// gets an error, `/readyz` turns 503) and sqlx closes that connection instead of lending it
/// out again.
fn pool_options<DB: sqlx::Database>(acquire_timeout: Duration) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new().acquire_timeout(acquire_timeout).test_before_acquire(false)
}

/// When SQLite makes a commit durable (PostgreSQL decides this on its server, with
/// `synchronous_commit`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqliteSync {
    /// `synchronous=NORMAL` (the default): in WAL mode a committed transaction survives the
    /// process being killed (`kill -9`, a panic, an OOM kill), which is what R5.4 asks; the
    /// WAL is fsynced at checkpoints, so an operating-system crash or power loss may lose the
    /// last commits. No fsync per commit: one write costs tens of microseconds, not one disk
    /// flush (bench/README.md has the figures).
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is fsynced before it is acknowledged, so it also
    /// survives power loss, at one disk flush per write.
    Full,
}

impl SqliteSync {
    /// Parses the configuration value `normal` or `full`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "normal" => Some(Self::Normal),
            "full" => Some(Self::Full),
            _ => None,
        }
    }
}

/// The database behind a [`Store`].
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    /// Reads go to a pool of connections (WAL readers block neither each other nor the
    /// writer); every write goes to a pool of one connection, so that concurrent writers queue
    /// here, in order, instead of retrying against SQLite's write lock in its busy handler,
    /// which sleeps between tries (up to 100 ms each). The read connections are `query_only`,
    /// so a write sent to them by mistake fails loudly instead of contending. An in-memory
    /// database has one connection, which is both.
    ///
    /// A file database also has the engine of the hot operations (`sqlite_engine`: one
    /// writer thread with group commit, inline reads); an in-memory one has none, since it
    /// cannot be shared between two drivers, and runs every operation through sqlx.
    Sqlite {
        reads: SqlitePool,
        writes: SqlitePool,
        engine: Option<Arc<Engine>>,
    },
    Postgres(PgPool),
}

/// A connection pool to SQLite or PostgreSQL, implementing the core's store traits. Cloning is
/// cheap: clones share the pool.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    /// Whether PostgreSQL rotations and redemptions take the one-statement path
    /// (`postgres_batches`); off only to measure or test the portable path there.
    pub(crate) postgres_batches: bool,
}

impl Store {
    /// Connects to `sqlite://PATH` (also `sqlite:PATH`, `sqlite::memory:`) or `postgres://…` /
    /// `postgresql://…`, creating the SQLite file if missing, and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::connect_with(url, SqliteSync::default()).await
    }

    /// Like [`Store::connect`], choosing when SQLite commits are durable.
    pub async fn connect_with(url: &str, sync: SqliteSync) -> Result<Store, StoreError> {
        Self::connect_with_options(url, ConnectOptions { sqlite_sync: sync, ..Default::default() })
            .await
    }

    /// Like [`Store::connect`], with every connection setting.
    pub async fn connect_with_options(
        url: &str,
        options: ConnectOptions,
    ) -> Result<Store, StoreError> {
        let store = Self::open(url, options).await?;
        let applied = store.migrate().await?;
        if applied > 0 {
            tracing::info!(backend = store.backend(), applied, "applied database migrations");
        }
        Ok(store)
    }

    /// Like [`Store::connect`], without applying migrations.
    pub async fn connect_without_migrating(url: &str) -> Result<Store, StoreError> {
        Self::open(url, ConnectOptions::default()).await
    }

    async fn open(url: &str, options: ConnectOptions) -> Result<Store, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            connect_sqlite(url, options).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Pool::Postgres(connect_postgres(url, options).await?)
        } else {
            // Only the scheme is echoed: the rest of a URL may hold a password.
            let scheme = url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
            return Err(StoreError::Backend(
                format!(
                    "unsupported database URL scheme `{scheme}`: expected sqlite://PATH, \
                     sqlite:PATH, sqlite::memory:, postgres://… or postgresql://…"
                )
                .into(),
            ));
        };
        Ok(Store { pool, postgres_batches: true })
    }

    /// Applies pending migrations; returns how many were applied (counted as pending just
    /// before running; on PostgreSQL the run itself holds sqlx's advisory lock).
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let mig = |e: MigrateError| StoreError::Backend(Box::new(e));
        match &self.pool {
            Pool::Sqlite { writes: pool, .. } => {
                let pending = pending(&mut *pool.acquire().await.map_err(db)?, &SQLITE_MIGRATIONS)
                    .await
                    .map_err(mig)?;
                SQLITE_MIGRATIONS.run(pool).await.map_err(mig)?;
                Ok(pending)
            }
            Pool::Postgres(pool) => {
                let pending =
                    pending(&mut *pool.acquire().await.map_err(db)?, &POSTGRES_MIGRATIONS)
                        .await
                        .map_err(mig)?;
                POSTGRES_MIGRATIONS.run(pool).await.map_err(mig)?;
                Ok(pending)
            }
        }
    }

    /// A cheap liveness query (`SELECT 1`), for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_reader!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await.map_err(db)?;
        });
        Ok(())
    }

    /// The statement opening a transaction that will write. On SQLite, `BEGIN IMMEDIATE`
    /// takes the database's write lock at once (waiting up to the busy timeout), so concurrent
    /// writers queue at `BEGIN` and each sees the previous one's commit; a deferred `BEGIN`
    /// would take it at the first write, and a transaction that had read first would then fail
    /// with `SQLITE_BUSY` instead of waiting. PostgreSQL locks the rows it writes: a plain
    /// `BEGIN`.
    pub(crate) fn begin_write(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite { .. } => "BEGIN IMMEDIATE",
            Pool::Postgres(_) => "BEGIN",
        }
    }

    /// This store with PostgreSQL's one-statement rotation and redemption turned off, so that
    /// they take the portable path of several statements (to compare the two, or test both).
    #[cfg(feature = "testing")]
    pub fn with_portable_paths_only(mut self) -> Store {
        self.postgres_batches = false;
        self
    }

    /// The engine of the hot operations, on a SQLite file (`None` on PostgreSQL and on an
    /// in-memory SQLite database, which run them through sqlx).
    pub(crate) fn engine(&self) -> Option<&Engine> {
        match &self.pool {
            Pool::Sqlite { engine, .. } => engine.as_deref(),
            Pool::Postgres(_) => None,
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite { .. } => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection, waiting for those in use to be returned (for shutdown).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite { reads, writes, engine } => {
                if let Some(engine) = engine {
                    engine.close();
                }
                reads.close().await;
                writes.close().await;
            }
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// How many of `migrator`'s migrations the database has not applied yet.
async fn pending<C: Migrate>(conn: &mut C, migrator: &Migrator) -> Result<usize, MigrateError> {
    conn.ensure_migrations_table(&migrator.table_name).await?;
    let applied = conn.list_applied_migrations(&migrator.table_name).await?;
    Ok(migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .count())
}

async fn connect_sqlite(url: &str, connect: ConnectOptions) -> Result<Pool, StoreError> {
    let pool_options = || pool_options(connect.acquire_timeout);
    let synchronous = match connect.sqlite_sync {
        SqliteSync::Normal => SqliteSynchronous::Normal,
        SqliteSync::Full => SqliteSynchronous::Full,
    };
    let options = SqliteConnectOptions::from_str(url)
        .map_err(db)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    if url.contains(":memory:") || url.contains("mode=memory") {
        // An in-memory database lives as long as one connection to it: keep exactly one,
        // forever (several would also contend on shared-cache table locks).
        let pool = pool_options()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(db)?;
        return Ok(Pool::Sqlite { reads: pool.clone(), writes: pool, engine: None });
    }
    // The writer first: it creates the file and switches it to WAL.
    let writes =
        pool_options().max_connections(1).connect_with(options.clone()).await.map_err(db)?;
    let engine = Engine::open(options.get_filename(), connect.sqlite_sync)?;
    let reads = pool_options()
        .max_connections(connect.max_connections)
        .connect_with(options.pragma("query_only", "ON"))
        .await
        .map_err(db)?;
    Ok(Pool::Sqlite { reads, writes, engine: Some(engine) })
}

async fn connect_postgres(url: &str, connect: ConnectOptions) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(db)?;
    pool_options(connect.acquire_timeout)
        .max_connections(connect.max_connections)
        .connect_with(options)
        .await
        .map_err(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_sqlite_url() -> (String, std::path::PathBuf) {
        let path = std::env::temp_dir()
            .join(format!("tessera-store-unit-{}.db", tessera_core::secret::random_id::<8>()));
        (format!("sqlite://{}", path.display()), path)
    }

    #[tokio::test]
    async fn sqlite_connections_use_wal_chosen_sync_foreign_keys_and_busy_timeout() {
        // SQLite's codes for PRAGMA synchronous: 1 is NORMAL, 2 is FULL.
        for (sync, expected) in [(SqliteSync::Normal, 1), (SqliteSync::Full, 2)] {
            let (url, path) = temp_sqlite_url();
            let store = Store::connect_with(&url, sync).await.unwrap();
            let Pool::Sqlite { reads, writes, .. } = &store.pool else { panic!("not sqlite") };
            for pool in [reads, writes] {
                let text = |sql: &'static str| async move {
                    sqlx::query_scalar::<_, String>(sql).fetch_one(pool).await.unwrap()
                };
                let int = |sql: &'static str| async move {
                    sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap()
                };
                assert_eq!(text("PRAGMA journal_mode").await, "wal");
                assert_eq!(int("PRAGMA synchronous").await, expected, "{sync:?}");
                assert_eq!(int("PRAGMA foreign_keys").await, 1);
                assert_eq!(int("PRAGMA busy_timeout").await, 5000);
            }
            assert_eq!(
                sqlx::query_scalar::<_, i64>("PRAGMA query_only").fetch_one(reads).await.unwrap(),
                1,
                "reads cannot write"
            );
            assert_eq!(
                sqlx::query_scalar::<_, i64>("PRAGMA query_only").fetch_one(writes).await.unwrap(),
                0
            );
            store.close().await;
            let _ = std::fs::remove_file(&path);
        }
    }

    #[tokio::test]
    async fn database_max_connections_bounds_the_sqlx_read_pool() {
        let (url, path) = temp_sqlite_url();
        let options = ConnectOptions { max_connections: 3, ..ConnectOptions::default() };
        let store = Store::connect_with_options(&url, options).await.unwrap();
        let Pool::Sqlite { reads, writes, .. } = &store.pool else { panic!("not sqlite") };
        assert_eq!(reads.options().get_max_connections(), 3);
        // Writes stay on one connection whatever the setting: writers queue in order.
        assert_eq!(writes.options().get_max_connections(), 1);
        store.close().await;
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn sqlite_sync_parses_its_two_configuration_values() {
        assert_eq!(SqliteSync::parse("normal"), Some(SqliteSync::Normal));
        assert_eq!(SqliteSync::parse("full"), Some(SqliteSync::Full));
        assert_eq!(SqliteSync::parse("FULL"), None);
        assert_eq!(SqliteSync::default(), SqliteSync::Normal);
    }

    #[tokio::test]
    async fn in_memory_sqlite_keeps_its_data_across_queries() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        store.ping().await.unwrap();
        // The migrated tables are still there: the pool did not open a second, empty database.
        let Pool::Sqlite { reads: pool, .. } = &store.pool else { panic!("not sqlite") };
        for _ in 0..3 {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM clients").fetch_one(pool).await.unwrap();
            assert_eq!(n, 0);
        }
        assert_eq!(store.migrate().await.unwrap(), 0);
    }
}
