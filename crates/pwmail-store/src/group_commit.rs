//! Group commit for SQLite.
//!
//! A durable SQLite commit costs an fsync, and SQLite admits one writer at a
//! time, so committing each call on its own caps the service at one fsync
//! per call. Here one writer task takes every write waiting in its queue,
//! runs each in its own savepoint inside one `BEGIN IMMEDIATE` transaction,
//! and commits once: one fsync for the batch. A write that fails rolls back
//! its own savepoint only. A write of one statement needs no savepoint
//! (SQLite undoes a failed statement by itself, leaving the transaction
//! open), which saves two round trips to SQLite's thread per write. No caller hears back before the commit that makes
//! its write durable; if that commit fails, every write of the batch fails
//! with it (none of them took effect).

use futures::future::BoxFuture;
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError};

/// Largest batch one commit covers; bounds the time the write lock is held.
const MAX_BATCH: usize = 256;
/// Writes waiting for the writer before callers wait to enqueue.
const QUEUE: usize = 4096;

/// A write's own savepoint: commit it to keep the write, drop it to undo.
pub type Savepoint<'c> = Transaction<'c, Sqlite>;

/// What the writer reports to a caller once its batch's commit is known.
type Report = Box<dyn FnOnce(Option<&StoreError>) + Send>;

trait Job: Send {
    /// Runs the write on the batch's connection (inside its transaction);
    /// returns how to report its result.
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Report>;
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
    F: for<'c> FnOnce(Savepoint<'c>) -> BoxFuture<'c, Result<T>> + Send + 'static,
{
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Report> {
        let InSavepoint { work, reply } = *self;
        Box::pin(async move {
            let result = match conn.begin().await {
                Ok(savepoint) => work(savepoint).await,
                Err(e) => Err(e.into()),
            };
            report(reply, result)
        })
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

impl<T, F> Job for Statement<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
{
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Report> {
        let Statement { work, reply } = *self;
        Box::pin(async move { report(reply, work(conn).await) })
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

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer task on the current runtime.
    pub fn start(pool: SqlitePool) -> Writer {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, jobs));
        Writer { queue }
    }

    /// Runs `work` in the next batch; returns its result once the batch is
    /// committed. `work` commits its savepoint to keep what it wrote.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Savepoint<'c>) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit(Box::new(InSavepoint { work, reply })).await?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// As [`Writer::write`] for work of ONE statement (plus reads): no
    /// savepoint, as SQLite undoes a failed statement by itself. Work that
    /// could fail after writing something must use [`Writer::write`].
    pub async fn write_statement<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit(Box::new(Statement { work, reply })).await?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    async fn submit(&self, job: Box<dyn Job>) -> Result<()> {
        self.queue
            .send(job)
            .await
            .map_err(|_| StoreError::WriterStopped)
    }
}

async fn run(pool: SqlitePool, mut jobs: mpsc::Receiver<Box<dyn Job>>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    loop {
        if jobs.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return; // every Writer handle is gone
        }
        commit_batch(&pool, std::mem::take(&mut batch)).await;
    }
}

async fn commit_batch(pool: &SqlitePool, batch: Vec<Box<dyn Job>>) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => return fail_all(batch, e.into()),
    };
    let mut outer = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => return fail_all(batch, e.into()),
    };
    let mut reports = Vec::with_capacity(batch.len());
    for job in batch {
        reports.push(job.run(&mut outer).await);
    }
    let commit = outer.commit().await.err().map(StoreError::from);
    if let Some(e) = &commit {
        tracing::warn!(error = %e, writes = reports.len(), "batch commit failed");
    }
    for report in reports {
        report(commit.as_ref());
    }
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
