//! WAL checkpoints off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that crosses 1000
//! WAL pages: copying pages into the database file and its fsync then stall
//! the one writer, and every caller in its batch. The writer turns that
//! off (`open_writer`); this thread runs a PASSIVE checkpoint on a
//! connection of its own every interval instead. PASSIVE never waits for a
//! lock and never blocks the writer or readers; it copies what no reader
//! still needs, and the writer starts the WAL over once all of it is in
//! the database.

use std::path::PathBuf;
use std::sync::Weak;
use std::time::Duration;

use rusqlite::Connection;

use crate::{Result, StoreError};

const EVERY: Duration = Duration::from_millis(500);

/// Starts the thread; it ends once `alive` can no longer be upgraded (the
/// store was dropped). The last connection to close checkpoints anyway.
pub fn start<T: Send + Sync + 'static>(path: PathBuf, alive: Weak<T>) -> Result<()> {
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
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %StoreError::from(e), "WAL checkpoint failed");
                }
            }
        })
        .map_err(|e| StoreError::Database(Box::new(e)))?;
    Ok(())
}
