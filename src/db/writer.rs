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
use std::sync::mpsc;

use diesel::connection::{AnsiTransactionManager, SimpleConnection as _, TransactionManager as _};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::DbConn;

/// The most writes one transaction carries.
pub const MAX_BATCH: usize = 64;

/// How often, at most, the writer restarts the WAL (below).
pub const RESTART_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Writes waiting beyond this many block their callers (each caller is a blocking-pool thread
/// with a request behind it, so the queue is bounded by them anyway).
const QUEUE: usize = 1024;

/// What the writer thread runs: the caller's write in a savepoint, returning how to answer the
/// caller once the transaction has ended (`None`: committed; `Some(reason)`: it failed).
type Job = Box<dyn FnOnce(&mut DbConn) -> Finish + Send>;
type Finish = Box<dyn FnOnce(Option<&str>) + Send>;

/// The handle callers send their writes through. The thread ends when the last handle is dropped.
#[derive(Debug)]
pub struct Writer {
    jobs: mpsc::SyncSender<Job>,
}

impl Writer {
    /// Starts the writer thread on its own connection, opened by `open` (with the pool's pragmas).
    pub fn start(
        open: impl Fn() -> Result<DbConn, diesel::ConnectionError> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&queue, &open))?;
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
        let job: Job = Box::new(move |conn| {
            // A savepoint: this write rolls back alone.
            let result = conn.transaction(f);
            Box::new(move |failed: Option<&str>| {
                let result = match (failed, result) {
                    (Some(reason), Ok(_)) => Err(failure(reason).into()),
                    (_, result) => result,
                };
                let _ = answer.send(result);
            })
        });
        if self.jobs.send(job).is_err() {
            return Err(failure("the SQLite writer has stopped").into());
        }
        answered
            .recv()
            .unwrap_or_else(|_| Err(failure("the SQLite writer failed").into()))
    }
}

fn failure(reason: &str) -> diesel::result::Error {
    diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::Unknown,
        Box::new(reason.to_owned()),
    )
}

fn run(queue: &mpsc::Receiver<Job>, open: &dyn Fn() -> Result<DbConn, diesel::ConnectionError>) {
    let mut conn: Option<DbConn> = None;
    let mut restarted = std::time::Instant::now();
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
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "the SQLite writer cannot connect");
                    // Dropping the batch answers every caller with an error.
                    continue;
                }
            }
        }
        let Some(DbConn::Sqlite(c)) = conn.as_mut() else {
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
        let Some(DbConn::Sqlite(c)) = conn.as_mut() else {
            continue;
        };
        match AnsiTransactionManager::commit_transaction(c) {
            Ok(()) => {
                finishes.into_iter().for_each(|f| f(None));
                if restarted.elapsed() >= RESTART_EVERY {
                    restarted = std::time::Instant::now();
                    restart_wal(c);
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

/// Starts the WAL over. Checkpoints (the background checkpointer's `PASSIVE` ones) copy the WAL
/// back into the database, but the WAL only starts over from its first frame when a writer finds
/// it fully copied and no reader inside it, which a busy node's readers rarely allow: the file then
/// grows without end (hundreds of megabytes in a minute of rotations), and every read searches an
/// ever longer WAL index. `RESTART` copies what is left, waits (`busy_timeout`) for the readers
/// still inside the WAL to finish, which takes a millisecond or two, and makes the next write start
/// it over (`journal_size_limit` then cuts the file back). Between batches, so no caller waits on it
/// but the writes queued meanwhile.
fn restart_wal(conn: &mut SqliteConnection) {
    if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(RESTART);") {
        tracing::debug!(error = %e, "the WAL could not be restarted; next time");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use diesel::connection::SimpleConnection as _;
    use diesel::sql_types::BigInt;

    use super::*;
    use crate::config::DatabaseUrl;

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
}
