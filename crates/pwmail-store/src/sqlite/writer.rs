//! SQLite's one writer: a thread of its own that owns the only writing
//! connection and commits writes in groups, and a second thread that makes
//! those commits durable.
//!
//! A durable SQLite commit costs an fsync, and SQLite admits one writer at a
//! time, so committing each call on its own caps the service at one fsync
//! per call; handing each statement to another thread and back costs more
//! than the statement. Here a call's whole write is one closure run on this
//! thread over prepared, cached statements. The thread takes every write
//! waiting in its queue, runs each in its own savepoint inside one
//! `BEGIN IMMEDIATE` transaction, and commits once. A write that fails
//! rolls back its own savepoint only; a write of one statement needs no
//! savepoint (SQLite undoes a failed statement by itself). If the commit
//! fails, every write of the batch fails with it (none of them took
//! effect). A write whose caller gave up before it ran (a request cut off
//! at its deadline) is not run.
//!
//! The fsync is not in the COMMIT: the writing connection runs with
//! `synchronous=OFF`, and the sync thread ([`Durability`]) fdatasyncs the
//! WAL after each commit, one fsync for every commit that came before it,
//! while the writer already runs the next batch. That batch stays open
//! until the fsync ends: what it holds could not be made durable sooner,
//! and the writes arriving meanwhile join it, so one commit writes each
//! page they share once (a commit writes every page it changed to the WAL;
//! the tables' and indexes' last pages are changed by every write). No caller hears back
//! before an fsync that began after its batch's COMMIT: a 200 still means
//! committed and on disk. Other connections may read a batch in the moment
//! between its COMMIT and its fsync; a later write that builds on it (a
//! claim of a message just queued) is answered only after an fsync that
//! covers both. If an fsync fails, no write is answered as done again: the
//! ones waiting fail and the writer refuses new ones until pwmail restarts
//! (after a failed fsync the kernel may have dropped the pages, and a later
//! fsync can succeed without them).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::Pause;
use crate::{Result, StoreError, WriterStats};

/// Largest batch one commit covers; bounds the time the write lock is held.
const MAX_BATCH: usize = 256;
/// Writes waiting for the writer before callers wait to enqueue.
const QUEUE: usize = 4096;

/// What the writer reports to a caller once its batch is durable (or has
/// failed).
type Report = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// Makes every commit so far durable. One call covers all the commits that
/// returned before it began.
pub trait Durability: Send + 'static {
    fn sync(&mut self) -> std::io::Result<()>;
}

/// The WAL file, fdatasync'ed: a WAL commit writes nothing else. Opened at
/// the first sync (SQLite creates the file with the first write), and again
/// if the path ever names another file.
pub struct WalFile {
    path: PathBuf,
    open: Option<(std::fs::File, u64)>,
}

impl WalFile {
    /// The WAL of the database at `db`.
    pub fn of(db: &std::path::Path) -> WalFile {
        let mut path = db.as_os_str().to_owned();
        path.push("-wal");
        WalFile {
            path: path.into(),
            open: None,
        }
    }
}

impl Durability for WalFile {
    fn sync(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt as _;
        let inode = std::fs::metadata(&self.path)?.ino();
        let file = match self.open.take() {
            Some((file, open_inode)) if open_inode == inode => file,
            _ => std::fs::File::open(&self.path)?,
        };
        let synced = file.sync_data();
        self.open = Some((file, inode));
        synced
    }
}

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
    /// its result, and whether it failed for lack of space.
    fn run(self: Box<Self>, conn: &Connection) -> (Report, bool);
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
fn report<T: Send + 'static>(
    reply: oneshot::Sender<Result<T>>,
    result: Result<T>,
) -> (Report, bool) {
    let full = matches!(&result, Err(e) if e.is_out_of_space());
    let report: Report = Box::new(move |commit_error: Option<&StoreError>| {
        let outcome = match commit_error {
            Some(e) if result.is_ok() => Err(shared(e)),
            _ => result,
        };
        let _ = reply.send(outcome);
    });
    (report, full)
}

impl<T, F> Job for InSavepoint<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Savepoint<'_>) -> Result<T> + Send + 'static,
{
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn run(self: Box<Self>, conn: &Connection) -> (Report, bool) {
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

    fn run(self: Box<Self>, conn: &Connection) -> (Report, bool) {
        let Statement { work, reply } = *self;
        report(reply, work(conn))
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// The failure of writes in a transaction SQLite rolled back by itself: a
/// full disk (the usual cause) stays one, so callers say what it is.
fn rolled_back(for_lack_of_space: bool) -> StoreError {
    let message = "the batch's transaction was rolled back";
    if for_lack_of_space {
        return StoreError::Full(message.into());
    }
    StoreError::BatchFailed {
        retryable: true,
        message: message.into(),
    }
}

/// One batch's failure, as each of its callers sees it.
fn shared(e: &StoreError) -> StoreError {
    if e.is_out_of_space() {
        return StoreError::Full(e.to_string());
    }
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
    syncs: AtomicU64,
    sync_nanos: AtomicU64,
    /// An fsync failed: no write is answered as done any more.
    failed_sync: AtomicBool,
}

/// The error of every write once an fsync has failed.
fn not_durable(cause: &str) -> StoreError {
    StoreError::BatchFailed {
        retryable: false,
        message: format!(
            "the database could not make writes durable (fsync of the WAL failed: {cause}); \
             restart pwmail once the disk is fixed"
        ),
    }
}

/// What the writer thread and the sync thread tell each other beyond the
/// commits themselves.
#[derive(Default)]
struct Handoff {
    /// Commits handed to the sync thread and not yet covered by an fsync
    /// that ended.
    unsynced: AtomicUsize,
    /// The writer thread, to wake when an fsync ends or a write arrives
    /// while it waits with a batch open.
    writer: OnceLock<std::thread::Thread>,
}

impl Handoff {
    fn wake_writer(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }
}

/// One batch's commit, waiting for its fsync.
struct Committed {
    reports: Vec<Report>,
    /// The COMMIT's own failure (then there is nothing to sync).
    failed: Option<StoreError>,
    /// Whether the batch changed any row. One that changed none (an idle
    /// dispatcher's claim that found nothing) wrote nothing to the WAL, and
    /// needs no fsync: every commit before it was synced (or is in the same
    /// group), as the sync thread takes them in order.
    changed: bool,
}

/// Handle to the writer thread; cheap to clone. The thread ends (closing
/// its connection) when the last handle is dropped.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Box<dyn Job>>,
    counters: Arc<Counters>,
    handoff: Arc<Handoff>,
    pause: Arc<Pause>,
    started: Instant,
}

impl Writer {
    /// Starts the writer thread on `conn` (from `conn::open_writer`), which
    /// it owns from now on, its sync thread on the WAL of `path`, and the
    /// checkpoints of `path` beside them.
    pub fn start(conn: Connection, path: PathBuf) -> Result<Writer> {
        let writer = Writer::start_with(conn, Box::new(WalFile::of(&path)))?;
        super::checkpoint::start(path, Arc::downgrade(&writer.counters), writer.pause.clone())?;
        Ok(writer)
    }

    /// The writer and sync threads, with `durability` making commits durable.
    pub fn start_with(conn: Connection, durability: Box<dyn Durability>) -> Result<Writer> {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let (committed, to_sync) = std::sync::mpsc::channel();
        let counters = Arc::new(Counters::default());
        let handoff = Arc::new(Handoff::default());
        let pause = Arc::new(Pause::default());
        let thread_pause = pause.clone();
        let spawn_error = |e| StoreError::Database(Box::new(e));
        let (sync_counters, sync_handoff) = (counters.clone(), handoff.clone());
        std::thread::Builder::new()
            .name("pwmail-sqlite-sync".into())
            .spawn(move || sync(to_sync, durability, &sync_counters, &sync_handoff))
            .map_err(spawn_error)?;
        let (thread_counters, thread_handoff) = (counters.clone(), handoff.clone());
        std::thread::Builder::new()
            .name("pwmail-sqlite-writer".into())
            .spawn(move || {
                run(
                    conn,
                    jobs,
                    committed,
                    &thread_counters,
                    &thread_pause,
                    &thread_handoff,
                )
            })
            .map_err(spawn_error)?;
        Ok(Writer {
            queue,
            counters,
            handoff,
            pause,
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
            syncs: self.counters.syncs.load(Ordering::Relaxed),
            syncing: Duration::from_nanos(self.counters.sync_nanos.load(Ordering::Relaxed)),
            uptime: self.started.elapsed(),
        }
    }

    async fn submit(&self, job: Box<dyn Job>) -> Result<()> {
        self.queue
            .send(job)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        // It may be waiting with a batch open (see `run_batch`).
        self.handoff.wake_writer();
        Ok(())
    }
}

fn run(
    conn: Connection,
    mut jobs: mpsc::Receiver<Box<dyn Job>>,
    to_sync: std::sync::mpsc::Sender<Committed>,
    counters: &Counters,
    pause: &Pause,
    handoff: &Handoff,
) {
    let _ = handoff.writer.set(std::thread::current());
    while let Some(first) = jobs.blocking_recv() {
        pause.between_batches();
        if first.abandoned() {
            continue;
        }
        if counters.failed_sync.load(Ordering::Acquire) {
            first.fail(not_durable("an earlier fsync failed"));
            continue;
        }
        let started = Instant::now();
        let batch = run_batch(&conn, first, &mut jobs, handoff);
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters.writes.fetch_add(batch.writes, Ordering::Relaxed);
        let busy = started.elapsed().saturating_sub(batch.waited);
        counters
            .busy_nanos
            .fetch_add(busy.as_nanos() as u64, Ordering::Relaxed);
        counters
            .commit_nanos
            .fetch_add(batch.committing.as_nanos() as u64, Ordering::Relaxed);
        if let Some(committed) = batch.committed {
            handoff.unsynced.fetch_add(1, Ordering::AcqRel);
            // The sync thread only stops after this thread does.
            let _ = to_sync.send(committed);
        }
    }
    // The last connection to close checkpoints into the database file and
    // deletes the WAL: that checkpoint must fsync.
    if let Err(e) = conn.execute_batch("PRAGMA synchronous = FULL") {
        tracing::warn!(error = %StoreError::from(e), "could not restore synchronous=FULL for the closing checkpoint");
    }
}

/// What one batch came to.
struct Batch {
    /// What waits for the fsync (nothing when the batch could not begin).
    committed: Option<Committed>,
    /// Writes run (abandoned ones are not).
    writes: u64,
    /// The COMMIT's own time.
    committing: Duration,
    /// Time spent waiting, batch open, for an fsync to end.
    waited: Duration,
}

/// Begins a transaction, runs `first` and every write that arrives before
/// the commit, each as [`Job::run`] says, and commits. It commits once no
/// write is waiting and no fsync is under way (or [`MAX_BATCH`] writes
/// were taken): while an fsync runs, committing sooner would make nobody
/// durable sooner.
fn run_batch(
    conn: &Connection,
    first: Box<dyn Job>,
    jobs: &mut mpsc::Receiver<Box<dyn Job>>,
    handoff: &Handoff,
) -> Batch {
    let mut batch = Batch {
        committed: None,
        writes: 0,
        committing: Duration::ZERO,
        waited: Duration::ZERO,
    };
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        first.fail(e);
        return batch;
    }
    let changes_before = conn.total_changes();
    let mut reports = Vec::new();
    let mut for_lack_of_space = false;
    let mut run_one = |job: Box<dyn Job>| {
        if job.abandoned() {
            return;
        }
        batch.writes += 1;
        // SQLite rolls the whole transaction back on some errors (I/O, a
        // full disk); the rest of the batch must not run outside it.
        if conn.is_autocommit() {
            job.fail(rolled_back(for_lack_of_space));
        } else {
            let (report, full) = job.run(conn);
            for_lack_of_space |= full;
            reports.push(report);
        }
    };
    run_one(first);
    let mut taken = 1;
    loop {
        while taken < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => {
                    taken += 1;
                    run_one(job);
                }
                Err(_) => break,
            }
        }
        if taken >= MAX_BATCH
            || conn.is_autocommit()
            || handoff.unsynced.load(Ordering::Acquire) == 0
        {
            break;
        }
        // Woken by the fsync's end or a new write (or for no reason:
        // everything is checked again).
        let parked = Instant::now();
        std::thread::park();
        batch.waited += parked.elapsed();
    }
    let committing = Instant::now();
    let failed = if conn.is_autocommit() {
        Some(rolled_back(for_lack_of_space))
    } else {
        control(conn, "COMMIT").err()
    };
    if failed.is_some() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    match &failed {
        // Each caller hears it; the log says it once a minute.
        Some(e) if e.is_out_of_space() => crate::space::warn_no_space(e),
        Some(e) => tracing::warn!(error = %e, writes = reports.len(), "batch commit failed"),
        None => {}
    }
    batch.committing = committing.elapsed();
    let changed = conn.total_changes() != changes_before;
    batch.committed = Some(Committed {
        reports,
        failed,
        changed,
    });
    batch
}

/// The sync thread: one fsync for every commit waiting, then their answers.
fn sync(
    to_sync: std::sync::mpsc::Receiver<Committed>,
    mut durability: Box<dyn Durability>,
    counters: &Counters,
    handoff: &Handoff,
) {
    let _stopped = SyncStopped { counters, handoff };
    while let Ok(first) = to_sync.recv() {
        let mut group = vec![first];
        group.extend(to_sync.try_iter());
        let commits = group.len();
        let any_committed = group.iter().any(|c| c.failed.is_none() && c.changed);
        let failure = if counters.failed_sync.load(Ordering::Acquire) {
            Some(not_durable("an earlier fsync failed"))
        } else if any_committed {
            let started = Instant::now();
            let synced = durability.sync();
            counters.syncs.fetch_add(1, Ordering::Relaxed);
            counters
                .sync_nanos
                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            synced.err().map(|e| {
                counters.failed_sync.store(true, Ordering::Release);
                tracing::error!(
                    error = %e,
                    "fsync of the SQLite WAL failed: the last writes may not survive a crash of \
                     the machine; pwmail answers no write as done until it is restarted"
                );
                not_durable(&e.to_string())
            })
        } else {
            None
        };
        // The writer may be holding its next batch open for this.
        handoff.unsynced.fetch_sub(commits, Ordering::AcqRel);
        handoff.wake_writer();
        for Committed {
            reports, failed, ..
        } in group
        {
            let error = failed.or_else(|| failure.as_ref().map(shared));
            for report in reports {
                report(error.as_ref());
            }
        }
    }
}

/// Whatever ends the sync thread (the writer stopping, or a panic), no
/// write is made durable after it: later writes are refused, and a batch
/// the writer holds open for an fsync is let go rather than held forever.
struct SyncStopped<'a> {
    counters: &'a Counters,
    handoff: &'a Handoff,
}

impl Drop for SyncStopped<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(
                "the SQLite fsync thread stopped: pwmail answers no write as done until it is \
                 restarted"
            );
        }
        self.counters.failed_sync.store(true, Ordering::Release);
        self.handoff.unsynced.store(0, Ordering::Release);
        self.handoff.wake_writer();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;

    use tokio::task::JoinHandle;

    use super::*;

    /// An fsync the test decides: each `sync` waits for the next result.
    struct Gate(std_mpsc::Receiver<std::io::Result<()>>);

    impl Durability for Gate {
        fn sync(&mut self) -> std::io::Result<()> {
            self.0
                .recv()
                .unwrap_or_else(|_| Err(std::io::Error::other("gate closed")))
        }
    }

    fn rows(path: &std::path::Path) -> i64 {
        let reader = Connection::open(path).unwrap();
        reader
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap()
    }

    /// A writer on a fresh table `t`, whose fsyncs the sender decides.
    fn gated_writer() -> (
        tempfile::TempDir,
        std_mpsc::Sender<std::io::Result<()>>,
        Writer,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        Connection::open(&path).unwrap();
        let conn = super::super::conn::open_writer(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let (gate, sync) = std_mpsc::channel();
        let writer = Writer::start_with(conn, Box::new(Gate(sync))).unwrap();
        (dir, gate, writer)
    }

    async fn insert(writer: &Writer, x: i64) -> Result<usize> {
        writer
            .write_statement(move |c| Ok(c.execute("INSERT INTO t (x) VALUES (?1)", [x])?))
            .await
    }

    /// Waits (up to 10 s) until another connection reads `count` rows.
    async fn committed(path: &std::path::Path, count: i64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while rows(path) < count {
            assert!(Instant::now() < deadline, "never committed: {count} rows");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Writes 1, and waits until it is committed; its fsync is the gate's.
    async fn first_write(writer: &Writer, path: &std::path::Path) -> JoinHandle<Result<usize>> {
        let first = tokio::spawn({
            let writer = writer.clone();
            async move { insert(&writer, 1).await }
        });
        committed(path, 1).await;
        first
    }

    /// An idle server's writes that change nothing (a claim that finds no
    /// message) cost no fsync; a write that changes a row does.
    #[tokio::test]
    async fn a_batch_that_changed_nothing_is_not_synced() {
        let (_dir, gate, writer) = gated_writer();
        for _ in 0..5 {
            // Were it synced, it would wait on the gate, which stays shut.
            let found = tokio::time::timeout(
                Duration::from_secs(5),
                writer.write(|c| Ok(c.execute("UPDATE t SET x = x + 1 WHERE x < 0", [])?)),
            )
            .await
            .expect("answered without an fsync")
            .unwrap();
            assert_eq!(found, 0);
        }
        assert_eq!(writer.stats().syncs, 0, "nothing written, nothing synced");
        gate.send(Ok(())).unwrap();
        assert_eq!(insert(&writer, 1).await.unwrap(), 1);
        assert_eq!(writer.stats().syncs, 1);
    }

    #[tokio::test]
    async fn nobody_is_answered_before_the_fsync_and_a_failed_fsync_stops_the_writes() {
        let (dir, gate, writer) = gated_writer();
        let path = dir.path().join("w.db");

        // Committed (another connection reads it) but not answered until
        // the fsync returns.
        let first = first_write(&writer, &path).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!first.is_finished(), "answered before its fsync");
        gate.send(Ok(())).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert_eq!(writer.stats().syncs, 1);

        // A failed fsync fails the write it covers, and every later one.
        gate.send(Err(std::io::Error::other("EIO"))).unwrap();
        let failed = insert(&writer, 2).await.unwrap_err();
        assert!(!failed.is_retryable());
        assert!(
            failed.to_string().contains("fsync of the WAL failed: EIO"),
            "{failed}"
        );
        let refused = insert(&writer, 3).await.unwrap_err();
        assert!(refused.to_string().contains("fsync"), "{refused}");
        assert_eq!(rows(&path), 2, "the third write never ran");
    }

    /// An fsync that panics: the sync thread ends.
    struct Panics;

    impl Durability for Panics {
        fn sync(&mut self) -> std::io::Result<()> {
            panic!("fsync thread test panic");
        }
    }

    #[tokio::test]
    async fn writes_after_the_sync_thread_stopped_are_refused_not_left_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        Connection::open(&path).unwrap();
        let conn = super::super::conn::open_writer(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let writer = Writer::start_with(conn, Box::new(Panics)).unwrap();
        let within = Duration::from_secs(10);
        assert!(
            insert(&writer, 1).await.is_err(),
            "answered without an fsync"
        );
        // Its commit was counted as waiting for an fsync that never ends:
        // the next batch must not wait for it.
        let second = tokio::time::timeout(within, insert(&writer, 2))
            .await
            .expect("a write after the sync thread stopped was never answered");
        assert!(second.is_err(), "answered without an fsync");
        let third = tokio::time::timeout(within, insert(&writer, 3))
            .await
            .expect("never answered")
            .unwrap_err();
        assert!(third.to_string().contains("fsync"), "{third}");
    }

    #[tokio::test]
    async fn writes_that_arrive_during_an_fsync_share_one_commit_after_it() {
        let (dir, gate, writer) = gated_writer();
        let path = dir.path().join("w.db");
        // The first batch commits at once; its fsync is held.
        let first = first_write(&writer, &path).await;
        let later: Vec<_> = (2..=5)
            .map(|x| {
                let writer = writer.clone();
                tokio::spawn(async move { insert(&writer, x).await })
            })
            .collect();
        // They run, but their batch stays open while the fsync is held.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(rows(&path), 1, "committed while an fsync was under way");
        assert!(later.iter().all(|write| !write.is_finished()));

        gate.send(Ok(())).unwrap();
        first.await.unwrap().unwrap();
        committed(&path, 5).await;
        assert!(
            later.iter().all(|write| !write.is_finished()),
            "answered before its fsync"
        );
        gate.send(Ok(())).unwrap();
        for write in later {
            write.await.unwrap().unwrap();
        }
        let stats = writer.stats();
        assert_eq!(stats.writes, 5);
        assert_eq!(stats.batches, 2, "four writes during one fsync, one commit");
        assert_eq!(stats.syncs, 2);
    }

    #[test]
    fn the_wal_file_is_synced_and_opened_again_when_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let mut wal = WalFile::of(&db);
        assert!(wal.sync().is_err(), "no WAL yet");
        std::fs::write(dir.path().join("w.db-wal"), b"one").unwrap();
        wal.sync().unwrap();
        let first = wal.open.as_ref().unwrap().1;
        std::fs::remove_file(dir.path().join("w.db-wal")).unwrap();
        std::fs::write(dir.path().join("w.db-wal"), b"two").unwrap();
        wal.sync().unwrap();
        assert_ne!(wal.open.as_ref().unwrap().1, first);
    }
}

#[cfg(test)]
mod wal_tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// Under steady writes and point reads that never pause (as API calls
    /// read tokens and users), the WAL still starts over, again and again.
    /// Counted by the checkpoint sequence in the WAL file's header, which
    /// SQLite raises each time the log starts from its beginning; not by the
    /// file's size, which depends on how much the writers manage between
    /// two checkpoint ticks on a loaded machine. Without the RESTART the
    /// sequence never moves and this fails at the cap.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_steady_reads_and_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        Connection::open(&path).unwrap();
        let conn = super::super::conn::open_writer(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x BLOB); INSERT INTO t (x) VALUES (x'00')")
            .unwrap();
        let writer = Writer::start(conn, path.clone()).unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let reader = std::thread::spawn({
            let (path, stop) = (path.clone(), stop.clone());
            move || {
                let reader = Connection::open(&path).unwrap();
                let mut read = reader
                    .prepare("SELECT length(x) FROM t WHERE rowid = 1")
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let _: i64 = read.query_row([], |row| row.get(0)).unwrap();
                }
            }
        });
        let wal_limit = super::super::checkpoint::RESTART_AT as u64 * 4096;
        // Bytes 12..16 of the WAL header: the checkpoint sequence number.
        let sequence = || {
            use std::io::Read as _;
            let mut header = [0u8; 16];
            std::fs::File::open(dir.path().join("w.db-wal"))
                .and_then(|mut f| f.read_exact(&mut header))
                .map_or(0, |()| {
                    u32::from_be_bytes([header[12], header[13], header[14], header[15]])
                })
        };
        let first = sequence();
        let mut written = 0u64;
        while sequence().wrapping_sub(first) < 3 {
            assert!(
                written < 16 * wal_limit,
                "the WAL did not start over three times while {written} bytes were written \
                 (restart at {wal_limit})"
            );
            // Sixteen writers at once, so they share commits.
            let rounds: Vec<_> = (0..16)
                .map(|_| {
                    let writer = writer.clone();
                    tokio::spawn(async move {
                        for _ in 0..16 {
                            writer
                                .write_statement(|c| {
                                    Ok(c.execute("INSERT INTO t (x) VALUES (zeroblob(4000))", [])?)
                                })
                                .await
                                .unwrap();
                        }
                    })
                })
                .collect();
            for round in rounds {
                round.await.unwrap();
            }
            written += 256 * 4096;
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
    }
}
