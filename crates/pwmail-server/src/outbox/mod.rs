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

use pwmail_store::{Claim, OutboxMessage, Settlement, SpaceWatch, Store, StoreError, UnixMillis};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::clock::Clock;
use crate::config::DispatcherConfig;
use crate::mail::Renderer;
use crate::mail::transport::{SendError, Transport};

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
    /// Whether the database had room for the last write (readiness).
    pub space: Arc<SpaceWatch>,
    /// Sent messages whose result is still being recorded.
    pub unrecorded: Unrecorded,
}

/// Sent messages whose result could not be recorded yet, each with the
/// owner of the lease it is held under now. The result is kept and tried
/// again while the lease is extended; a claim that returns one of them
/// anyway (its lease ran out meanwhile) does not send it again, and its
/// new lease is the one the result is recorded under.
#[derive(Debug, Default)]
pub struct Unrecorded(std::sync::Mutex<std::collections::HashMap<i64, Arc<str>>>);

impl Unrecorded {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, Arc<str>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hold(&self, id: i64, owner: &Arc<str>) {
        let mut map = self.map();
        map.entry(id).or_insert_with(|| Arc::clone(owner));
        crate::observe::metrics::unrecorded_results(map.len());
    }

    /// The lease `id`'s result is recorded under, if it is held here.
    fn owner(&self, id: i64) -> Option<Arc<str>> {
        self.map().get(&id).cloned()
    }

    /// A claim leased `id` to `owner`: true if it was sent already (its
    /// result is held here, and is now recorded under `owner`'s lease).
    fn adopt(&self, id: i64, owner: &Arc<str>) -> bool {
        match self.map().get_mut(&id) {
            Some(held) => {
                *held = Arc::clone(owner);
                true
            }
            None => false,
        }
    }

    fn release(&self, id: i64) {
        let mut map = self.map();
        if map.remove(&id).is_some() {
            crate::observe::metrics::unrecorded_results(map.len());
        }
    }

    /// How many results wait to be recorded.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
                    this.settle_later(&mut settling, joined, &shutdown);
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
                Some(joined) => this.settle_later(&mut settling, Some(joined), &shutdown),
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
                .space
                .noted(
                    this.bounded(this.store.claim_outbox(&claim)).await,
                    |claimed| !claimed.is_empty(),
                )
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
            if self.unrecorded.adopt(message.id, &owner) {
                tracing::info!(
                    outbox_id = message.id,
                    "claimed message was sent already and its result is still being recorded; \
                     it is not sent again"
                );
                continue;
            }
            if self.clock.now() + timeout_ms >= lease_until {
                tracing::warn!(
                    outbox_id = message.id,
                    "claimed message waited too long for a free slot; it is sent when its lease ends"
                );
                continue;
            }
            let this = Arc::clone(self);
            inflight.spawn(async move {
                let (result, took, span) = this.send(&message).await;
                Sent {
                    owner,
                    lease_until,
                    message,
                    result,
                    took,
                    span,
                }
            });
        }
    }

    /// Settles a sent message on a task of its own.
    fn settle_later(
        self: &Arc<Self>,
        settling: &mut JoinSet<()>,
        joined: Option<Result<Sent, tokio::task::JoinError>>,
        stopping: &watch::Receiver<bool>,
    ) {
        match joined {
            Some(Ok(sent)) => {
                let this = Arc::clone(self);
                let stopping = stopping.clone();
                settling.spawn(async move {
                    let Sent {
                        owner,
                        lease_until,
                        message,
                        result,
                        took,
                        span,
                    } = sent;
                    let lease = Lease {
                        owner,
                        until: lease_until,
                    };
                    // In the attempt's span: its lines carry its trace.
                    this.settle(lease, message, result, took, stopping)
                        .instrument(span)
                        .await;
                });
            }
            Some(Err(e)) => report::<()>(Some(Err(e))),
            None => {}
        }
    }

    /// One attempt, bounded by the send timeout. A message that cannot be
    /// written (its template fails for it) cannot be sent: a permanent
    /// failure.
    ///
    /// Traced as `outbox.deliver`, linked to the call that queued it (its
    /// `traceparent`, kept in the link's options), with the transport's
    /// send as its child.
    async fn send(
        &self,
        message: &OutboxMessage,
    ) -> (Result<String, SendError>, Duration, tracing::Span) {
        let span = crate::trace_span!(
            "outbox.deliver",
            otel.kind = "consumer",
            outbox_id = message.id,
            attempts = message.attempts,
            kind = message.message.kind.as_str(),
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        if let pwmail_store::Content::Link { options, .. } = &message.message.content
            && let Some(parent) = &options.traceparent
        {
            crate::observe::traces::link_to(&span, parent);
        }
        crate::observe::traces::record_ids(&span);
        let started = std::time::Instant::now();
        let limit = self.config.send_timeout;
        let result = async {
            match self.renderer.letter(message) {
                Ok(letter) => {
                    let sending = self.transport.send(&letter).instrument(crate::trace_span!(
                        "mail.send",
                        otel.kind = "client",
                        transport = self.transport.kind(),
                    ));
                    match tokio::time::timeout(limit, sending).await {
                        Ok(result) => result,
                        Err(_) => Err(SendError::transient(format!(
                            "no answer within {} s",
                            limit.as_secs()
                        ))),
                    }
                }
                Err(e) => Err(SendError::permanent(e.to_string())),
            }
        }
        .instrument(span.clone())
        .await;
        (result, started.elapsed(), span)
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
        lease: Lease,
        message: OutboxMessage,
        result: Result<String, SendError>,
        took: Duration,
        stopping: watch::Receiver<bool>,
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
        self.record(id, lease, &outcome, stopping).await;
    }

    /// Stores a settlement; see [`keep_recording`]. While it cannot, the
    /// result is held in [`Unrecorded`], so this process never sends the
    /// message again.
    async fn record(
        &self,
        id: i64,
        lease: Lease,
        outcome: &Settlement,
        stopping: watch::Receiver<bool>,
    ) {
        let owner = |lease: &Lease| {
            self.unrecorded
                .owner(id)
                .unwrap_or_else(|| Arc::clone(&lease.owner))
        };
        let (settled, retried) = keep_recording(
            Recording {
                lease_ms: self.config.lease.as_millis() as i64,
                lease_until: lease.until,
                now: || self.clock.now(),
                stopping: || *stopping.borrow(),
            },
            || {
                let owner = owner(&lease);
                async move {
                    self.space.noted(
                        self.bounded(self.store.settle_outbox(id, &owner, outcome))
                            .await,
                        |settled| *settled,
                    )
                }
            },
            |until| {
                let owner = owner(&lease);
                async move {
                    self.space.noted(
                        self.bounded(self.store.extend_lease(id, &owner, until))
                            .await,
                        |extended| *extended,
                    )
                }
            },
            |e| {
                self.unrecorded.hold(id, &lease.owner);
                tracing::warn!(
                    outbox_id = id, error = %e, waiting = self.unrecorded.len(),
                    "could not record a send result; it is kept and tried again, \
                     and the message stays leased so it is not sent twice"
                );
            },
        )
        .await;
        self.unrecorded.release(id);
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
            // Stopping, or an error that will not pass: the lease will run
            // out and the row will be sent again. A possible duplicate,
            // never a lost email.
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

/// What [`keep_recording`] needs to know of the lease and the clock.
struct Recording<N, S> {
    lease_ms: i64,
    /// When the lease runs out, as the store judges it.
    lease_until: UnixMillis,
    /// The store's clock.
    now: N,
    /// Whether the dispatcher is stopping.
    stopping: S,
}

/// Runs `settle` until it succeeds or fails for good. A failure that may
/// pass (a full disk, a dropped connection) is tried again with backoff,
/// and whenever half the lease or less is left (checked at least every
/// quarter lease), `extend` moves its end a lease away, so no worker claims the sent message and sends it again.
/// `first_failure` hears the first such failure. Once stopping, the lease
/// is no longer extended, and `settle` is tried until the lease ends or for
/// [`STOPPING_GRACE`], whichever is first. Also says whether an attempt
/// failed before the last one.
async fn keep_recording<N, S, F, Fut, X, XFut>(
    recording: Recording<N, S>,
    mut settle: F,
    mut extend: X,
    first_failure: impl FnOnce(&StoreError),
) -> (pwmail_store::Result<bool>, bool)
where
    N: Fn() -> UnixMillis,
    S: Fn() -> bool,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = pwmail_store::Result<bool>>,
    X: FnMut(UnixMillis) -> XFut,
    XFut: std::future::Future<Output = pwmail_store::Result<bool>>,
{
    let Recording {
        lease_ms,
        mut lease_until,
        now,
        stopping,
    } = recording;
    let mut first_failure = Some(first_failure);
    let mut wait = SETTLE_RETRY_FIRST;
    let mut retried = false;
    let mut give_up: Option<UnixMillis> = None;
    loop {
        let e = match settle().await {
            Err(e) if e.is_retryable() => e,
            settled => return (settled, retried),
        };
        if let Some(tell) = first_failure.take() {
            tell(&e);
        }
        if stopping() {
            let grace = STOPPING_GRACE.as_millis() as i64;
            let end = *give_up.get_or_insert_with(|| lease_until.min(now() + grace));
            if now() + wait.as_millis() as i64 >= end {
                return (Err(e), retried);
            }
        } else {
            tracing::debug!(error = %e, retry_in_ms = wait.as_millis() as u64, "recording a send result again");
        }
        retried = true;
        // At least every quarter lease: the lease is extended once half of
        // it is left, whatever the backoff has grown to.
        tokio::time::sleep(wait.min(Duration::from_millis(lease_ms.max(4) as u64 / 4))).await;
        wait = (wait * 2).min(SETTLE_RETRY_MAX);
        let at = now();
        if !stopping() && lease_until - at <= lease_ms / 2 {
            match extend(at + lease_ms).await {
                Ok(true) => lease_until = at + lease_ms,
                // No longer ours: the next settle says so.
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    error = %e,
                    "could not extend the lease of a sent message whose result waits to be recorded"
                ),
            }
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

/// A lease held by this worker, and when it ends.
struct Lease {
    owner: Arc<str>,
    until: UnixMillis,
}

/// How long a stopping dispatcher keeps trying to record a send result
/// (at most until its lease ends).
const STOPPING_GRACE: Duration = Duration::from_secs(30);

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
    lease_until: UnixMillis,
    message: OutboxMessage,
    result: Result<String, SendError>,
    took: Duration,
    /// The attempt's span (`outbox.deliver`), which its settle continues.
    span: tracing::Span,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pwmail_store::StoreError;
    use std::cell::Cell;

    fn full() -> StoreError {
        StoreError::Full("database or disk is full".into())
    }

    /// Milliseconds on tokio's (paused) clock since `start`.
    fn clock(start: tokio::time::Instant) -> impl Fn() -> UnixMillis {
        move || start.elapsed().as_millis() as i64
    }

    #[tokio::test(start_paused = true)]
    async fn a_result_that_cannot_be_recorded_keeps_its_lease_until_it_lands() {
        for lease_ms in [1_000, 2_000, 10_000, 120_000] {
            kept_for_three_minutes(lease_ms).await;
        }
    }

    async fn kept_for_three_minutes(lease_ms: i64) {
        let now = clock(tokio::time::Instant::now());
        let lease_until = Cell::new(lease_ms);
        let (settles, extends, told) = (Cell::new(0), Cell::new(0), Cell::new(0));
        let settled = keep_recording(
            Recording {
                lease_ms,
                lease_until: lease_ms,
                now: &now,
                stopping: || false,
            },
            || {
                settles.set(settles.get() + 1);
                // Every attempt is made while the lease is still ours.
                assert!(now() < lease_until.get(), "lease ran out at {}", now());
                let landed = now() >= 180_000;
                async move { if landed { Ok(true) } else { Err(full()) } }
            },
            |until| {
                extends.set(extends.get() + 1);
                lease_until.set(until);
                async { Ok(true) }
            },
            |_| told.set(told.get() + 1),
        )
        .await;
        assert!(matches!(settled, (Ok(true), true)), "{settled:?}");
        assert_eq!(told.get(), 1, "the first failure is told once");
        // Three minutes of failures: extended at least once a lease,
        // retried every 2 s at most once the backoff is at its cap.
        assert!(
            extends.get() >= 180_000 / lease_ms - 1,
            "{} extensions",
            extends.get()
        );
        assert!(settles.get() >= 180 / 2, "{} attempts", settles.get());
        assert!(now() < 180_000 + 2_001);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopping_dispatcher_tries_until_the_lease_ends_and_extends_nothing() {
        let now = clock(tokio::time::Instant::now());
        let settles = Cell::new(0);
        let settled = keep_recording(
            Recording {
                lease_ms: 120_000,
                lease_until: 5_000,
                now: &now,
                stopping: || true,
            },
            || {
                settles.set(settles.get() + 1);
                async { Err(full()) }
            },
            |_| async { panic!("a stopping dispatcher extended a lease") },
            |_| {},
        )
        .await;
        assert!(matches!(settled, (Err(StoreError::Full(_)), true)));
        assert!(now() < 5_000, "gave up at {} ms, after its lease", now());
        // 50, 100, 200, 400, 800, 1600 ms: the next 2 s would pass 5 s.
        assert_eq!(settles.get(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_that_will_not_pass_and_a_first_answer_are_final() {
        let now = clock(tokio::time::Instant::now());
        let recording = || Recording {
            lease_ms: 120_000,
            lease_until: 120_000,
            now: &now,
            stopping: || false,
        };
        let settles = Cell::new(0);
        let settled = keep_recording(
            recording(),
            || {
                settles.set(settles.get() + 1);
                async { Err(StoreError::Corrupt("bad row".into())) }
            },
            |_| async { Ok(true) },
            |_| panic!("an error that will not pass is not kept"),
        )
        .await;
        assert!(matches!(settled, (Err(StoreError::Corrupt(_)), false)));
        assert_eq!(
            settles.get(),
            1,
            "an error that will not pass is not retried"
        );

        let settled = keep_recording(
            recording(),
            || async { Ok(false) },
            |_| async { Ok(true) },
            |_| {},
        )
        .await;
        assert!(
            matches!(settled, (Ok(false), false)),
            "a first answer is not taken for a retry's"
        );
    }

    #[test]
    fn a_held_result_is_adopted_by_a_claim_and_recorded_under_its_lease() {
        let unrecorded = Unrecorded::default();
        let (first, second): (Arc<str>, Arc<str>) = ("first".into(), "second".into());
        assert!(!unrecorded.adopt(7, &second), "nothing held: sent as usual");
        unrecorded.hold(7, &first);
        assert_eq!(unrecorded.owner(7).as_deref(), Some("first"));
        assert!(unrecorded.adopt(7, &second), "held: not sent again");
        assert_eq!(unrecorded.owner(7).as_deref(), Some("second"));
        unrecorded.hold(7, &first);
        assert_eq!(
            unrecorded.owner(7).as_deref(),
            Some("second"),
            "hold keeps the newer lease"
        );
        unrecorded.release(7);
        assert!(unrecorded.is_empty());
    }
}
