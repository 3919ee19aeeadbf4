//! SQLite's one writer: a thread of its own that owns the only writing
//! connection and commits writes in groups.
//!
//! A durable SQLite commit costs an fsync, and SQLite admits one writer at a
//! time, so committing each call on its own caps the service at one fsync
//! per call; handing each statement to another thread and back costs more
//! than the statement. Here a call's whole write is one closure run on this
//! thread over prepared, cached statements. The thread takes every write
//! waiting in its queue, runs each in its own savepoint inside one
//! `BEGIN IMMEDIATE` transaction, and commits once: one fsync for the
//! batch. A write that fails rolls back its own savepoint only; a write of
//! one statement needs no savepoint (SQLite undoes a failed statement by
//! itself). No caller hears back before the commit that makes its write
//! durable; if that commit fails, every write of the batch fails with it
//! (none of them took effect). A write whose caller gave up before it ran
//! (a request cut off at its deadline) is not run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError, WriterStats};

/// Largest batch one commit covers; bounds the time the write lock is held.
const MAX_BATCH: usize = 256;
/// Writes waiting for the writer before callers wait to enqueue.
const QUEUE: usize = 4096;

/// What the writer reports to a caller once its batch's commit is known.
type Report = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// Runs one transaction-control statement, prepared once: parsing
/// `SAVEPOINT`/`RELEASE` anew for every write cost more than some writes.
fn control(conn: &Connection, sql: &'static str) -> Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// A write's own savepoint inside the batch. What the write changes is
/// kept unless it returns an error or calls [`Savepoint::undo`].
pub struct Savepoint<'c> {
    conn: &'c Connection,
}

impl Savepoint<'_> {
    /// Undoes everything this write changed so far (for work that writes,
    /// then decides to keep nothing but still answers `Ok`).
    pub fn undo(&self) -> Result<()> {
        control(self.conn, "ROLLBACK TO write")
    }
}

impl std::ops::Deref for Savepoint<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

trait Job: Send {
    /// The caller stopped waiting for the answer.
    fn abandoned(&self) -> bool;
    /// Runs the write inside the batch's transaction; returns how to report
    /// its result.
    fn run(self: Box<Self>, conn: &Connection) -> Report;
    /// The write could not run at all.
    fn fail(self: Box<Self>, error: StoreError);
}

/// A write of several statements, in a savepoint of its own.
struct InSavepoint<T, F> {
    work: F,
    reply: oneshot::Sender<Result<T>>,
}

/// A write of one statement, straight in the batch's transaction.
struct Statement<T, F> {
    work: F,
    reply: oneshot::Sender<Result<T>>,
}

/// Reports `result` once the batch's commit is known.
fn report<T: Send + 'static>(reply: oneshot::Sender<Result<T>>, result: Result<T>) -> Report {
    Box::new(move |commit_error: Option<&StoreError>| {
        let outcome = match commit_error {
            Some(e) if result.is_ok() => Err(shared(e)),
            _ => result,
        };
        let _ = reply.send(outcome);
    })
}

impl<T, F> Job for InSavepoint<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Savepoint<'_>) -> Result<T> + Send + 'static,
{
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn run(self: Box<Self>, conn: &Connection) -> Report {
        let InSavepoint { work, reply } = *self;
        let result = control(conn, "SAVEPOINT write").and_then(|()| {
            let result = work(&Savepoint { conn });
            let undone = match &result {
                Err(_) => control(conn, "ROLLBACK TO write"),
                Ok(_) => Ok(()),
            };
            let released = control(conn, "RELEASE write");
            let value = result?;
            undone?;
            released?;
            Ok(value)
        });
        report(reply, result)
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

impl<T, F> Job for Statement<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn run(self: Box<Self>, conn: &Connection) -> Report {
        let Statement { work, reply } = *self;
        report(reply, work(conn))
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// One batch's failure, as each of its callers sees it.
fn shared(e: &StoreError) -> StoreError {
    StoreError::BatchFailed {
        retryable: e.is_retryable(),
        message: e.to_string(),
    }
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    writes: AtomicU64,
    busy_nanos: AtomicU64,
    commit_nanos: AtomicU64,
}

/// Handle to the writer thread; cheap to clone. The thread ends (closing
/// its connection) when the last handle is dropped.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Box<dyn Job>>,
    counters: Arc<Counters>,
    started: Instant,
}

impl Writer {
    /// Starts the writer thread on `conn`, which it owns from now on, and
    /// the checkpoints of `path` beside it.
    pub fn start(conn: Connection, path: std::path::PathBuf) -> Result<Writer> {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        std::thread::Builder::new()
            .name("pwmail-sqlite-writer".into())
            .spawn(move || run(conn, jobs, &thread_counters))
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        super::checkpoint::start(path, Arc::downgrade(&counters))?;
        Ok(Writer {
            queue,
            counters,
            started: Instant::now(),
        })
    }

    /// Runs `work` in the next batch, in a savepoint of its own; returns its
    /// result once the batch is committed. An `Err` rolls the savepoint
    /// back; so does [`Savepoint::undo`].
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Savepoint<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit(Box::new(InSavepoint { work, reply })).await?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// As [`Writer::write`] for work of ONE writing statement (plus reads):
    /// no savepoint, as SQLite undoes a failed statement by itself. Work
    /// that could fail after writing something must use [`Writer::write`].
    pub async fn write_statement<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit(Box::new(Statement { work, reply })).await?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    pub fn stats(&self) -> WriterStats {
        WriterStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
            busy: Duration::from_nanos(self.counters.busy_nanos.load(Ordering::Relaxed)),
            committing: Duration::from_nanos(self.counters.commit_nanos.load(Ordering::Relaxed)),
            uptime: self.started.elapsed(),
        }
    }

    async fn submit(&self, job: Box<dyn Job>) -> Result<()> {
        self.queue
            .send(job)
            .await
            .map_err(|_| StoreError::WriterStopped)
    }
}

fn run(conn: Connection, mut jobs: mpsc::Receiver<Box<dyn Job>>, counters: &Counters) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while let Some(job) = jobs.blocking_recv() {
        batch.push(job);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        batch.retain(|job| !job.abandoned());
        if batch.is_empty() {
            continue;
        }
        let started = Instant::now();
        let writes = batch.len() as u64;
        let committing = commit_batch(&conn, batch.drain(..));
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters.writes.fetch_add(writes, Ordering::Relaxed);
        counters
            .busy_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        counters
            .commit_nanos
            .fetch_add(committing.as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Runs and commits one batch; returns the time the commit took.
fn commit_batch(conn: &Connection, batch: std::vec::Drain<'_, Box<dyn Job>>) -> Duration {
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        fail_all(batch.collect(), e);
        return Duration::ZERO;
    }
    let mut reports = Vec::with_capacity(batch.len());
    let mut batch = batch;
    for job in batch.by_ref() {
        // SQLite rolls the whole transaction back on some errors (I/O, a
        // full disk); the rest of the batch must not run outside it.
        if conn.is_autocommit() {
            job.fail(StoreError::BatchFailed {
                retryable: true,
                message: "the batch's transaction was rolled back".into(),
            });
            continue;
        }
        reports.push(job.run(conn));
    }
    let committing = Instant::now();
    let commit = if conn.is_autocommit() {
        Some(StoreError::BatchFailed {
            retryable: true,
            message: "the batch's transaction was rolled back".into(),
        })
    } else {
        control(conn, "COMMIT").err()
    };
    if commit.is_some() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    if let Some(e) = &commit {
        tracing::warn!(error = %e, writes = reports.len(), "batch commit failed");
    }
    let committing = committing.elapsed();
    for report in reports {
        report(commit.as_ref());
    }
    committing
}

/// A lone write gets the error itself; a group gets a copy each.
fn fail_all(mut batch: Vec<Box<dyn Job>>, error: StoreError) {
    if batch.len() == 1 {
        if let Some(job) = batch.pop() {
            job.fail(error);
        }
        return;
    }
    for job in batch {
        job.fail(shared(&error));
    }
}
