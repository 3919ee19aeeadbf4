//! Retention: rows that have aged out are deleted (`--retain-days`,
//! `--audit-retain-days`), a small window at a time; what is due is the
//! store's rule (`sql::purge`).

use std::time::Duration;

use pwmail_store::{Aging, Store, UnixMillis};

use crate::app::AppError;
use crate::config::Retention;

/// Rows one window looks at, and so deletes at most: one short write each.
pub const WINDOW: u32 = 100;
/// The pause between windows, so API calls' writes go in between: about
/// 1,000 rows a second, ten times what a day of calls at the default
/// `--token-rate` ages (each call ages an email, a link and an audit row).
/// Faster costs the API: at 5,000 rows a second (500 every 100 ms), the
/// SQLite API rate fell 5–12 % while a purge ran (`cargo xtask bench`,
/// scenario e).
pub const PAUSE: Duration = Duration::from_millis(100);

/// Rows per aging table: deleted by a purge, or due (`--dry-run`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    counts: [u64; 3],
}

impl Purged {
    fn slot(table: Aging) -> usize {
        match table {
            Aging::Emails => 0,
            Aging::Links => 1,
            Aging::Audit => 2,
        }
    }

    pub fn get(&self, table: Aging) -> u64 {
        self.counts[Self::slot(table)]
    }

    fn add(&mut self, table: Aging, n: u64) {
        self.counts[Self::slot(table)] += n;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// What a purge did: the rows it deleted, and whether another process
/// (another replica on PostgreSQL) was purging, so this one stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeRun {
    pub deleted: Purged,
    pub yielded: bool,
}

/// Deletes every row due at `now`: first the Idempotency-Keys expired at
/// `now` (the emails they held become due), then table by table, each
/// walked in id order a window at a time with `pause` between windows,
/// until the table's end or its rows too young to be due. `deleted` hears
/// of each window's rows as they go (a long purge is seen while it runs).
pub async fn purge(
    store: &dyn Store,
    retention: &Retention,
    now: UnixMillis,
    pause: Duration,
    deleted: &(dyn Fn(Aging, u64) + Send + Sync),
) -> Result<PurgeRun, AppError> {
    let mut run = PurgeRun::default();
    let keys = store.purge_idempotency_keys(now).await?;
    if keys > 0 {
        tracing::debug!(purged = keys, "expired idempotency keys forgotten");
    }
    for table in Aging::ALL {
        let cutoff = retention.cutoff(table, now);
        let mut after = 0;
        loop {
            let Some(window) = store
                .purge_window(table, after, WINDOW, cutoff, now)
                .await?
            else {
                run.yielded = true;
                return Ok(run);
            };
            run.deleted.add(table, window.deleted);
            deleted(table, window.deleted);
            let Some(last) = window.last_id else { break };
            after = last;
            let young = window.newest.is_none_or(|t| t >= cutoff);
            if window.scanned < u64::from(WINDOW) || young {
                break;
            }
            tokio::time::sleep(pause).await;
        }
    }
    Ok(run)
}

/// How many rows a purge at `now` would delete.
pub async fn due(
    store: &dyn Store,
    retention: &Retention,
    now: UnixMillis,
) -> Result<Purged, AppError> {
    let mut due = Purged::default();
    for table in Aging::ALL {
        let cutoff = retention.cutoff(table, now);
        due.add(table, store.count_due(table, cutoff, now).await?);
    }
    Ok(due)
}
