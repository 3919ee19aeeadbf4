//! Where events go (`--events-url`), signed with which secret, and which
//! kinds.

use std::time::Duration;

use pwmail_store::EventKind;

use super::hook::HookConfig;

#[derive(Clone, Debug)]
pub struct EventsConfig {
    /// The receiver and its signing key.
    pub hook: HookConfig,
    /// The kinds written and sent; the others are never written.
    pub kinds: Vec<EventKind>,
    /// Attempts before an event is given up (`failed`).
    pub max_attempts: u32,
    /// How long a delivery may take before another worker may take it over.
    pub lease: Duration,
}

impl EventsConfig {
    /// With the backoff's ceiling of ten minutes, about eight hours of
    /// trying.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 60;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The longest wait between two attempts.
    pub const LONGEST_BACKOFF: Duration = Duration::from_secs(600);
}
