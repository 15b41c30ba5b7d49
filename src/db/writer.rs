//! SQLite's one writer. A SQLite database takes one writing transaction at a time; left to SQLite,
//! writers that find the lock taken sleep in its busy handler (1, 2, 5 … 100 ms, retried) and the
//! lock goes to whoever wakes first, so under load the unlucky ones wait hundreds of milliseconds,
//! and every commit pays for its own locks, WAL frames and a page cache that the other connections'
//! commits have just invalidated.
//!
//! So a node's write transactions on SQLite ([`super::Conn::write`]) go to one thread with one
//! connection, in arrival order. It takes whatever has queued while it was busy (up to
//! [`MAX_BATCH`]) and runs it as one transaction, each write in a savepoint of its own: a write that
//! fails or refuses rolls back alone, the others commit together (group commit), and each caller
//! gets its answer only once the commit that carries its write has succeeded. Another process (a
//! CLI command, a second node on the same file) still meets `busy_timeout`.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use diesel::connection::{AnsiTransactionManager, SimpleConnection as _, TransactionManager as _};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::{Conn, DbConn};

/// The most writes one transaction carries.
pub const MAX_BATCH: usize = 64;

/// The background checkpointer asks the writer to restart the WAL ([`restart_wal`]) once the WAL
/// holds this many frames (4 KiB pages: 8 MiB) and a checkpoint has copied them all back. Each
/// restart stops the writer (it copies the last frames and syncs both files), and how long grows
/// with the WAL: code exchanges and refresh rotations at 32 connections on one core (bench/README,
/// "At 75114cb"), restarts every 8 MiB held the writer 7.4 ms at the median and 12.4–12.9 ms at the
/// 90th percentile, every 16 MiB 9.8–10.0 and 16.1–16.5 ms, and the p99 of both followed (code
/// exchange 24.4–25.5 ms against 28.7–30.1); every 64 or 128 MiB was worse still, every 4 MiB no
/// better (twice the restarts).
pub const RESTART_AFTER_FRAMES: i32 = 2048;

/// Writes waiting beyond this many block their callers (each caller is a blocking-pool thread
/// with a request behind it, so the queue is bounded by them anyway).
const QUEUE: usize = 1024;

/// What the writer thread runs: the caller's write in a savepoint, returning how to answer the
/// caller once the transaction has ended (`None`: committed; `Some(reason)`: it failed). The
/// writer's connection is a [`Conn`] without a writer: a [`Conn::write`] inside a job is a
/// savepoint of the batch's transaction.
type Job = Box<dyn FnOnce(&mut Conn) -> Finish + Send>;
type Finish = Box<dyn FnOnce(Option<&str>) + Send>;

/// The handle callers send their writes through. The thread ends when the last handle is dropped.
#[derive(Debug)]
pub struct Writer {
    jobs: mpsc::SyncSender<Job>,
}

impl Writer {
    /// Starts the writer thread on its own connection, opened by `open` (with the pool's pragmas).
    /// It restarts the WAL between batches whenever `restart_due` is set (by the background
    /// checkpointer), and clears it once that succeeded.
    pub fn start(
        open: impl Fn() -> Result<DbConn, diesel::ConnectionError> + Send + 'static,
        restart_due: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&queue, &open, &restart_due))?;
        Ok(Self { jobs })
    }

    /// Runs `f` in the next transaction and waits for its commit: `Ok` is answered once committed
    /// (a failed commit answers the error instead), `Err` rolls back `f`'s own writes.
    pub fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + Send + 'static,
    {
        let (answer, answered) = mpsc::sync_channel::<Result<T, E>>(1);
        let job: Job = Box::new(move |conn: &mut Conn| {
            // A savepoint inside the batch's transaction: this write rolls back alone.
            let result = savepoint(conn, |c| f(&mut c.conn));
            Box::new(move |failed: Option<&str>| {
                let _ = answer.send(answer_of(failed, result));
            })
        });
        if self.jobs.send(job).is_err() {
            return Err(failure("the SQLite writer has stopped").into());
        }
        answered
            .recv()
            .unwrap_or_else(|_| Err(failure("the SQLite writer failed").into()))
    }

    /// [`Writer::write`] for a caller on the async runtime, with `f` given the writer's own
    /// connection as a [`Conn`]: `f` runs on the writer thread in the next transaction, in a
    /// savepoint of its own (`Err` rolls back what it wrote, `Ok` commits with the batch), and the
    /// answer arrives through a future once that commit is done, so no thread waits for it. Its
    /// reads see every commit and the batch's earlier writes. The queue is never full while the
    /// callers are bounded (`db::run_on_writer` takes one of the pool's turns first); were it full,
    /// this answers an error rather than block the runtime's thread.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn: &mut Conn| {
            let result = savepoint(conn, f);
            Box::new(move |failed: Option<&str>| {
                let _ = answer.send(answer_of(failed, result));
            })
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => {
                return Err(failure("the SQLite writer's queue is full").into());
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(failure("the SQLite writer has stopped").into());
            }
        }
        answered
            .await
            .unwrap_or_else(|_| Err(failure("the SQLite writer failed").into()))
    }
}

/// A write's answer once its batch ended: its own result, or the batch's failure when the batch
/// did not commit what it wrote.
fn answer_of<T, E: From<diesel::result::Error>>(
    failed: Option<&str>,
    result: Result<T, E>,
) -> Result<T, E> {
    match (failed, result) {
        (Some(reason), Ok(_)) => Err(failure(reason).into()),
        (_, result) => result,
    }
}

/// `f` in a savepoint of the batch's transaction, given the whole [`Conn`] (Diesel's `transaction`
/// hands its closure the bare connection): released when `f` returns `Ok`, rolled back on `Err`.
/// Both [`Writer::write`] and [`Writer::run`] make their savepoints here.
fn savepoint<T, E, F>(conn: &mut Conn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut Conn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::TransactionManager as _;
    type Manager = <DbConn as Connection>::TransactionManager;
    Manager::begin_transaction(&mut conn.conn)?;
    match f(conn) {
        Ok(value) => match Manager::commit_transaction(&mut conn.conn) {
            Ok(()) => Ok(value),
            Err(e) => {
                // A release that failed leaves the savepoint open: undo it before answering.
                let _ = Manager::rollback_transaction(&mut conn.conn);
                Err(e.into())
            }
        },
        Err(e) => {
            Manager::rollback_transaction(&mut conn.conn)?;
            Err(e)
        }
    }
}

fn failure(reason: &str) -> diesel::result::Error {
    diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::Unknown,
        Box::new(reason.to_owned()),
    )
}

fn run(
    queue: &mpsc::Receiver<Job>,
    open: &dyn Fn() -> Result<DbConn, diesel::ConnectionError>,
    restart_due: &AtomicBool,
) {
    let mut conn: Option<Conn> = None;
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if conn.is_none() {
            match open() {
                Ok(c) => {
                    conn = Some(Conn {
                        conn: c,
                        proven_at: None,
                        writer: None,
                    })
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the SQLite writer cannot connect");
                    // Dropping the batch answers every caller with an error.
                    continue;
                }
            }
        }
        let Some(DbConn::Sqlite(c)) = conn.as_mut().map(|c| &mut c.conn) else {
            continue;
        };
        // IMMEDIATE: the write lock is taken now (waiting out another process's writer for up to
        // `busy_timeout`), so no write of the batch can meet a database changed since it began.
        if let Err(e) = AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE") {
            tracing::warn!(error = %e, "a SQLite write transaction cannot begin");
            continue;
        }
        let mut finishes: Vec<Finish> = Vec::with_capacity(batch.len());
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
            if let Some(c) = conn.as_mut() {
                for job in batch {
                    finishes.push(job(c));
                }
            }
        }));
        if ran.is_err() {
            // A write panicked inside its savepoint: closing the connection rolls the whole
            // transaction back; the next batch opens a fresh one.
            conn = None;
            finishes
                .into_iter()
                .for_each(|f| f(Some("a write panicked")));
            continue;
        }
        let Some(DbConn::Sqlite(c)) = conn.as_mut().map(|c| &mut c.conn) else {
            continue;
        };
        match AnsiTransactionManager::commit_transaction(c) {
            Ok(()) => {
                finishes.into_iter().for_each(|f| f(None));
                if restart_due.load(Ordering::Relaxed) && restart_wal(c) {
                    restart_due.store(false, Ordering::Relaxed);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "a SQLite write transaction failed");
                let reason = e.to_string();
                finishes.into_iter().for_each(|f| f(Some(&reason)));
                if AnsiTransactionManager::rollback_transaction(c).is_err() {
                    // Whatever state it is in, the next batch gets a fresh connection.
                    conn = None;
                }
            }
        }
    }
}

/// Starts the WAL over. The background checkpointer's `PASSIVE` checkpoints copy the WAL back into
/// the database, but the WAL only starts over from its first frame when a write finds it fully
/// copied and no reader inside it, which a busy node rarely allows: the file then grows without end
/// (700 MB in a minute of code exchanges), and every read searches an ever longer WAL index. So
/// once the checkpointer has copied a long WAL back (`restart_due`), the writer runs a `RESTART`
/// between two batches: it copies the few frames written since, and makes the next write start the
/// WAL over (`journal_size_limit` then cuts the file back).
///
/// It never waits, since every queued write would wait with it: with `busy_timeout` at 0 for its
/// duration, a reader still inside the WAL (or the checkpointer at work) makes it give up at once
/// instead of sleeping in SQLite's busy handler (1, 2, 5, 10 ms …), and it is tried again after
/// the next batch. Measured with code exchanges at 32 connections: a `RESTART` every 250 ms, with
/// the WAL not copied back just before, held the writer 12 to 34 ms and set the p99 (29 to 36 ms).
/// After the checkpointer's catch-up (`db::catch_up`: the WAL copied back and the database file
/// synced, beside the writes) it holds it 6.6 ms at the median on one shared core, most of it the
/// sync of the few pages it copies and of the file's new length. True when it succeeded.
fn restart_wal(conn: &mut SqliteConnection) -> bool {
    if conn.batch_execute("PRAGMA busy_timeout = 0;").is_err() {
        return false;
    }
    let done = super::checkpoint(conn, "RESTART");
    if let Err(e) = conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {};",
        super::BUSY_TIMEOUT_MS
    )) {
        tracing::warn!(error = %e, "the SQLite writer cannot reset its busy timeout");
    }
    match done {
        Ok(c) => !c.busy,
        Err(e) => {
            tracing::debug!(error = %e, "the WAL could not be restarted; after the next batch");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use diesel::connection::SimpleConnection as _;
    use diesel::sql_types::BigInt;

    use super::*;
    use crate::config::DatabaseUrl;
    use crate::error::AppError;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn count(conn: &mut DbConn) -> i64 {
        diesel::sql_query("SELECT count(*) AS n FROM t")
            .get_result::<Count>(conn)
            .expect("count")
            .n
    }

    fn pool() -> (tempfile::TempDir, crate::db::Pool) {
        let dir = tempfile::tempdir().expect("tmp");
        let url = DatabaseUrl::Sqlite(dir.path().join("w.db"));
        let pool = crate::db::connect(&url, 32, std::time::Duration::from_secs(5)).expect("pool");
        pool.get()
            .expect("conn")
            .batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .expect("table");
        (dir, pool)
    }

    fn insert(conn: &mut DbConn, id: i64) -> diesel::QueryResult<usize> {
        diesel::sql_query("INSERT INTO t (id) VALUES (?)")
            .bind::<BigInt, _>(id)
            .execute(conn)
    }

    /// Writes sent together share a transaction, yet one that fails (here a duplicate key) or
    /// refuses rolls back alone and each caller gets its own answer.
    #[test]
    fn concurrent_writes_commit_or_roll_back_each_on_its_own() {
        let (_dir, pool) = pool();
        let callers = 24;
        let start = Arc::new(Barrier::new(callers));
        let threads: Vec<_> = (0..callers as i64)
            .map(|i| {
                let pool = pool.clone();
                let start = start.clone();
                std::thread::spawn(move || {
                    let mut conn = pool.get().expect("conn");
                    start.wait();
                    conn.write(move |c| -> Result<(), diesel::result::Error> {
                        insert(c, 1000 + i)?;
                        match i % 3 {
                            0 => insert(c, 1000 + i).map(drop), // duplicate: fails
                            1 => Err(diesel::result::Error::RollbackTransaction),
                            _ => Ok(()),
                        }
                    })
                })
            })
            .collect();
        let answers: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        for (i, answer) in answers.iter().enumerate() {
            assert_eq!(answer.is_ok(), i % 3 == 2, "caller {i}: {answer:?}");
        }
        let mut conn = pool.get().expect("conn");
        assert_eq!(
            count(&mut conn),
            (callers / 3) as i64,
            "only the ones that succeeded"
        );
    }

    #[derive(QueryableByName)]
    struct TempStore {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        temp_store: i32,
    }

    fn temp_store(conn: &mut DbConn) -> i32 {
        diesel::sql_query("PRAGMA temp_store")
            .get_result::<TempStore>(conn)
            .expect("temp_store")
            .temp_store
    }

    /// The writer keeps its savepoints' sub-journal in memory (no temporary file per batch), the
    /// readers keep SQLite's default; a write that changes far more than the 64 KiB after which the
    /// sub-journal would have moved to a file still rolls back alone, and the next one commits.
    #[test]
    fn the_writer_journals_its_savepoints_in_memory_and_a_large_write_rolls_back_alone() {
        let (_dir, pool) = pool();
        let mut conn = pool.get().expect("conn");
        assert_eq!(temp_store(&mut conn), 0, "a reader: the default");
        let on_writer = conn
            .write(|c| Ok::<_, diesel::result::Error>(temp_store(c)))
            .expect("pragma");
        assert_eq!(on_writer, 2, "the writer: MEMORY");
        conn.batch_execute("CREATE TABLE big (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
            .expect("table");
        let fill = |c: &mut DbConn, from: i64| {
            // 200 rows of 2 KiB: about 100 pages, 400 KiB
            diesel::sql_query(
                "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ? + 199) \
                 INSERT INTO big (id, v) SELECT i, randomblob(2048) FROM n",
            )
            .bind::<BigInt, _>(from)
            .bind::<BigInt, _>(from)
            .execute(c)
        };
        let refused = conn.write(move |c| -> Result<(), diesel::result::Error> {
            fill(c, 0)?;
            Err(diesel::result::Error::RollbackTransaction)
        });
        assert!(refused.is_err());
        conn.write(move |c| fill(c, 1000).map(drop))
            .expect("the next write");
        #[derive(QueryableByName)]
        struct Rows {
            #[diesel(sql_type = BigInt)]
            n: i64,
            #[diesel(sql_type = BigInt)]
            low: i64,
        }
        let read = |c: &mut DbConn| -> Rows {
            diesel::sql_query("SELECT count(*) AS n, coalesce(min(id), -1) AS low FROM big")
                .get_result(c)
                .expect("rows")
        };
        let rows = read(&mut conn);
        assert_eq!(
            (rows.n, rows.low),
            (200, 1000),
            "only the second write's rows"
        );
    }

    /// Work sent with `db::run_on_writer` runs on the writer's own connection, one job after the
    /// other: each reads what the ones before it wrote (also earlier in its own batch, which a
    /// pooled reader's snapshot would miss), a `Conn::write` inside it is a savepoint of the batch
    /// (a second trip to the writer would wait for itself), and what it wrote commits even when it
    /// answers an error. `Writer::run`'s own `Err` rolls back.
    #[test]
    fn work_on_the_writer_reads_every_write_before_it_and_keeps_its_writes_when_it_refuses() {
        let (_dir, pool) = pool();
        actix_web::rt::System::new().block_on(async {
            let refused = crate::db::run_on_writer(&pool, |conn| {
                conn.write(|c| insert(c, 1).map_err(AppError::from))?;
                Err::<(), _>(AppError::NotFound)
            })
            .await;
            assert!(matches!(refused, Err(AppError::NotFound)), "{refused:?}");

            let jobs = (0..40).map(|i| {
                crate::db::run_on_writer(&pool, move |conn| {
                    let before = count(conn);
                    conn.write(move |c| insert(c, 100 + i).map_err(AppError::from))?;
                    Ok(before)
                })
            });
            let mut seen: Vec<i64> = futures_util::future::join_all(jobs)
                .await
                .into_iter()
                .map(|r| r.expect("job"))
                .collect();
            seen.sort_unstable();
            assert_eq!(
                seen,
                (1..=40).collect::<Vec<i64>>(),
                "each saw all before it"
            );

            let writer = pool.writer.clone().expect("a SQLite pool has a writer");
            let rolled_back: Result<(), diesel::result::Error> = writer
                .run(|conn| {
                    insert(conn, 500)?;
                    Err(diesel::result::Error::RollbackTransaction)
                })
                .await;
            assert!(rolled_back.is_err());
        });
        let mut conn = pool.get().expect("conn");
        assert_eq!(
            count(&mut conn),
            41,
            "the refused job's write and the 40 others"
        );
    }

    /// A write that panics answers its caller with an error; the writer goes on.
    #[test]
    fn a_panicking_write_fails_alone_and_the_writer_goes_on() {
        let (_dir, pool) = pool();
        let mut conn = pool.get().expect("conn");
        let panicked = conn.write(|c| -> Result<(), diesel::result::Error> {
            insert(c, 1)?;
            panic!("a bug in a write");
        });
        assert!(panicked.is_err());
        conn.write(|c| insert(c, 2)).expect("the next write");
        assert_eq!(count(&mut conn), 1, "the panicked write was rolled back");
    }

    /// Under writes and reads that never pause, the WAL still starts over (the checkpointer copies
    /// it back, the writer restarts it between batches) instead of growing for as long as the load
    /// lasts; and nothing written is lost on the way.
    #[test]
    fn the_wal_starts_over_under_constant_reads_and_writes() {
        let (dir, pool) = pool();
        pool.get()
            .expect("conn")
            .batch_execute("CREATE TABLE pages (k BLOB PRIMARY KEY, v BLOB NOT NULL)")
            .expect("table");
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (pool, stop) = (pool.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let mut conn = pool.get().expect("conn");
                        diesel::sql_query(
                            "SELECT count(*) AS n FROM pages WHERE k = randomblob(32)",
                        )
                        .get_result::<Count>(&mut **conn)
                        .expect("read");
                    }
                })
            })
            .collect();
        // Random keys: every write dirties pages all over the index, as token hashes do.
        let written = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let writers: Vec<_> = (0..16)
            .map(|_| {
                let (pool, stop, written) = (pool.clone(), stop.clone(), written.clone());
                std::thread::spawn(move || {
                    let mut conn = pool.get().expect("conn");
                    while !stop.load(Ordering::Relaxed) {
                        conn.write(|c| {
                            diesel::sql_query(
                                "INSERT INTO pages (k, v) VALUES (randomblob(32), randomblob(600))",
                            )
                            .execute(c)
                        })
                        .expect("write");
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // The WAL's length in frames, as a checkpoint reports it, until it is seen to start over.
        let mut probe =
            crate::db::connect_one(&DatabaseUrl::Sqlite(dir.path().join("w.db"))).expect("probe");
        let DbConn::Sqlite(probe) = &mut probe else {
            unreachable!("a SQLite URL")
        };
        let (mut longest, mut restarted) = (0, false);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !restarted && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let done = crate::db::checkpoint(probe, "PASSIVE").expect("checkpoint");
            if done.log < 0 {
                continue; // another checkpoint was at work: no answer
            }
            let log = done.log;
            restarted = longest >= RESTART_AFTER_FRAMES && log < longest / 2;
            longest = longest.max(log);
        }
        stop.store(true, Ordering::Relaxed);
        writers.into_iter().for_each(|w| w.join().expect("writer"));
        stop.store(true, Ordering::Relaxed);
        readers.into_iter().for_each(|r| r.join().expect("reader"));
        let written = written.load(Ordering::Relaxed);
        assert!(
            restarted,
            "the WAL never started over: {longest} frames after {written} writes"
        );
        let mut conn = pool.get().expect("conn");
        let n = diesel::sql_query("SELECT count(*) AS n FROM pages")
            .get_result::<Count>(&mut **conn)
            .expect("count")
            .n;
        assert_eq!(n, written, "every write is there");
    }
}
