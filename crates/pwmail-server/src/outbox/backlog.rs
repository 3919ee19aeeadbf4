//! The outbox backlog, counted in the background so requests never pay for
//! a count: the API refuses new emails above `--max-backlog`, and the
//! counts feed the `pwmail_outbox_messages` gauge.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pwmail_store::Store;

/// How often the sent messages are counted too: nothing purges them, so
/// their count grows with the table (the other states are counted through
/// partial indexes, as large as the backlog).
pub const SENT_COUNT_EVERY: Duration = Duration::from_secs(60);

/// Messages waiting to be sent, as last counted.
#[derive(Clone, Default)]
pub struct Backlog(Arc<AtomicU64>);

impl Backlog {
    pub fn waiting(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts the outbox every `every`, until the task is aborted; the
    /// sent messages only every [`SENT_COUNT_EVERY`] (their gauge keeps its
    /// last value between).
    pub async fn watch(self, store: Arc<dyn Store>, every: Duration) {
        let full_every = (SENT_COUNT_EVERY.as_millis() / every.as_millis().max(1)).max(1);
        let mut tick = 0u128;
        loop {
            let counted = if tick.is_multiple_of(full_every) {
                store.outbox_depth().await
            } else {
                store.outbox_unsent_depth().await
            };
            tick += 1;
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
