//! The SQLite engine of the hot store operations (issue 16 item 1): one thread hop per
//! operation, concurrent writes group-committed.
//!
//! Through sqlx, every SQLite statement is a round trip to the connection's worker thread (two
//! context switches): a refresh rotation was six of them, an opaque token one, an
//! introspection one, and the profile put half the server's CPU in those threads and ~30 % in
//! the kernel's context-switch path. Here:
//!
//! - **Writes** go to one dedicated thread that owns one rusqlite connection. A caller sends
//!   a job (one whole store operation: a rotation, a redemption, an insert) and awaits its
//!   answer. The thread blocks for the first job, takes whatever else is queued (up to
//!   [`MAX_BATCH`]) and runs them all in one `BEGIN IMMEDIATE` transaction, each inside its
//!   own `SAVEPOINT`: a job that fails or whose check refuses is rolled back to its savepoint
//!   and touches none of the others. Then `COMMIT`, and only then is every job answered, so an
//!   answer means committed (R5.4: `kill -9` after a `200` loses nothing). A failed `COMMIT`
//!   answers every job of the batch with its error. Under load, one commit (one WAL append,
//!   one fsync with `synchronous=FULL`) serves many requests.
//! - **Checkpoints** run on a thread of their own ([`checkpoint_until_stopped`]), not on the
//!   committing writer, whose batches would otherwise wait for each checkpoint's `fsync`.
//! - **Reads** run inline on the caller's thread, on a small pool of `query_only`
//!   connections: an indexed lookup on a WAL database takes microseconds, less than the two
//!   context switches of a hop to another thread, and WAL readers block neither each other
//!   nor the writer.
//!
//! The SQL texts are the ones the sqlx bodies use (`$1, $2, …` placeholders): [`bind`] reads
//! each parameter's number from its name, so one text serves both drivers.
//!
//! Two writers: the sqlx write pool (cold paths: clients, users, keys, consents, sessions,
//! admin, migrations) and other processes still write the same file. SQLite lets one of them
//! hold the write lock at a time; this thread waits for it with a busy handler that retries
//! every [`BUSY_SLEEP`] up to the 5 s busy timeout, instead of SQLite's default schedule whose
//! sleeps grow to 100 ms. A cold write waiting behind a stream of batches is served between
//! two of them, by sqlx's own busy handler, within the same 5 s.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::ToSql;
use rusqlite::{CachedStatement, Connection, ErrorCode, OpenFlags};
use tessera_core::store::StoreError;
use tokio::sync::oneshot;

use crate::pool::SqliteSync;

/// The most jobs one transaction takes: enough for every request in flight at the measured
/// concurrency, few enough that one batch's latency stays well under a millisecond.
const MAX_BATCH: usize = 64;
/// How long the writer sleeps before retrying a write lock held by another writer.
const BUSY_SLEEP: Duration = Duration::from_micros(100);
/// How many retries make the 5 s busy timeout at [`BUSY_SLEEP`] each (sleeps last at least
/// that long, so the bound is at least 5 s).
const BUSY_RETRIES: i32 = 50_000;
/// How long a reader waits on a lock (only while a WAL file is being recovered).
const READ_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How many idle read connections are kept; more are opened when needed, and closed when
/// returned beyond this many.
const MAX_IDLE_READERS: usize = 8;
/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// The WAL size, in pages, at which the writer checkpoints by itself: a backstop for when the
/// checkpointer cannot keep up (SQLite's default is 1,000 pages, ≈ 4 MB).
const WRITER_CHECKPOINT_PAGES: i64 = 20_000;

/// The writer thread's queue and the pool of read connections of one SQLite file.
pub(crate) struct Engine {
    jobs: Mutex<Option<mpsc::Sender<Box<dyn Work>>>>,
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Dropping the sender stops the checkpointer.
    checkpointer: Mutex<Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("path", &self.path).finish_non_exhaustive()
    }
}

/// What a write job decided: keep its changes, or roll them back to its savepoint (a refused
/// check, a miss that must leave no trace) while still answering `value`.
pub(crate) struct Done<T> {
    value: T,
    keep: bool,
}

impl<T> Done<T> {
    /// Keep what the job wrote.
    pub(crate) fn keep(value: T) -> Self {
        Done { value, keep: true }
    }

    /// Undo what the job wrote, answering `value`.
    pub(crate) fn undo(value: T) -> Self {
        Done { value, keep: false }
    }
}

impl Engine {
    /// Opens the writer connection and its thread on the SQLite file at `path`, which sqlx has
    /// already created and switched to WAL.
    pub(crate) fn open(path: &Path, sync: SqliteSync) -> Result<Arc<Engine>, StoreError> {
        let writer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(error)?;
        let synchronous = match sync {
            SqliteSync::Normal => "NORMAL",
            SqliteSync::Full => "FULL",
        };
        writer.pragma_update(None, "journal_mode", "WAL").map_err(error)?;
        writer.pragma_update(None, "synchronous", synchronous).map_err(error)?;
        writer.pragma_update(None, "foreign_keys", true).map_err(error)?;
        writer.busy_handler(Some(wait_for_lock)).map_err(error)?;
        writer.set_prepared_statement_cache_capacity(64);
        // Checkpoints run on a thread of their own (`checkpoint_until_stopped`): SQLite's
        // automatic checkpoint runs on the committing connection, and with it the checkpoint's
        // `fsync`, during which no batch could commit (the stalls behind the write paths' p99).
        writer.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES).map_err(error)?;
        let checkpoints = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(error)?;
        checkpoints.pragma_update(None, "synchronous", synchronous).map_err(error)?;
        let (stop, stopped) = mpsc::channel();
        let checkpointer = std::thread::Builder::new()
            .name("tessera-sqlite-checkpoint".to_owned())
            .spawn(move || checkpoint_until_stopped(&checkpoints, &stopped))
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        let (send, receive) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("tessera-sqlite-writer".to_owned())
            .spawn(move || run(&writer, &receive))
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(Arc::new(Engine {
            jobs: Mutex::new(Some(send)),
            readers: Mutex::new(Vec::new()),
            path: path.to_owned(),
            writer: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some((stop, checkpointer))),
        }))
    }

    /// Runs `op` on the writer thread, in this batch's transaction under a savepoint of its
    /// own, and answers once the batch is committed.
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<Done<T>, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Job { op: Some(op), result: None, reply });
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs.as_ref().is_some_and(|jobs| jobs.send(job).is_ok()),
            Err(_) => false,
        };
        if !sent {
            return Err(closed());
        }
        answer.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Runs `op` on a read connection, on the calling thread.
    pub(crate) fn read<T>(
        &self,
        op: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.readers.lock().ok().and_then(|mut readers| readers.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => self.open_reader()?,
        };
        let result = op(&conn);
        if let Ok(mut readers) = self.readers.lock()
            && readers.len() < MAX_IDLE_READERS
        {
            readers.push(conn);
        }
        result
    }

    fn open_reader(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(error)?;
        conn.busy_timeout(READ_BUSY_TIMEOUT).map_err(error)?;
        conn.pragma_update(None, "foreign_keys", true).map_err(error)?;
        // A write sent here by mistake fails loudly instead of contending with the writer.
        conn.pragma_update(None, "query_only", true).map_err(error)?;
        Ok(conn)
    }

    /// Stops taking jobs, lets the writer finish those queued and closes every connection.
    pub(crate) fn close(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        let thread = self.writer.lock().ok().and_then(|mut writer| writer.take());
        if let Some(thread) = thread {
            // The thread ends once the queue is empty and its sender gone; it cannot panic on
            // its own (every error is answered), so a join error has nothing to report.
            let _ = thread.join();
        }
        let checkpointer = self.checkpointer.lock().ok().and_then(|mut c| c.take());
        if let Some((stop, thread)) = checkpointer {
            drop(stop);
            // Like the writer, it answers its errors itself and cannot panic.
            let _ = thread.join();
        }
        if let Ok(mut readers) = self.readers.lock() {
            readers.clear();
        }
    }
}

/// The checkpointer thread: every [`CHECKPOINT_EVERY`], a `PASSIVE` checkpoint, which copies
/// the committed frames no reader still needs without taking the write lock, so the writer
/// keeps committing while it (and its `fsync`) runs. Once the whole WAL is copied, the next
/// commit starts it over from its beginning. Until the sender is dropped.
fn checkpoint_until_stopped(conn: &Connection, stop: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            // Nothing is lost: the frames stay in the WAL, readable, and the writer's own
            // checkpoint at WRITER_CHECKPOINT_PAGES is the backstop.
            tracing::warn!(error = %e, "SQLite checkpoint failed; retrying");
        }
    }
}

/// SQLite's busy handler for the writer: retry after [`BUSY_SLEEP`] up to the busy timeout.
fn wait_for_lock(retries: i32) -> bool {
    if retries >= BUSY_RETRIES {
        return false;
    }
    std::thread::sleep(BUSY_SLEEP);
    true
}

/// The error of a job that cannot reach the writer (the store is closed).
fn closed() -> StoreError {
    StoreError::Unavailable("the SQLite writer is closed".into())
}

/// A job of a batch, with its type erased.
trait Work: Send {
    /// Runs the operation inside its own savepoint. `Err` when the savepoint itself could not
    /// be managed: the transaction is then in an unknown state and the batch is abandoned.
    fn run(&mut self, conn: &Connection) -> Result<(), rusqlite::Error>;
    /// Answers the caller: the operation's result if the batch committed, else the batch's
    /// error.
    fn answer(self: Box<Self>, batch: Result<(), &BatchError>);
}

struct Job<T, F> {
    op: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Work for Job<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<Done<T>, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> Result<(), rusqlite::Error> {
        let Some(op) = self.op.take() else { return Ok(()) };
        conn.prepare_cached("SAVEPOINT job")?.execute([])?;
        // A panic in the operation (a caller's check) must not take the writer thread, and
        // with it every later write, down: it is answered as an error and rolled back.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op(conn)));
        let (result, keep) = match ran {
            Ok(Ok(Done { value, keep })) => (Ok(value), keep),
            Ok(Err(e)) => (Err(e), false),
            Err(_) => (Err(StoreError::Backend("the store operation panicked".into())), false),
        };
        self.result = Some(result);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back on its own (a full disk, an I/O
            // error): what the batch did before is gone too.
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("the batch's transaction was rolled back".to_owned()),
            ));
        }
        if !keep {
            conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
        }
        conn.prepare_cached("RELEASE job")?.execute([])?;
        Ok(())
    }

    fn answer(self: Box<Self>, batch: Result<(), &BatchError>) {
        let answer = match (batch, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(e), _) => Err(e.to_store_error()),
            (Ok(()), None) => Err(StoreError::Backend("the write was not run".into())),
        };
        // The caller may have gone (its request was cancelled): what was committed stays.
        let _ = self.reply.send(answer);
    }
}

/// Why a batch did not commit, answered to each of its jobs.
struct BatchError {
    unavailable: bool,
    message: String,
}

impl BatchError {
    fn of(e: &rusqlite::Error) -> Self {
        BatchError { unavailable: is_unavailable(e), message: e.to_string() }
    }

    fn to_store_error(&self) -> StoreError {
        let message = format!("the transaction did not commit: {}", self.message);
        if self.unavailable {
            StoreError::Unavailable(message.into())
        } else {
            StoreError::Backend(message.into())
        }
    }
}

/// The writer thread: one batch per transaction until every sender is gone.
fn run(conn: &Connection, jobs: &mpsc::Receiver<Box<dyn Work>>) {
    let mut batch: Vec<Box<dyn Work>> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = run_batch(conn, &mut batch);
        if outcome.is_err() && !conn.is_autocommit() {
            // Nothing of a failed batch may stay: its jobs are answered with the error. If
            // even the rollback fails, the next `BEGIN` fails and reports it.
            let _ = conn.execute_batch("ROLLBACK");
        }
        let outcome = outcome.as_ref().map_err(BatchError::of);
        for job in batch.drain(..) {
            job.answer(outcome.as_ref().map(|_| ()));
        }
    }
}

fn run_batch(conn: &Connection, batch: &mut [Box<dyn Work>]) -> Result<(), rusqlite::Error> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    for job in batch.iter_mut() {
        job.run(conn)?;
    }
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(())
}

/// Prepares (or takes from the connection's cache) `sql` and binds `values` by number: the
/// parameter named `$N` gets `values[N - 1]`, wherever and however often it appears.
pub(crate) fn bind<'c>(
    conn: &'c Connection,
    sql: &str,
    values: &[&dyn ToSql],
) -> Result<CachedStatement<'c>, rusqlite::Error> {
    let mut statement = conn.prepare_cached(sql)?;
    for index in 1..=statement.parameter_count() {
        let name = statement.parameter_name(index).unwrap_or("?");
        let Some(value) = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .and_then(|n| values.get(n))
        else {
            return Err(rusqlite::Error::InvalidParameterName(name.to_owned()));
        };
        statement.raw_bind_parameter(index, value)?;
    }
    Ok(statement)
}

/// Runs `sql` with `values`, returning how many rows it changed.
pub(crate) fn execute(
    conn: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
) -> Result<usize, rusqlite::Error> {
    bind(conn, sql, values)?.raw_execute()
}

/// Runs `sql` with `values` and reads its first row, if any, with `read`.
pub(crate) fn query_optional<T>(
    conn: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
    read: impl FnOnce(&rusqlite::Row<'_>) -> Result<T, rusqlite::Error>,
) -> Result<Option<T>, rusqlite::Error> {
    let mut statement = bind(conn, sql, values)?;
    let mut rows = statement.raw_query();
    match rows.next()? {
        Some(row) => read(row).map(Some),
        None => Ok(None),
    }
}

/// Whether `e` says that the database is out of reach or locked beyond the busy timeout
/// rather than that a statement failed.
fn is_unavailable(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error {
                code: ErrorCode::CannotOpen
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked,
                ..
            },
            _
        )
    )
}

/// Wraps a driver error as `db` does for sqlx: [`StoreError::Unavailable`] when the database
/// could not be opened, failed to read or write its file, or stayed locked for the whole busy
/// timeout; [`StoreError::Backend`] otherwise.
pub(crate) fn error(e: rusqlite::Error) -> StoreError {
    if is_unavailable(&e) {
        StoreError::Unavailable(Box::new(e))
    } else {
        StoreError::Backend(Box::new(e))
    }
}

/// Maps a unique-key violation to [`StoreError::Conflict`] naming `what`, other errors as
/// [`error`] does (`conflict_or_db` for sqlx).
pub(crate) fn conflict_or_error(e: rusqlite::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Conflict(what())
        }
        _ => error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path() -> PathBuf {
        std::env::temp_dir()
            .join(format!("tessera-engine-unit-{}.db", tessera_core::secret::random_id::<8>()))
    }

    fn remove(path: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[test]
    fn bind_reads_each_parameters_number_from_its_name() {
        let conn = Connection::open_in_memory().unwrap();
        // `$2` twice and before `$1`: SQLite numbers the distinct names in order of
        // appearance, which is not their `$N`.
        let joined = query_optional(&conn, "SELECT $2 || $1 || $2", &[&"a", &"b"], |row| {
            row.get::<_, String>(0)
        })
        .unwrap();
        assert_eq!(joined.as_deref(), Some("bab"));
    }

    #[test]
    fn a_parameter_without_its_value_is_an_error_not_a_null() {
        let conn = Connection::open_in_memory().unwrap();
        for sql in ["SELECT $3", "SELECT ?", "SELECT :name"] {
            let e = query_optional(&conn, sql, &[&1_i64, &2_i64], |row| row.get::<_, i64>(0))
                .unwrap_err();
            assert!(matches!(e, rusqlite::Error::InvalidParameterName(_)), "{sql}: {e:?}");
        }
    }

    #[test]
    fn a_unique_violation_is_a_conflict_naming_the_row_and_a_missing_table_a_backend_error() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, u TEXT UNIQUE)").unwrap();
        execute(&conn, "INSERT INTO t (k, u) VALUES ($1, $2)", &[&"k", &"u"]).unwrap();
        for (k, u) in [("k", "other"), ("other", "u")] {
            let e = execute(&conn, "INSERT INTO t (k, u) VALUES ($1, $2)", &[&k, &u]).unwrap_err();
            let e = conflict_or_error(e, || format!("row `{k}`"));
            assert!(matches!(&e, StoreError::Conflict(what) if what == &format!("row `{k}`")));
        }
        let e = execute(&conn, "INSERT INTO missing VALUES ($1)", &[&1_i64]).unwrap_err();
        assert!(matches!(conflict_or_error(e, String::new), StoreError::Backend(_)));
    }

    #[test]
    fn a_database_that_cannot_be_opened_is_unavailable() {
        let missing = std::env::temp_dir().join("tessera-no-such-dir").join("db.sqlite");
        let e = Engine::open(&missing, SqliteSync::Normal).unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    }

    #[tokio::test]
    async fn the_checkpointer_copies_committed_frames_into_the_database_file() {
        let path = temp_path();
        let setup = Connection::open(&path).unwrap();
        setup.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x BLOB)").unwrap();
        drop(setup);
        let engine = Engine::open(&path, SqliteSync::Normal).unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        // ≈ 100 new pages, all in the WAL when committed: far below the writer's own
        // checkpoint at WRITER_CHECKPOINT_PAGES, so only the checkpointer can move them.
        engine
            .write(|conn| {
                for _ in 0..100 {
                    execute(conn, "INSERT INTO t (x) VALUES (zeroblob(4000))", &[])
                        .map_err(error)?;
                }
                Ok(Done::keep(()))
            })
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while size() < before + 100 * 4000 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(size() >= before + 100 * 4000, "{} bytes, was {before}", size());
        engine.close();
        remove(&path);
    }

    #[tokio::test]
    async fn the_writer_uses_wal_the_chosen_sync_and_foreign_keys_and_readers_cannot_write() {
        // SQLite's codes for PRAGMA synchronous: 1 is NORMAL, 2 is FULL.
        for (sync, expected) in [(SqliteSync::Normal, 1_i64), (SqliteSync::Full, 2)] {
            let path = temp_path();
            Connection::open(&path).unwrap().execute_batch("PRAGMA journal_mode=WAL").unwrap();
            let engine = Engine::open(&path, sync).unwrap();
            let pragmas = engine
                .write(|conn| {
                    let get = |name: &str| -> Result<String, StoreError> {
                        conn.pragma_query_value(None, name, |row| {
                            row.get::<_, rusqlite::types::Value>(0).map(|v| format!("{v:?}"))
                        })
                        .map_err(error)
                    };
                    Ok(Done::keep([
                        get("journal_mode")?,
                        get("synchronous")?,
                        get("foreign_keys")?,
                    ]))
                })
                .await
                .unwrap();
            assert_eq!(
                pragmas,
                [
                    "Text(\"wal\")".to_owned(),
                    format!("Integer({expected})"),
                    "Integer(1)".to_owned()
                ]
            );
            let refused = engine.read(|conn| {
                conn.execute_batch("CREATE TABLE t (x INTEGER)").map_err(error)?;
                Ok(())
            });
            assert!(matches!(refused, Err(StoreError::Backend(_))), "{refused:?}");
            engine.close();
            let closed = engine.write(|_| Ok(Done::keep(()))).await;
            assert!(matches!(closed, Err(StoreError::Unavailable(_))), "{closed:?}");
            remove(&path);
        }
    }
}
