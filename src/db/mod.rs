//! Storage: one Diesel schema over SQLite or PostgreSQL, an r2d2 pool, embedded migrations, `db::run`.

pub mod fixed;
pub mod schema;
pub mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::connection::SimpleConnection as _;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection as _;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use self::writer::Writer;
use crate::config::DatabaseUrl;
use crate::error::AppError;

/// A connection to whichever backend this node runs on.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

impl std::fmt::Debug for DbConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pg(_) => f.write_str("DbConn::Pg"),
            Self::Sqlite(_) => f.write_str("DbConn::Sqlite"),
        }
    }
}

/// The connection pool, and the turns to use it: [`run`] waits for a turn (first come, first
/// served, without holding a thread) before it takes a thread and a connection, so no more work
/// waits inside r2d2 than it has connections. r2d2 alone hands a connection given back to whichever
/// thread asks first, a newcomer as easily as one that has waited long, and under load the unlucky
/// ones wait far longer than the rest.
#[derive(Clone)]
pub struct Pool {
    inner: r2d2::Pool<Manager>,
    turns: Arc<tokio::sync::Semaphore>,
    /// SQLite: the node's one writer (also in each connection), for [`run_on_writer`].
    writer: Option<Arc<Writer>>,
}

impl Pool {
    fn new(inner: r2d2::Pool<Manager>, writer: Option<Arc<Writer>>) -> Self {
        let turns = Arc::new(tokio::sync::Semaphore::new(inner.max_size() as usize));
        Self {
            inner,
            turns,
            writer,
        }
    }
}

impl std::ops::Deref for Pool {
    type Target = r2d2::Pool<Manager>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

pub type PooledConn = r2d2::PooledConnection<Manager>;

/// How long a connection that just finished work without an error is handed out again without a
/// ping (HikariCP's `aliveBypassWindowMs`, same value): a busy node then spends no round trip on
/// `SELECT 1` per request, while a connection idle for longer (or whose last work failed) is still
/// tested at checkout, so one cut by a database restart is replaced instead of failing a request.
pub const TRUSTED_FOR: Duration = Duration::from_millis(500);

/// A pooled connection and when it last finished work without an error.
pub struct Conn {
    conn: DbConn,
    proven_at: Option<std::time::Instant>,
    /// SQLite: the node's one writer ([`Conn::write`]).
    writer: Option<Arc<Writer>>,
}

impl Conn {
    /// Runs `f` in a write transaction: committed when it returns `Ok`, rolled back on `Err`. On a
    /// SQLite pool it runs on the node's one writer ([`writer`]), with the other writes queued at
    /// that moment, and returns once their commit is done. Keep `f` short: every read, hash and
    /// signature that can come before belongs before (it takes owned values for that reason); its
    /// first statement should be the write that decides (a conditional `UPDATE`). Never call it
    /// while this connection holds a write transaction of its own: on SQLite the writer would wait
    /// for that lock (up to `busy_timeout`) while the caller waits for the writer.
    pub fn write<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.write(f),
            None => transaction(&mut self.conn, f),
        }
    }

    /// [`Conn::write`] for a write that is atomic by itself on PostgreSQL (one statement): there it
    /// runs with no transaction around it, sparing the two round trips of `BEGIN` and `COMMIT`; on
    /// SQLite, where it may take several statements, it runs as [`Conn::write`] does.
    pub fn atomic<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + Send + 'static,
    {
        match &mut self.conn {
            DbConn::Pg(_) => f(&mut self.conn),
            DbConn::Sqlite(_) => self.write(f),
        }
    }

    /// Records how the work just done on this connection ended (see [`TRUSTED_FOR`]).
    pub fn worked(&mut self, ok: bool) {
        self.proven_at = ok.then(std::time::Instant::now);
    }

    fn trusted(&self) -> bool {
        self.proven_at.is_some_and(|t| t.elapsed() < TRUSTED_FOR)
    }
}

/// `$body` with `$c` bound to the backend's own connection (`PgConnection` or `SqliteConnection`)
/// instead of the [`DbConn`] enum, for the queries of the hot paths (a code exchange, a refresh).
/// Diesel's `MultiConnection` builds a query's SQL text again on every pass over it (the statement
/// cache's check, the binds: two or more per run, each identifier quoted anew); the backend's own
/// connection finds a query with a static id in its statement cache by type and builds nothing:
/// 50–60k instructions per code exchange on SQLite (`bench/callgrind --only code`). The query is
/// written once and compiled for each backend; a boxed query (typed for the enum) cannot go here.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Pg($c) => $body,
            $crate::db::DbConn::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// A transaction on this connection: `f`'s writes commit together when it returns `Ok` and roll
/// back on `Err`; inside another transaction, a savepoint. On SQLite it begins `IMMEDIATE`, taking
/// the write lock at once (waiting for the writer's batch for up to `busy_timeout`). A deferred
/// transaction that reads and then writes fails at once with "database is locked" when another
/// connection committed in between (its snapshot is stale, and SQLite does not wait for that): an
/// admin write beside the writer's batches then answered 503. Never call [`Conn::write`] inside
/// `f` (the writer would wait for this lock).
pub fn transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager as _};
    let DbConn::Sqlite(c) = conn else {
        #[allow(clippy::disallowed_methods)]
        // PostgreSQL: its own locks, no deferred-snapshot trap
        return conn.transaction(f);
    };
    let nested = AnsiTransactionManager::transaction_manager_status_mut(c)
        .transaction_depth()?
        .is_some();
    if nested {
        #[allow(clippy::disallowed_methods)] // a savepoint inside this IMMEDIATE transaction
        return conn.transaction(f);
    }
    AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
    let result = f(conn);
    let DbConn::Sqlite(c) = conn else {
        return result; // it was SQLite when the transaction began
    };
    match result {
        Ok(value) => {
            if let Err(e) = AnsiTransactionManager::commit_transaction(c) {
                // A failed COMMIT leaves the transaction open: end it before answering.
                let _ = AnsiTransactionManager::rollback_transaction(c);
                return Err(e.into());
            }
            Ok(value)
        }
        Err(e) => {
            AnsiTransactionManager::rollback_transaction(c)?;
            Err(e)
        }
    }
}

impl std::ops::Deref for Conn {
    type Target = DbConn;
    fn deref(&self) -> &DbConn {
        &self.conn
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.conn
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.conn.fmt(f)
    }
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Any key will do as long as every Tessera node uses the same one: it serialises concurrent migrators.
const MIGRATION_LOCK_KEY: i64 = 0x0074_6573_7365_7261;

/// Opens connections for the backend named by the URL's scheme; nothing is guessed from a failed attempt.
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
    /// SQLite: the pool's one writer, shared by its connections.
    writer: Option<Arc<Writer>>,
    /// SQLite: WAL checkpoints are left to [`checkpointer`] instead of the committing connection.
    background_checkpoints: bool,
    /// Tells the background checkpointer that the pool is still there.
    alive: Arc<()>,
}

impl Manager {
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            writer: None,
            background_checkpoints: false,
            alive: Arc::default(),
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = ConnectionError;

    fn connect(&self) -> Result<Conn, ConnectionError> {
        let conn = self.open()?;
        Ok(Conn {
            conn,
            proven_at: None,
            writer: self.writer.clone(),
        })
    }

    /// A ping (`SELECT 1`), skipped when the connection finished work without error within
    /// [`TRUSTED_FOR`].
    fn is_valid(&self, conn: &mut Conn) -> Result<(), ConnectionError> {
        if conn.trusted() {
            return Ok(());
        }
        let result = conn
            .batch_execute("SELECT 1")
            .map_err(ConnectionError::CouldntSetupConfiguration);
        conn.worked(result.is_ok());
        result
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        match &mut conn.conn {
            DbConn::Pg(c) => c.is_broken(),
            DbConn::Sqlite(c) => c.is_broken(),
        }
    }
}

/// How long a SQLite connection waits for a lock another connection holds before failing.
pub const BUSY_TIMEOUT_MS: u32 = 5000;

impl Manager {
    fn open(&self) -> Result<DbConn, ConnectionError> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    ConnectionError::BadConnection("the SQLite path is not UTF-8".into())
                })?;
                let mut conn = SqliteConnection::establish(path)?;
                // WAL lets readers run beside the writer; busy_timeout makes writers queue instead of failing.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                ))
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                if self.background_checkpoints {
                    // A commit that fills the WAL past 1 000 pages would copy it back into the
                    // database (and fsync) before returning, every few dozen writes under load.
                    // The WAL file is cut back to 64 MiB whenever it restarts.
                    conn.batch_execute(
                        "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;",
                    )
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                }
                Ok(DbConn::Sqlite(conn))
            }
            DatabaseUrl::Postgres(url) => Ok(DbConn::Pg(PgConnection::establish(url)?)),
        }
    }

    /// The SQLite writer's connection ([`Writer`]): the pool's, with its temporary storage in
    /// memory. Each write of a batch runs in a savepoint, and SQLite copies the pages a savepoint
    /// changes into a sub-journal, which by default moves to a temporary file once one write has
    /// changed 64 KiB of pages (a B-tree split) and stays a file until the batch commits: measured
    /// with code exchanges at 32 connections, a file created and unlinked in /var/tmp about every
    /// 60 exchanges and 1.2 extra `pwrite`s per exchange. In memory it holds the pages of the one
    /// write in progress and is emptied when that write's savepoint ends. The pool's readers keep
    /// the default: a large sort there spills to disk rather than grow the heap.
    fn open_writer(&self) -> Result<DbConn, ConnectionError> {
        let mut conn = self.open()?;
        if let DbConn::Sqlite(c) = &mut conn {
            c.batch_execute("PRAGMA temp_store = MEMORY;")
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
        }
        Ok(conn)
    }
}

/// What connecting to, migrating or probing the database fails with (one line each).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// `url` is shown without its password.
    #[error("cannot connect to {url} ({reason})")]
    Connect { url: String, reason: String },
    #[error("{url} does not answer ({reason})")]
    NoAnswer { url: String, reason: String },
    #[error("migration failed: {0}")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{0}")]
    Pool(#[from] r2d2::Error),
    #[error("{0}")]
    Connection(#[from] ConnectionError),
    #[error("{0}")]
    Query(#[from] diesel::result::Error),
}

/// Builds the pool and proves the database answers, so a bad URL fails at start, not on first use.
pub fn connect(url: &DatabaseUrl, size: u32, timeout: Duration) -> Result<Pool, DbError> {
    // A direct connect first gives the backend's own reason (refused, unknown database, not a file…).
    drop(connect_one(url)?);
    let mut manager = Manager::new(url.clone());
    if let DatabaseUrl::Sqlite(path) = url {
        let restart_due = Arc::new(AtomicBool::new(false));
        match checkpointer(
            path.clone(),
            Arc::downgrade(&manager.alive),
            restart_due.clone(),
        ) {
            Ok(()) => manager.background_checkpoints = true,
            Err(e) => tracing::warn!(error = %e, "cannot start the SQLite checkpointer"),
        }
        let opener = manager.clone();
        match Writer::start(move || opener.open_writer(), restart_due) {
            Ok(writer) => manager.writer = Some(Arc::new(writer)),
            Err(e) => tracing::warn!(error = %e, "cannot start the SQLite writer"),
        }
    }
    let writer = manager.writer.clone();
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(timeout)
        .error_handler(Box::new(LogErrors))
        .build_unchecked(manager);
    Ok(Pool::new(pool, writer))
}

/// One connection without a pool, for short-lived commands: a pool opens connections on background
/// threads, and a process that exits while one of them is inside libpq can crash on the way out.
pub fn connect_one(url: &DatabaseUrl) -> Result<DbConn, DbError> {
    let manager = Manager::new(url.clone());
    let mut conn = r2d2::ManageConnection::connect(&manager).map_err(|e| DbError::Connect {
        url: url.to_string(),
        reason: one_line(&e.to_string()),
    })?;
    r2d2::ManageConnection::is_valid(&manager, &mut conn).map_err(|e| DbError::NoAnswer {
        url: url.to_string(),
        reason: one_line(&e.to_string()),
    })?;
    Ok(conn.conn)
}

/// How often the background checkpointer copies the SQLite WAL back into the database.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// What `PRAGMA wal_checkpoint` answers.
#[derive(Debug, QueryableByName)]
pub(crate) struct Checkpoint {
    /// It could not finish: a lock was taken (another checkpoint, a reader, a writer).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub busy: bool,
    /// Frames in the WAL.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub log: i32,
    /// Frames of the WAL copied back into the database.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub checkpointed: i32,
}

/// `PRAGMA wal_checkpoint(mode)` on SQLite.
pub(crate) fn checkpoint(conn: &mut SqliteConnection, mode: &str) -> QueryResult<Checkpoint> {
    diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})")).get_result(conn)
}

/// The pool's SQLite connections leave checkpoints to this thread, so no request waits for one
/// (nor holds up the writer meanwhile): every [`CHECKPOINT_EVERY`] a `PASSIVE` checkpoint,
/// which never blocks readers or writers. Once one has copied back a WAL of
/// [`writer::RESTART_AFTER_FRAMES`] or more (all but a few batches' frames), it sets
/// `restart_due` for the writer, which restarts the WAL between two batches. It ends when the pool
/// is dropped (`pool_alive`). When the thread cannot start, the pool's connections keep
/// checkpointing themselves.
fn checkpointer(
    path: std::path::PathBuf,
    pool_alive: std::sync::Weak<()>,
    restart_due: Arc<AtomicBool>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let mut conn: Option<SqliteConnection> = None;
            let file = database_file(&path);
            while pool_alive.strong_count() > 0 {
                std::thread::sleep(CHECKPOINT_EVERY);
                if conn.is_none() {
                    conn = path.to_str().and_then(|p| {
                        let mut c = SqliteConnection::establish(p).ok()?;
                        c.batch_execute("PRAGMA busy_timeout = 1000;").ok()?;
                        Some(c)
                    });
                }
                let Some(c) = conn.as_mut() else { continue };
                match catch_up(c, file.as_deref()) {
                    Ok(true) => restart_due.store(true, Ordering::Relaxed),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %one_line(&e.to_string()), "SQLite checkpoint failed");
                        conn = None;
                    }
                }
            }
        })
        .map(drop)
}

/// One `PASSIVE` checkpoint; when the WAL is long enough to restart, more of them right away, each
/// copying what was written during the one before, until one finds little new: the writer's
/// `RESTART` then has only what was written during that last short pass to copy (and to sync)
/// while writes wait. True when the restart is due.
///
/// A checkpoint reports the WAL's length when it began and copies that far; what is written while
/// it runs (a pass that copies and syncs a few hundred pages takes 10 to 30 ms here) shows only
/// as the next pass's longer WAL. Stopping once a pass had little *left* thus handed the restart
/// every frame written during that pass: measured with code exchanges at 32 connections on one
/// core, restarts held the writer 23 to 25 ms at the median.
fn catch_up(conn: &mut SqliteConnection, file: Option<&std::fs::File>) -> QueryResult<bool> {
    let mut done = checkpoint(conn, "PASSIVE")?;
    if done.busy || done.log < writer::RESTART_AFTER_FRAMES {
        return Ok(false);
    }
    for _ in 0..CATCH_UP_PASSES {
        let before = done.log;
        done = checkpoint(conn, "PASSIVE")?;
        // Busy (the writer's own `RESTART` held the checkpoint lock): the counts are -1.
        if done.busy || done.log < before {
            return Ok(false);
        }
        if done.log - before <= LEFT_FOR_RESTART && done.checkpointed == done.log {
            // A pass syncs the database only when nothing was written while it ran, which under
            // steady writes is never: the pages copied since the last restart are all still to
            // sync, and the restart's sync would write them all while writes wait. So sync them
            // now, beside the writes, and copy what arrived meanwhile.
            // Measured with code exchanges and refresh rotations at 32 connections on one core
            // (bench/README): restarts held the writer 18.8 ms at the median and 31.4 at the 90th
            // percentile without this sync, 6.6 and 14.8 with it.
            let Some(file) = file else {
                return Ok(true);
            };
            if let Err(e) = file.sync_data() {
                tracing::warn!(error = %e, "cannot sync the SQLite database file");
                return Ok(true);
            }
            done = checkpoint(conn, "PASSIVE")?;
            return Ok(!done.busy);
        }
    }
    Ok(false)
}

/// The database file at `path`, opened once per process and never closed: it is only synced
/// ([`catch_up`]). Closing any descriptor of a file releases every POSIX lock the process holds on
/// it, SQLite's connections' locks included, so this one stays open for as long as the process
/// runs, and a second pool on the same file shares it (one descriptor per database path).
fn database_file(path: &std::path::Path) -> Option<Arc<std::fs::File>> {
    static OPEN: std::sync::Mutex<Vec<(std::path::PathBuf, Arc<std::fs::File>)>> =
        std::sync::Mutex::new(Vec::new());
    let path = std::fs::canonicalize(path).ok()?;
    let mut open = OPEN.lock().ok()?;
    if let Some((_, file)) = open.iter().find(|(p, _)| *p == path) {
        return Some(file.clone());
    }
    let file = Arc::new(std::fs::File::open(&path).ok()?);
    open.push((path, file.clone()));
    Some(file)
}

/// At most this many `PASSIVE` checkpoints after the first in one [`catch_up`]: each copies what was
/// written during the one before, so while the disk copies faster than writes arrive they shrink
/// geometrically; under writes it cannot keep up with, the restart is left for the next round.
const CATCH_UP_PASSES: usize = 8;

/// [`catch_up`] is done when a pass found at most this many frames written during the pass before.
const LEFT_FOR_RESTART: i32 = 64;

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<ConnectionError> for LogErrors {
    fn handle_error(&self, error: ConnectionError) {
        tracing::warn!(error = %one_line(&error.to_string()), "database connection failed");
    }
}

/// Applies pending migrations and returns the versions applied (empty when the schema is current).
pub fn migrate(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
    let applied = match conn {
        DbConn::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.iter().map(ToString::to_string).collect()),
        DbConn::Pg(c) => {
            // Several nodes may start at once on one PostgreSQL: only one migrates at a time.
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
            let result = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.iter().map(ToString::to_string).collect());
            let _ = c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
            result
        }
    };
    applied.map_err(DbError::Migration)
}

/// Runs `f` with a pooled connection on the blocking thread pool (Diesel and oxide-auth are
/// synchronous), inside the caller's tracing span: what `f` logs carries the request id. Slow work
/// that needs no connection (Argon2: `accounts::password::PasswordGate`) runs before, not inside.
pub async fn run<T, F>(pool: &Pool, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    run_writing(pool, move |conn| f(conn)).await
}

/// [`run`] for work that ends in a write: `f` gets the pooled [`Conn`] itself, reads through it
/// (it dereferences to [`DbConn`]), does its slow work (hashing, signing) with no transaction open,
/// then writes in one short [`Conn::write`].
pub async fn run_writing<T, F>(pool: &Pool, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut Conn) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    // Closed only if the pool were; never here.
    let _turn = pool.turns.acquire().await.ok();
    let pool = pool.clone();
    let span = tracing::Span::current();
    actix_web::web::block(move || {
        let _in = span.enter();
        let mut conn = pool.get()?;
        let result = f(&mut conn);
        conn.worked(result.is_ok());
        result
    })
    .await?
}

/// [`run_writing`] for work whose reads decide its write and that is little else (a code exchange,
/// a refresh rotation). On SQLite all of `f` runs on the node's one writer, inside the next batch's
/// transaction, on the writer's connection: the request takes no blocking thread and no pooled
/// connection, and is not handed from thread to thread on its way (worker, blocking thread, writer,
/// blocking thread, worker: with code exchanges at 32 connections, the wake-ups and context
/// switches were a third of the server's CPU). Its reads see the latest commit. On PostgreSQL it is
/// [`run_writing`].
///
/// What `f` writes commits whether it answers `Ok` or `Err`, as it would on a pooled connection,
/// where each [`Conn::write`] commits on its own (here each is a savepoint of the batch): a refusal
/// keeps what it recorded (a revoked refresh family, an audit event). `f` must be short, since every
/// other write waits for it: no slow hashing, nothing over the network, and no pooled connection or
/// [`run`] inside (on SQLite that would wait for the writer, which waits for `f`).
pub async fn run_on_writer<T, F>(pool: &Pool, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut Conn) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let Some(writer) = pool.writer.clone() else {
        return run_writing(pool, f).await;
    };
    // The turn bounds the writer's queue as it bounds the blocking threads.
    let _turn = pool.turns.acquire().await.ok();
    let span = tracing::Span::current();
    writer
        .run(move |conn| {
            let _in = span.enter();
            Ok::<_, diesel::result::Error>(f(conn))
        })
        .await?
}

/// Readiness: a pooled connection answers, and on SQLite the database file is still there and readable.
pub fn check_ready(pool: &Pool, url: &DatabaseUrl, timeout: Duration) -> Result<(), DbError> {
    let mut conn = pool.get_timeout(timeout)?;
    let ping = conn.batch_execute("SELECT 1");
    conn.worked(ping.is_ok());
    ping?;
    if let DatabaseUrl::Sqlite(path) = url {
        // Pooled connections keep a deleted or replaced file open, so look at the path itself:
        // a fresh read-only open that must not create anything, then a read of the schema table.
        let uri = format!("file:{}?mode=ro", uri_escape(&path.to_string_lossy()));
        let mut probe = SqliteConnection::establish(&uri)?;
        probe.batch_execute("SELECT count(*) FROM sqlite_master")?;
    }
    Ok(())
}

fn uri_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// Declares a newtype over a stored text id (`usr_…`, `key_…`), one per kind of id, so that one kind
/// cannot be passed where another is expected. Stored, serialized and displayed as the text itself;
/// made from text at the edge (a path segment, a column) with `From<String>`/`From<&str>`, read as text
/// through `Deref<Target = str>`.
macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Read as text anywhere (a column, a log field); made from text only explicitly.
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                self == &other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}
pub(crate) use string_id;

/// The current time in unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use tracing::Instrument as _;

    use super::*;

    /// The checkpointer syncs the database through a descriptor of its own, opened once per file
    /// and kept open after its users are gone (closing it would drop the process's SQLite locks on
    /// the file): the same path, however written, gets the same descriptor, another file another.
    #[test]
    fn the_database_file_is_opened_once_per_path_and_never_closed() {
        let dir = tempfile::tempdir().expect("tmp");
        for name in ["a.db", "b.db"] {
            let url = DatabaseUrl::Sqlite(dir.path().join(name));
            drop(connect(&url, 2, Duration::from_secs(5)).expect("pool"));
        }
        let first = database_file(&dir.path().join("a.db")).expect("a.db");
        let first_ptr = Arc::as_ptr(&first);
        first.sync_data().expect("a read-only descriptor syncs");
        drop(first);
        let again = database_file(&dir.path().join(".").join("a.db")).expect("a.db again");
        assert_eq!(Arc::as_ptr(&again), first_ptr, "kept open, and shared");
        let other = database_file(&dir.path().join("b.db")).expect("b.db");
        assert_ne!(Arc::as_ptr(&other), first_ptr);
        assert!(database_file(&dir.path().join("missing.db")).is_none());
    }

    /// A transaction that reads, then writes after another connection's write was sent, commits:
    /// on SQLite it holds the write lock from its start, so the other write waits for it. (A
    /// deferred transaction was refused at once with "database is locked": its snapshot was stale.)
    #[test]
    fn a_transaction_that_reads_then_writes_keeps_its_turn() {
        let dir = tempfile::tempdir().expect("tmp");
        let url = DatabaseUrl::Sqlite(dir.path().join("t.db"));
        let pool = connect(&url, 4, Duration::from_secs(5)).expect("pool");
        pool.get()
            .expect("conn")
            .batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .expect("table");
        let insert = |c: &mut DbConn, id: i64| {
            diesel::sql_query("INSERT INTO t (id) VALUES (?)")
                .bind::<diesel::sql_types::BigInt, _>(id)
                .execute(c)
        };
        let (read, told) = std::sync::mpsc::channel();
        let other = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                told.recv().expect("told");
                let mut conn = pool.get().expect("conn");
                conn.write(move |c| insert(c, 2).map(|_| ()))
            })
        };
        let mut mine = pool.get().expect("conn");
        let result = transaction(&mut mine, |c| -> QueryResult<()> {
            c.batch_execute("SELECT count(*) FROM t")?;
            read.send(()).expect("tell");
            // The other write is sent now, and would commit if it could.
            std::thread::sleep(Duration::from_millis(300));
            insert(c, 1)?;
            Ok(())
        });
        assert!(result.is_ok(), "{result:?}");
        let theirs = other.join().expect("the other thread");
        assert!(
            theirs.is_ok(),
            "the other write waited, then committed: {theirs:?}"
        );
        let mut pooled = pool.get().expect("conn");
        let conn: &mut DbConn = &mut pooled;
        let ids: Vec<i64> =
            diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT id FROM t ORDER BY id")
                .load(conn)
                .expect("ids");
        assert_eq!(ids, [1, 2]);
    }

    #[actix_web::test]
    async fn a_warning_inside_run_carries_the_request_id() {
        crate::telemetry::capture::start();
        let dir = tempfile::tempdir().expect("tmp");
        let url = DatabaseUrl::Sqlite(dir.path().join("t.db"));
        let pool = connect(&url, 1, Duration::from_secs(5)).expect("pool");
        let span = tracing::info_span!("request", request_id = %"req_spanned7");
        run(&pool, |conn| {
            conn.batch_execute("SELECT 1")?;
            tracing::warn!("warned inside db::run");
            Ok(())
        })
        .instrument(span)
        .await
        .expect("runs");
        let lines = crate::telemetry::capture::lines_with("warned inside db::run");
        let [line] = lines.as_slice() else {
            panic!("the warning was logged once: {lines:?}");
        };
        assert!(line.contains("request_id=req_spanned7"), "{line}");
    }
}
