//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pwmail_store::Store;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::mail::Renderer;

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: ServerConfig,
    pub renderer: Renderer,
    /// Wakes the in-process dispatcher when a message is queued.
    pub outbox_wakeup: Arc<Notify>,
    /// Messages waiting to be sent, as last counted (see `watch_backlog`).
    pub backlog: AtomicU64,
    /// Templates of the reset page.
    pub pages: minijinja::Environment<'static>,
    pub policy: crate::password::Policy,
    pub hasher: crate::password::Hasher,
}

impl AppState {
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }
}

/// Counts the outbox backlog every `every`, for backpressure and metrics,
/// so requests never pay for a count.
pub async fn watch_backlog(state: Arc<AppState>, every: std::time::Duration) {
    loop {
        match state.store.outbox_depth().await {
            Ok(depth) => {
                let waiting: u64 = depth
                    .iter()
                    .filter(|(s, _)| s.is_waiting())
                    .map(|(_, n)| n)
                    .sum();
                state.backlog.store(waiting, Ordering::Relaxed);
                crate::metrics::outbox_depth(&depth);
            }
            Err(e) => tracing::warn!(error = %e, "counting the outbox failed"),
        }
        tokio::time::sleep(every).await;
    }
}
