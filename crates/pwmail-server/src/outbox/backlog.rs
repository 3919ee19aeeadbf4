//! The outbox backlog, counted in the background so requests never pay for
//! a count: the API refuses new emails above `--max-backlog`, and the
//! counts feed the `pwmail_outbox_messages` gauge.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pwmail_store::Store;

/// Messages waiting to be sent, as last counted.
#[derive(Clone, Default)]
pub struct Backlog(Arc<AtomicU64>);

impl Backlog {
    pub fn waiting(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts the outbox every `every`, until the task is aborted.
    pub async fn watch(self, store: Arc<dyn Store>, every: Duration) {
        loop {
            match store.outbox_depth().await {
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
