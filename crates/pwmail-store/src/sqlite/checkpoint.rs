//! WAL checkpoints off the writer's path, and a WAL that stays small.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that crosses 1000
//! WAL pages: copying pages into the database file and its fsync then stall
//! the one writer, and every caller in its batch. The writer turns that
//! off (`open_writer`); this thread runs a PASSIVE checkpoint on a
//! connection of its own every interval instead. PASSIVE never waits for a
//! lock and never blocks the writer or readers; it copies what no reader
//! still needs.
//!
//! The writer starts the WAL over only once every page is in the database
//! and no reader still reads the WAL. Under steady load some reader always
//! does, so the WAL grew without end (measured: 1.2 GB after 15 s of API
//! calls), and every page lookup searched more of it. So once the WAL holds
//! more than [`RESTART_AT`] pages, the writer pauses between two batches
//! ([`Pause`]) while a RESTART checkpoint copies the rest and waits for the
//! readers; the next batch then writes the WAL from its start again (and
//! `journal_size_limit` trims the file).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use rusqlite::Connection;

use crate::{Result, StoreError};

const EVERY: Duration = Duration::from_millis(500);
/// WAL pages (4 KiB each) past which the WAL is started over.
pub const RESTART_AT: i64 = 8192;
/// Longest the checkpoint waits for the writer to pause; it restarts the WAL
/// without the pause after that (an idle writer never reaches a pause).
const PAUSE_WAIT: Duration = Duration::from_millis(100);

/// The writer's pause between two batches, asked for by the checkpoint.
#[derive(Default)]
pub struct Pause {
    wanted: AtomicBool,
    paused: Mutex<bool>,
    changed: Condvar,
}

impl Pause {
    /// The writer, between two batches: waits while a checkpoint wants the
    /// database to itself.
    pub fn between_batches(&self) {
        if !self.wanted.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut paused) = self.paused.lock() else {
            return;
        };
        *paused = true;
        self.changed.notify_all();
        while self.wanted.load(Ordering::Acquire) {
            paused = match self.changed.wait(paused) {
                Ok(paused) => paused,
                Err(_) => return,
            };
        }
        *paused = false;
    }

    /// Runs `work` while the writer waits between batches (or, when it does
    /// not pause within [`PAUSE_WAIT`], without it).
    fn with_writer_paused<T>(&self, work: impl FnOnce() -> T) -> T {
        self.wanted.store(true, Ordering::Release);
        if let Ok(paused) = self.paused.lock() {
            let _ = self
                .changed
                .wait_timeout_while(paused, PAUSE_WAIT, |paused| !*paused);
        }
        let result = work();
        if let Ok(_paused) = self.paused.lock() {
            self.wanted.store(false, Ordering::Release);
            self.changed.notify_all();
        }
        result
    }
}

/// Starts the thread; it ends once `alive` can no longer be upgraded (the
/// store was dropped). The last connection to close checkpoints anyway.
pub fn start<T: Send + Sync + 'static>(
    path: PathBuf,
    alive: Weak<T>,
    pause: Arc<Pause>,
) -> Result<()> {
    let conn = Connection::open(&path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // The checkpoint fsyncs the WAL before it copies pages and the database
    // file after, so the WAL can start over: the writer itself never syncs
    // (its sync thread does, the WAL only).
    conn.execute_batch("PRAGMA synchronous = FULL")?;
    std::thread::Builder::new()
        .name("pwmail-sqlite-checkpoint".into())
        .spawn(move || {
            while alive.upgrade().is_some() {
                std::thread::sleep(EVERY);
                match checkpoint(&conn, "PASSIVE") {
                    Ok(pages) if pages > RESTART_AT => {
                        if let Err(e) = pause.with_writer_paused(|| checkpoint(&conn, "RESTART")) {
                            tracing::warn!(error = %e, "WAL restart checkpoint failed");
                        }
                    }
                    Ok(_) => {}
                    Err(e) if e.is_out_of_space() => crate::space::warn_no_space(&e),
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
                }
            }
        })
        .map_err(|e| StoreError::Database(Box::new(e)))?;
    Ok(())
}

/// One checkpoint; returns the pages in the WAL.
fn checkpoint(conn: &Connection, mode: &str) -> Result<i64> {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    Ok(conn.query_row(&sql, [], |row| row.get::<_, i64>(1))?)
}
