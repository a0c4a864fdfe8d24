//! Test support, compiled only with the `testing` feature: fresh, isolated databases for the
//! store's own suite and for dependents' tests (e.g. several server instances sharing one
//! PostgreSQL database).
//!
//! SQLite runs on a fresh file under the temp directory. PostgreSQL runs at
//! `TESSERA_TEST_DATABASE_URL` (default [`DEFAULT_POSTGRES_URL`]), each [`TestDb`] in a schema
//! of its own, so tests run in parallel and can be re-run. When PostgreSQL cannot be reached,
//! [`TestDb::postgres`] prints the reason on stderr and returns `None` (the caller skips), or
//! panics when `CI=true`.
//!
//! A test ends with [`TestDb::cleanup`], which closes the store and removes the SQLite files
//! or drops the PostgreSQL schema.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};
use tessera_core::secret::random_bytes;

use crate::Store;

/// Where PostgreSQL tests connect when `TESSERA_TEST_DATABASE_URL` is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How long to wait for PostgreSQL before deciding it is unreachable.
const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

enum Backend {
    Sqlite { path: PathBuf },
    Postgres { admin_url: String, schema: String },
}

/// A fresh, isolated database and a store connected to it.
pub struct TestDb {
    /// A store (pool) connected to the database.
    pub store: Store,
    /// The database URL; connecting to it reaches this database (on PostgreSQL, its schema).
    pub url: String,
    backend: Backend,
}

impl TestDb {
    /// A fresh SQLite file, migrated.
    pub async fn sqlite() -> TestDb {
        Self::sqlite_with(true).await
    }

    /// A fresh SQLite file, without migrations applied.
    pub async fn sqlite_unmigrated() -> TestDb {
        Self::sqlite_with(false).await
    }

    /// A fresh PostgreSQL schema, migrated. `None` when PostgreSQL is unreachable (the reason
    /// is printed on stderr); panics instead when `CI=true`.
    pub async fn postgres() -> Option<TestDb> {
        Self::postgres_with(true).await
    }

    /// Like [`TestDb::postgres`], without migrations applied.
    pub async fn postgres_unmigrated() -> Option<TestDb> {
        Self::postgres_with(false).await
    }

    async fn sqlite_with(migrate: bool) -> TestDb {
        let path = temp_sqlite_path();
        let url = format!("sqlite://{}", path.display());
        TestDb { store: connect(&url, migrate).await, url, backend: Backend::Sqlite { path } }
    }

    async fn postgres_with(migrate: bool) -> Option<TestDb> {
        let admin_url = std::env::var("TESSERA_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let mut admin =
            match tokio::time::timeout(POSTGRES_CONNECT_TIMEOUT, PgConnection::connect(&admin_url))
                .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return postgres_unreachable(&e.to_string()),
                Err(_) => return postgres_unreachable("connecting timed out after 5 s"),
            };
        let schema = format!("t_{}", random_hex());
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE SCHEMA {schema} failed: {e}"));
        let _ = admin.close().await;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-c%20search_path%3D{schema}");
        Some(TestDb {
            store: connect(&url, migrate).await,
            url,
            backend: Backend::Postgres { admin_url, schema },
        })
    }

    /// A second, independent pool on the same database, as another server instance would
    /// open: it applies pending migrations, like [`Store::connect`].
    pub async fn connect_another(&self) -> Store {
        connect(&self.url, true).await
    }

    /// `"sqlite"` or `"postgres"`, as [`Store::backend`] names them.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// Runs a statement on a separate, raw connection (to tamper with rows).
    pub async fn raw_execute(&self, sql: &'static str) {
        match self.backend {
            Backend::Sqlite { .. } => {
                let mut conn = SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            Backend::Postgres { .. } => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }

    /// Reads one nullable BLOB/BYTEA value on a separate, raw connection; `sql` takes `arg`
    /// as `$1`.
    pub async fn raw_bytes(&self, sql: &'static str, arg: &str) -> Option<Vec<u8>> {
        match self.backend {
            Backend::Sqlite { .. } => {
                let mut conn = SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).bind(arg).fetch_one(&mut conn).await.unwrap()
            }
            Backend::Postgres { .. } => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).bind(arg).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// Reads one nullable integer on a separate, raw connection; `sql` takes `arg` as `$1`.
    pub async fn raw_i64(&self, sql: &'static str, arg: &str) -> Option<i64> {
        match self.backend {
            Backend::Sqlite { .. } => {
                let mut conn = SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).bind(arg).fetch_one(&mut conn).await.unwrap()
            }
            Backend::Postgres { .. } => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).bind(arg).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// How many rows `table` holds, counted on a separate, raw connection.
    pub async fn raw_count(&self, table: &str) -> i64 {
        assert!(
            !table.is_empty() && table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "`{table}` is not a table name"
        );
        let sql = AssertSqlSafe(format!("SELECT count(*) FROM {table}"));
        match self.backend {
            Backend::Sqlite { .. } => {
                let mut conn = SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            Backend::Postgres { .. } => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// The SQLite database file, whose bytes (with its `-wal` file) a test may search; `None`
    /// on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite { path } => Some(path),
            Backend::Postgres { .. } => None,
        }
    }

    /// Closes [`TestDb::store`] and removes the database: the SQLite files, or the PostgreSQL
    /// schema. Close the stores from [`TestDb::connect_another`] first.
    pub async fn cleanup(self) {
        self.store.close().await;
        match self.backend {
            Backend::Sqlite { path } => remove_sqlite_files(&path),
            Backend::Postgres { admin_url, schema } => {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    let _ = sqlx::query(AssertSqlSafe(drop)).execute(&mut admin).await;
                    let _ = admin.close().await;
                }
            }
        }
    }
}

/// A path for a new SQLite file under the temp directory (nothing is created).
pub fn temp_sqlite_path() -> PathBuf {
    std::env::temp_dir().join(format!("tessera-store-test-{}.db", random_hex()))
}

/// Removes a SQLite database file and its WAL and shared-memory files, if present.
pub fn remove_sqlite_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

fn random_hex() -> String {
    random_bytes::<8>().iter().map(|b| format!("{b:02x}")).collect()
}

async fn connect(url: &str, migrate: bool) -> Store {
    let store = if migrate {
        Store::connect(url).await
    } else {
        Store::connect_without_migrating(url).await
    };
    store.unwrap_or_else(|e| panic!("connecting the store failed: {e}"))
}

fn postgres_unreachable(reason: &str) -> Option<TestDb> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("PostgreSQL is unreachable and CI=true: {reason}");
    }
    eprintln!("skipping PostgreSQL: {reason}");
    None
}
