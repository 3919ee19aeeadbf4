//! What every request handler shares.

use std::sync::Arc;

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
}
