//! The outbox backlog, counted in the background so requests never pay for
//! a count: the API refuses new emails above `--max-backlog`, and the
//! counts feed the `pwmail_outbox_messages` gauge.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pwmail_store::Store;
use tokio::time::Instant;

/// The count of every row (for the sent gauge) waits this many times as
/// long as it last took: nothing purges sent rows, so it grows with the
/// table, and this keeps it under 1 % of the time whatever the size. On a
/// small outbox it runs every tick; 2,000,000 rows took SQLite 8-19 ms, so
/// every second or two. The unsent states are counted every tick through
/// their partial indexes, as large as the backlog.
const FULL_COUNT_SPACING: u32 = 100;
/// However long a count took, the sent gauge is at most this stale.
const FULL_COUNT_MAX_SPACING: Duration = Duration::from_secs(300);

/// How long the count of every row waits after one that took `took`. A
/// failed count (a database that did not answer, perhaps for its whole
/// timeout) runs again at the next tick instead of being spaced by the
/// time it spent failing.
fn full_count_spacing(took: Duration, succeeded: bool) -> Duration {
    if succeeded {
        (took * FULL_COUNT_SPACING).min(FULL_COUNT_MAX_SPACING)
    } else {
        Duration::ZERO
    }
}

/// Messages waiting to be sent, as last counted.
#[derive(Clone, Default)]
pub struct Backlog(Arc<AtomicU64>);

impl crate::app::Waiting for Backlog {
    fn waiting(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Backlog {
    /// Counts the outbox every `every`, until the task is aborted; the
    /// sent messages as often as [`FULL_COUNT_SPACING`] allows (their gauge
    /// keeps its last value between). A count that gets no answer within
    /// `limit` fails, so a silent connection cannot freeze the counts.
    pub async fn watch(self, store: Arc<dyn Store>, every: Duration, limit: Duration) {
        let mut full_after = Instant::now();
        loop {
            let started = Instant::now();
            let counted = if started >= full_after {
                let counted = super::bounded(limit, store.outbox_depth()).await;
                full_after =
                    Instant::now() + full_count_spacing(started.elapsed(), counted.is_ok());
                counted
            } else {
                super::bounded(limit, store.outbox_unsent_depth()).await
            };
            match counted {
                Ok(depth) => {
                    let waiting: u64 = depth
                        .iter()
                        .filter(|(s, _)| s.is_waiting())
                        .map(|(_, n)| n)
                        .sum();
                    self.0.store(waiting, Ordering::Relaxed);
                    crate::observe::metrics::outbox_depth(&depth);
                }
                Err(e) => tracing::warn!(error = %e, "counting the outbox failed"),
            }
            tokio::time::sleep(every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_count_is_spaced_by_its_cost_capped_and_retried_after_a_failure() {
        let ms = Duration::from_millis;
        assert_eq!(full_count_spacing(ms(1), true), ms(100));
        assert_eq!(full_count_spacing(ms(15), true), ms(1_500));
        assert_eq!(full_count_spacing(ms(10_000), true), FULL_COUNT_MAX_SPACING);
        assert_eq!(full_count_spacing(ms(30_000), false), Duration::ZERO);
    }
}
