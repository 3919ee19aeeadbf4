//! The dispatcher: drains the durable outbox into a mail transport.
//!
//! The API only ever writes outbox rows; this task (inside `pwmail serve`, or
//! alone) leases due rows, sends them, and settles each as sent, retrying
//! (transient failure, exponential backoff with jitter) or dead (permanent
//! failure, too many attempts, too old). A lease that runs out, because the
//! process died mid-send, makes the row due again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use pwmail_store::{Claim, OutboxMessage, Settlement, Store, StoreError};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::DispatcherConfig;
use crate::mail::Renderer;
use crate::mail::transport::{Failure, SendError, Transport};

pub mod backlog;
pub mod retry;

pub use backlog::Backlog;

pub struct Dispatcher {
    pub store: Arc<dyn Store>,
    pub transport: Arc<dyn Transport>,
    /// Writes link emails, which are queued unrendered.
    pub renderer: Arc<Renderer>,
    pub clock: Arc<dyn Clock>,
    /// Signalled when the API queues a message, so it goes out at once.
    pub wakeup: Arc<Notify>,
    pub config: DispatcherConfig,
}

impl Dispatcher {
    /// Runs until `shutdown` turns true; in-flight sends and their settles
    /// finish first, and so do messages already claimed for sending.
    ///
    /// A pipeline: up to `concurrency` messages are being sent, each by its
    /// own task; a sent message frees its slot at once and is settled by a
    /// task of its own (settles share the store's commits, and a slot never
    /// waits for one). Claims run beside the sends and keep up to
    /// `concurrency` more messages leased and waiting, so a freed slot starts
    /// its next send at once instead of after a claim's round trip: under
    /// load a claim waits for the writer's batch (SQLite) or a pooled
    /// connection (PostgreSQL), and sending stalled on it (the API accepted
    /// ten times what was delivered). At most `SETTLING_PER_SLOT` times the
    /// slots wait to be settled; beyond that, sending waits for them.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let slots = this.config.concurrency.max(1) as usize;
        // Claim once a quarter of the slots' worth is missing: batches, not
        // single rows.
        let refill_at = (slots / 4).max(1);
        let mut inflight: JoinSet<Sent> = JoinSet::new();
        let mut settling: JoinSet<()> = JoinSet::new();
        let mut ready: VecDeque<Leased> = VecDeque::new();
        let mut claiming: Option<JoinHandle<Claimed>> = None;
        // The last claim found fewer than it asked for: claim again once
        // something changes (new work, a freed slot, the idle poll).
        let mut queue_empty = false;
        // After a failed claim: no claim before this.
        let mut claim_after: Option<Instant> = None;
        let mut store_failures = 0u32;
        loop {
            while let Some(joined) = settling.try_join_next() {
                report(Some(joined));
            }
            while settling.len() >= slots * SETTLING_PER_SLOT {
                report(settling.join_next().await);
            }
            if *shutdown.borrow() {
                break;
            }
            this.start_ready(&mut inflight, &mut ready, slots);
            let room = 2 * slots - inflight.len() - ready.len();
            if claiming.is_none() && !queue_empty && claim_after.is_none() && room >= refill_at {
                claiming = Some(this.claim(room));
            }
            if inflight.is_empty() && claiming.is_none() {
                // Nothing being sent or claimed: wait for work.
                match claim_after.take() {
                    Some(at) => tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = shutdown.changed() => {}
                    },
                    None => {
                        let wait = this.idle_wait().await;
                        tokio::select! {
                            _ = this.wakeup.notified() => {}
                            _ = tokio::time::sleep(wait) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                }
                queue_empty = false;
                continue;
            }
            tokio::select! {
                joined = inflight.join_next(), if !inflight.is_empty() => {
                    this.settle_later(&mut settling, joined);
                    queue_empty = false;
                }
                claimed = async { claiming.as_mut().expect("guarded").await }, if claiming.is_some() => {
                    claiming = None;
                    match claimed {
                        Ok(Claimed { asked, result: Ok(claimed) }) => {
                            store_failures = 0;
                            queue_empty = claimed.len() < asked;
                            ready.extend(claimed);
                        }
                        Ok(Claimed { result: Err(e), .. }) => {
                            store_failures = store_failures.saturating_add(1);
                            // 0.5 s, 1 s, 2 s, then every 4 s until the database answers.
                            let pause = Duration::from_millis(250 << store_failures.min(4));
                            tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "outbox claim failed");
                            claim_after = Some(Instant::now() + pause);
                        }
                        Err(e) => report::<()>(Some(Err(e))),
                    }
                }
                _ = this.wakeup.notified(), if queue_empty => queue_empty = false,
                _ = tokio::time::sleep_until(claim_after.unwrap_or_else(Instant::now)), if claim_after.is_some() => {
                    claim_after = None;
                }
                _ = shutdown.changed() => {}
            }
        }
        // A claim that was asked for commits whether or not anyone waits:
        // its messages are leased to this worker, so they are sent now
        // rather than left until their lease runs out.
        if let Some(handle) = claiming
            && let Ok(Claimed {
                result: Ok(claimed),
                ..
            }) = handle.await
        {
            ready.extend(claimed);
        }
        loop {
            this.start_ready(&mut inflight, &mut ready, slots);
            match inflight.join_next().await {
                Some(joined) => this.settle_later(&mut settling, Some(joined)),
                None => break,
            }
        }
        while let Some(joined) = settling.join_next().await {
            report(Some(joined));
        }
    }

    /// Leases up to `limit` due messages, on a task of its own.
    fn claim(self: &Arc<Self>, limit: usize) -> JoinHandle<Claimed> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let claim = Claim {
                owner: uuid::Uuid::new_v4().to_string(),
                now: this.clock.now(),
                lease_ms: this.config.lease.as_millis() as i64,
                limit: limit as u32,
            };
            let result = this
                .bounded(this.store.claim_outbox(&claim))
                .await
                .map(|claimed| {
                    let owner: Arc<str> = claim.owner.into();
                    let lease_until = claim.now + claim.lease_ms;
                    claimed
                        .into_iter()
                        .map(|message| Leased {
                            owner: Arc::clone(&owner),
                            lease_until,
                            message,
                        })
                        .collect()
                });
            Claimed {
                asked: limit,
                result,
            }
        })
    }

    /// Starts sends from `ready` while slots are free. A message whose lease
    /// would run out before its send could time out is left to the lease:
    /// once it ends the message is due again, whereas sending it now could
    /// race whoever claims it next and email the user twice.
    fn start_ready(
        self: &Arc<Self>,
        inflight: &mut JoinSet<Sent>,
        ready: &mut VecDeque<Leased>,
        slots: usize,
    ) {
        let timeout_ms = self.config.send_timeout.as_millis() as i64;
        while inflight.len() < slots {
            let Some(Leased {
                owner,
                lease_until,
                message,
            }) = ready.pop_front()
            else {
                break;
            };
            if self.clock.now() + timeout_ms >= lease_until {
                tracing::warn!(
                    outbox_id = message.id,
                    "claimed message waited too long for a free slot; it is sent when its lease ends"
                );
                continue;
            }
            let this = Arc::clone(self);
            inflight.spawn(async move {
                let (result, took) = this.send(&message).await;
                Sent {
                    owner,
                    message,
                    result,
                    took,
                }
            });
        }
    }

    /// Settles a sent message on a task of its own.
    fn settle_later(
        self: &Arc<Self>,
        settling: &mut JoinSet<()>,
        joined: Option<Result<Sent, tokio::task::JoinError>>,
    ) {
        match joined {
            Some(Ok(sent)) => {
                let this = Arc::clone(self);
                settling.spawn(async move {
                    let Sent {
                        owner,
                        message,
                        result,
                        took,
                    } = sent;
                    this.settle(&owner, message, result, took).await;
                });
            }
            Some(Err(e)) => report::<()>(Some(Err(e))),
            None => {}
        }
    }

    /// One attempt, bounded by the send timeout. A message that cannot be
    /// written (its template fails for it) cannot be sent: a permanent
    /// failure.
    async fn send(&self, message: &OutboxMessage) -> (Result<String, SendError>, Duration) {
        let started = std::time::Instant::now();
        let limit = self.config.send_timeout;
        let result = match self.renderer.letter(message) {
            Ok(letter) => match tokio::time::timeout(limit, self.transport.send(&letter)).await {
                Ok(result) => result,
                Err(_) => Err(SendError {
                    failure: Failure::Transient,
                    message: format!("no answer within {} s", limit.as_secs()),
                }),
            },
            Err(e) => Err(SendError::permanent(e.to_string())),
        };
        (result, started.elapsed())
    }

    /// A store call bounded by the store timeout (see [`bounded`]).
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = pwmail_store::Result<T>>,
    ) -> pwmail_store::Result<T> {
        bounded(self.config.store_timeout, call).await
    }

    /// Until the next retry is due, bounded by the poll interval.
    async fn idle_wait(&self) -> Duration {
        let poll = self.config.poll_interval;
        match self.bounded(self.store.next_outbox_due()).await {
            Ok(Some(due)) => {
                let ms = (due - self.clock.now()).clamp(0, poll.as_millis() as i64);
                Duration::from_millis(ms as u64)
            }
            _ => poll,
        }
    }

    async fn settle(
        &self,
        owner: &str,
        message: OutboxMessage,
        result: Result<String, SendError>,
        took: Duration,
    ) {
        let now = self.clock.now();
        let outcome = retry::decide(&self.config, &message, result, now);
        crate::observe::metrics::send_attempt(
            match outcome {
                Settlement::Sent { .. } => "sent",
                Settlement::Retry { .. } => "retry",
                Settlement::Dead { .. } => "dead",
            },
            took,
        );
        let id = message.id;
        let request_id = message.request_id.as_deref().unwrap_or("-");
        match &outcome {
            Settlement::Sent { reply, .. } => tracing::info!(
                outbox_id = id, request_id, attempts = message.attempts,
                latency_ms = took.as_millis() as u64, reply = %reply, "email sent"
            ),
            Settlement::Retry {
                error,
                next_attempt_at,
                ..
            } => tracing::warn!(
                outbox_id = id, request_id, attempts = message.attempts, error = %error,
                retry_in_ms = next_attempt_at - now, "email send failed; will retry"
            ),
            Settlement::Dead { error, .. } => tracing::error!(
                outbox_id = id, request_id, attempts = message.attempts, error = %error,
                "email given up (dead letter)"
            ),
        }
        self.record(id, owner, &outcome).await;
    }

    /// Stores a settlement; see [`settle_with_retries`].
    async fn record(&self, id: i64, owner: &str, outcome: &Settlement) {
        let (settled, retried) = settle_with_retries(self.config.lease / 2, || {
            self.bounded(self.store.settle_outbox(id, owner, outcome))
        })
        .await;
        match settled {
            Ok(true) => {}
            // An attempt that failed (no answer in time, a dropped
            // connection) may have committed: the row would then no longer
            // be ours to settle because it is already settled.
            Ok(false) if retried && self.shows(id, outcome).await => tracing::info!(
                outbox_id = id,
                "send result recorded by an earlier attempt that had reported a failure"
            ),
            Ok(false) => tracing::warn!(
                outbox_id = id,
                "lease lost before settling; another worker owns the row"
            ),
            // The lease will run out and the row will be sent again: a
            // possible duplicate, never a lost email.
            Err(e) => tracing::error!(
                outbox_id = id, error = %e,
                "could not record the send result; it will be sent again when its lease ends"
            ),
        }
    }
}

impl Dispatcher {
    /// Whether the row is in the state `outcome` leaves it in.
    async fn shows(&self, id: i64, outcome: &Settlement) -> bool {
        matches!(
            self.bounded(self.store.outbox_message(id)).await,
            Ok(Some(row)) if row.state == outcome.state()
        )
    }
}

fn report<T>(joined: Option<Result<T, tokio::task::JoinError>>) {
    if let Some(Err(e)) = joined {
        tracing::error!(error = %e, "send or settle task failed; its lease will expire");
    }
}

/// Runs `settle` until it succeeds, fails for good, or `within` has
/// passed: a sent message left unsettled (a connection the database
/// dropped, a moment's outage) would be sent again once its lease runs out.
/// Also says whether an attempt failed before the last one.
async fn settle_with_retries<F, Fut>(
    within: Duration,
    mut settle: F,
) -> (pwmail_store::Result<bool>, bool)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = pwmail_store::Result<bool>>,
{
    let give_up = tokio::time::Instant::now() + within;
    let mut wait = SETTLE_RETRY_FIRST;
    let mut retried = false;
    loop {
        match settle().await {
            Err(e) if e.is_retryable() && tokio::time::Instant::now() + wait < give_up => {
                tracing::warn!(
                    error = %e, retry_in_ms = wait.as_millis() as u64,
                    "could not record a send result; trying again"
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(SETTLE_RETRY_MAX);
                retried = true;
            }
            settled => return (settled, retried),
        }
    }
}

/// A background store call bounded by `limit`; one that gives up counts
/// as the database being unavailable (retried like any outage). Its
/// connection is closed, not reused; what a claim that gave up had leased
/// waits for its lease to end.
pub(crate) async fn bounded<T>(
    limit: Duration,
    call: impl std::future::Future<Output = pwmail_store::Result<T>>,
) -> pwmail_store::Result<T> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable(Box::new(NoAnswer(limit)))))
}

/// A store call that did not answer within the store timeout.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {} ms", .0.as_millis())]
struct NoAnswer(Duration);

/// The first and the longest wait between attempts to record a send.
const SETTLE_RETRY_FIRST: Duration = Duration::from_millis(50);
const SETTLE_RETRY_MAX: Duration = Duration::from_secs(2);

/// Sends waiting to be settled, per slot, before sending waits for them.
const SETTLING_PER_SLOT: usize = 4;

/// A message leased to this worker, waiting for a free slot.
struct Leased {
    owner: Arc<str>,
    lease_until: pwmail_store::UnixMillis,
    message: OutboxMessage,
}

/// What one claim asked for and got.
struct Claimed {
    asked: usize,
    result: pwmail_store::Result<Vec<Leased>>,
}

/// One attempt's result, on its way to being settled.
struct Sent {
    owner: Arc<str>,
    message: OutboxMessage,
    result: Result<String, SendError>,
    took: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pwmail_store::StoreError;
    use std::cell::Cell;

    fn unavailable() -> StoreError {
        StoreError::Unavailable("connection reset".into())
    }

    #[tokio::test(start_paused = true)]
    async fn a_settle_that_fails_for_a_moment_is_tried_again_until_it_lands() {
        let calls = Cell::new(0);
        let started = tokio::time::Instant::now();
        let settled = settle_with_retries(Duration::from_secs(60), || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move { if n <= 3 { Err(unavailable()) } else { Ok(true) } }
        })
        .await;
        assert!(matches!(settled, (Ok(true), true)), "{settled:?}");
        assert_eq!(calls.get(), 4);
        // 50 + 100 + 200 ms of waiting, on tokio's paused clock.
        assert_eq!(started.elapsed(), Duration::from_millis(350));
    }

    #[tokio::test(start_paused = true)]
    async fn a_settle_gives_up_within_its_time_and_never_retries_a_lasting_error() {
        let calls = Cell::new(0);
        let settled = settle_with_retries(Duration::from_secs(5), || {
            calls.set(calls.get() + 1);
            async { Err(unavailable()) }
        })
        .await;
        assert!(matches!(settled, (Err(StoreError::Unavailable(_)), true)));
        // 50, 100, 200, 400, 800, 1600 ms: the next 2 s wait would pass 5 s.
        assert_eq!(calls.get(), 7);

        calls.set(0);
        let settled = settle_with_retries(Duration::from_secs(5), || {
            calls.set(calls.get() + 1);
            async { Err(StoreError::Corrupt("bad row".into())) }
        })
        .await;
        assert!(matches!(settled, (Err(StoreError::Corrupt(_)), false)));
        assert_eq!(calls.get(), 1, "an error that will not pass is not retried");

        let settled = settle_with_retries(Duration::from_secs(5), || async { Ok(false) }).await;
        assert!(
            matches!(settled, (Ok(false), false)),
            "a first answer is not taken for a retry's"
        );
    }
}
