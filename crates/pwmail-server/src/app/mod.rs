//! The product's rules: issuing a link, opening and completing a reset,
//! delivery status, user and token administration, the bootstrap admin.
//!
//! Callers are adapters (the HTTP API, the reset page, the CLI). This layer
//! knows nothing of them: no web framework, no argument parser, no HTTP status. Its errors
//! ([`AppError`], [`ResetError`]) say what was refused and why; each adapter
//! maps them in one place.

pub mod audit;
pub mod auth;
pub mod error;
pub mod events;
pub mod issue;
pub mod reset;
pub mod retention;
pub mod status;
pub mod users;
pub mod validate;

use std::sync::Arc;

use pwmail_store::{NewMessage, RateKind, SpaceWatch, Store, UnixMillis};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::secrets::password::{Hasher, Policy};

pub use error::{AppError, ResetError};

/// What the rules need from the mail layer, which implements it
/// (`mail::Mailer`): `app` names no adapter, it is handed what it needs.
pub trait Mailer: Send + Sync {
    /// A fresh Message-ID (without angle brackets) for a new email; every
    /// delivery attempt reuses it.
    fn message_id(&self) -> String;
    /// The "your password was changed" notice to `email`, ready to queue.
    fn password_changed(
        &self,
        email: &str,
        name: Option<&str>,
        changed_at: UnixMillis,
        lang: pwmail_i18n::Lang,
    ) -> Result<NewMessage, AppError>;
}

/// How many messages wait to be sent, as last counted (the outbox's
/// `Backlog` counts them in the background).
pub trait Waiting: Send + Sync {
    fn waiting(&self) -> u64;
}

/// What the running service's rules need: its store, clock, settings,
/// the mail layer, the outbox's backlog and wake-up, and the password hasher.
/// Its fields are the app's own: adapters call its methods, never the store.
pub struct App {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: ServerConfig,
    mailer: Arc<dyn Mailer>,
    /// Wakes the in-process dispatcher when a message is queued.
    outbox_wakeup: Arc<Notify>,
    backlog: Arc<dyn Waiting>,
    policy: Policy,
    hasher: Hasher,
    /// Admins recently authenticated (`config.auth_cache_ttl`).
    auth_cache: auth::AuthCache,
    /// Whether the database had room for the last write (readiness);
    /// shared with the dispatcher.
    space: Arc<SpaceWatch>,
}

/// What [`App::new`] is built from (`lib.rs` wires the real ones; tests
/// their own).
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: ServerConfig,
    pub mailer: Arc<dyn Mailer>,
    pub outbox_wakeup: Arc<Notify>,
    pub backlog: Arc<dyn Waiting>,
    pub hasher: Hasher,
    pub space: Arc<SpaceWatch>,
}

/// Whether the service can take calls (`/readyz`).
#[derive(Debug)]
pub enum Readiness {
    Ready,
    /// A write failed for lack of space, and none has succeeded since.
    NoSpace,
    /// The database does not answer.
    Unavailable(pwmail_store::StoreError),
}

impl App {
    pub fn new(parts: Parts) -> App {
        App {
            policy: Policy {
                min_length: parts.config.password_min_length,
            },
            auth_cache: auth::AuthCache::new(parts.config.auth_cache_ttl),
            store: parts.store,
            clock: parts.clock,
            config: parts.config,
            mailer: parts.mailer,
            outbox_wakeup: parts.outbox_wakeup,
            backlog: parts.backlog,
            hasher: parts.hasher,
            space: parts.space,
        }
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The password rules the reset page states.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Messages waiting to be sent, as last counted.
    pub fn backlog(&self) -> u64 {
        self.backlog.waiting()
    }

    /// Whether the database answers and, after a write failed for lack of
    /// space, has room again (probing at most every 5 s while it has not).
    pub async fn readiness(&self) -> Readiness {
        let checked = match self.store.ping().await {
            Ok(()) => self.space.writable(&*self.store, self.clock.now()).await,
            Err(e) => Err(e),
        };
        match checked {
            Ok(true) => Readiness::Ready,
            Ok(false) => Readiness::NoSpace,
            Err(e) => Readiness::Unavailable(e),
        }
    }

    /// What the metrics show of the store: SQLite's writer, and the space.
    pub fn store_state(&self) -> (Option<pwmail_store::WriterStats>, &SpaceWatch) {
        (self.store.writer_stats(), &self.space)
    }

    /// Cuts rate-limit state written under slower rates than the ones
    /// configured now (a raised `--user-rate`, say) to what they allow, so a
    /// refusal waits no longer than the rate its message quotes. Run at
    /// start; a no-op for state written under the same rates.
    pub async fn fit_rate_state(&self) -> Result<(), AppError> {
        let now = self.clock.now();
        let config = &self.config;
        for (kind, limit) in [
            (RateKind::ApiToken, config.token_rate),
            (RateKind::User, config.user_rate),
            (RateKind::ResetGuess, config.reset_guess_rate),
        ] {
            let cut = self.store.fit_rate_state(kind, &limit.gcra(), now).await?;
            if cut > 0 {
                tracing::info!(
                    limit = kind.prefix().trim_end_matches(':'),
                    keys = cut,
                    rate = %limit,
                    "rate-limit state left by a slower rate cut to the current one"
                );
            }
        }
        Ok(())
    }

    /// Forgets rate-limit state that no longer limits anything, then
    /// expired Idempotency-Keys and what has aged out (`retention`): one
    /// round of the purge task, which runs it every minute; `deleted` hears
    /// of the aged rows as each window goes. Failures are logged; the next
    /// round tries again.
    pub async fn purge_expired(&self, deleted: &(dyn Fn(pwmail_store::Aging, u64) + Send + Sync)) {
        let now = self.clock.now();
        match self.store.purge_rate_limits(now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired rate-limit state forgotten"),
            Err(e) => tracing::warn!(error = %e, "purging rate-limit state failed"),
        }
        let retention = &self.config.retention;
        match retention::purge(&*self.store, retention, now, retention::PAUSE, deleted).await {
            Ok(run) => {
                if run.deleted.total() > 0 {
                    tracing::info!(
                        emails = run.deleted.get(pwmail_store::Aging::Emails),
                        links = run.deleted.get(pwmail_store::Aging::Links),
                        audit = run.deleted.get(pwmail_store::Aging::Audit),
                        retain_days = retention.days,
                        audit_retain_days = retention.audit_days,
                        "aged rows deleted"
                    );
                }
                if run.yielded {
                    tracing::debug!(
                        "another replica is purging; this one waits for the next round"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "deleting aged rows failed"),
        }
    }
}
