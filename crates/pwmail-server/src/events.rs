//! Events to the operator's receiver (`--events-url`): what the database's
//! triggers queued (migration 0021), POSTed one by one, signed as Standard
//! Webhooks has it, and retried with backoff until the receiver answers
//! 2xx; then forgotten. Every attempt of an event carries its id
//! (`webhook-id`), so a receiver drops a repeat. With several replicas,
//! each event is leased to one of them (`Events::claim_events`).
//!
//! A payload never holds a link or its token: the rows hold none.

use std::sync::Arc;
use std::time::Duration;

use pwmail_store::{Claim, Event, EventKind, EventSettlement, Store, UnixMillis};
use serde::Serialize;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::EventsConfig;
use crate::hook_post::{HookPoster, Refusal, rfc3339, unix_now};
use crate::outbox::retry::backoff;

/// Events delivered at once.
const CONCURRENCY: usize = 8;
/// How often an idle deliverer looks for due events (a read).
const POLL: Duration = Duration::from_millis(250);
/// How often the events waiting are counted (`pwmail_events`).
const DEPTH_EVERY: Duration = Duration::from_secs(5);
/// The first retry's wait; doubled each time up to the ceiling.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

pub struct Deliverer {
    pub store: Arc<dyn Store>,
    pub poster: HookPoster,
    pub clock: Arc<dyn Clock>,
    pub config: EventsConfig,
}

impl Deliverer {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: EventsConfig,
    ) -> anyhow::Result<Self> {
        Ok(Deliverer {
            poster: HookPoster::new(&config.hook, "the events receiver")?,
            store,
            clock,
            config,
        })
    }

    /// Delivers until `shutdown` turns true; an attempt under way finishes.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let owner = format!("events-{}", uuid::Uuid::now_v7());
        let mut counted = std::time::Instant::now() - DEPTH_EVERY;
        loop {
            if *shutdown.borrow() {
                return;
            }
            if counted.elapsed() >= DEPTH_EVERY {
                counted = std::time::Instant::now();
                if let Ok(depth) = self.store.event_depth().await {
                    crate::observe::metrics::event_depth(&depth);
                }
            }
            let now = self.clock.now();
            let due = match self.store.next_event_due().await {
                Ok(due) => due.is_some_and(|at| at <= now),
                Err(e) => {
                    tracing::warn!(error = %e, "events: reading what is due failed");
                    false
                }
            };
            let delivered = if due {
                self.round(&owner, now).await
            } else {
                0
            };
            if delivered == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// One claim's worth, delivered and settled; how many were claimed.
    async fn round(&self, owner: &str, now: UnixMillis) -> usize {
        let claim = Claim {
            owner: owner.to_string(),
            now,
            lease_ms: self.config.lease.as_millis() as i64,
            limit: 64,
        };
        let events = match self.store.claim_events(&claim).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "events: claiming failed");
                return 0;
            }
        };
        let claimed = events.len();
        use futures::StreamExt as _;
        futures::stream::iter(events)
            .for_each_concurrent(CONCURRENCY, |event| self.deliver(owner, event))
            .await;
        claimed
    }

    async fn deliver(&self, owner: &str, event: Event) {
        let started = std::time::Instant::now();
        let result = match self
            .poster
            .signed(&event.event_id, unix_now(), &Payload::of(&event))
        {
            Ok(post) => self.poster.post(post, &str::to_string).await,
            Err(e) => Err(Refusal {
                message: e,
                retryable: false,
                retry_after: None,
            }),
        };
        let outcome = decide(&self.config, &event, result, self.clock.now());
        let label = match &outcome {
            EventSettlement::Delivered => "delivered",
            EventSettlement::Retry { .. } => "retry",
            EventSettlement::Failed { .. } => "failed",
        };
        crate::observe::metrics::event_attempt(label, started.elapsed());
        match &outcome {
            EventSettlement::Delivered => {}
            EventSettlement::Retry { error, .. } => tracing::info!(
                event_id = %event.event_id, kind = %event.kind, attempts = event.attempts,
                error = %error, "event not delivered; will retry"
            ),
            EventSettlement::Failed { error } => tracing::warn!(
                event_id = %event.event_id, kind = %event.kind, attempts = event.attempts,
                error = %error, "event given up (pwmail events retry sends it again)"
            ),
        }
        // A settle that fails leaves the lease to run out: the event is
        // delivered again (at least once), never lost.
        match self.store.settle_event(event.id, owner, &outcome).await {
            Ok(true) => {}
            Ok(false) => tracing::info!(
                event_id = %event.event_id,
                "event's lease was taken over before it was settled"
            ),
            Err(e) => tracing::warn!(
                event_id = %event.event_id, error = %e,
                "recording an event's delivery failed; it will be delivered again"
            ),
        }
    }
}

/// What one attempt means: delivered; retried with backoff (at least what
/// `Retry-After` asked), whatever the receiver answered — it may be fixed
/// meanwhile; failed once the attempts are spent.
pub fn decide(
    config: &EventsConfig,
    event: &Event,
    result: Result<String, Refusal>,
    now: UnixMillis,
) -> EventSettlement {
    let refusal = match result {
        Ok(_) => return EventSettlement::Delivered,
        Err(refusal) => refusal,
    };
    let attempts = u32::try_from(event.attempts).unwrap_or(u32::MAX);
    if attempts >= config.max_attempts {
        return EventSettlement::Failed {
            error: format!(
                "gave up after {attempts} attempts; last: {}",
                refusal.message
            ),
        };
    }
    let asked = refusal
        .retry_after
        .map_or(0, |wait| wait.as_millis() as i64);
    EventSettlement::Retry {
        error: refusal.message,
        next_attempt_at: now
            + backoff(FIRST_BACKOFF, EventsConfig::LONGEST_BACKOFF, attempts).max(asked),
    }
}

/// What a receiver gets: `type`, `timestamp` (when it happened) and `data`.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    r#type: &'static str,
    timestamp: String,
    data: Data<'a>,
}

#[derive(Debug, Serialize)]
struct Data<'a> {
    /// The same as `webhook-id`: receivers dedupe on it.
    id: &'a str,
    /// Milliseconds since the epoch, as `timestamp` is only to the second.
    at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<Email<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct User<'a> {
    id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct Link {
    id: i64,
    /// This link's events are numbered 1, 2, 3… as they happened;
    /// deliveries may arrive in another order.
    sequence: i64,
}

#[derive(Debug, Serialize)]
struct Email<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
}

impl<'a> Payload<'a> {
    pub fn of(event: &'a Event) -> Self {
        let is_email = matches!(
            event.kind,
            EventKind::EmailQueued
                | EventKind::EmailSent
                | EventKind::EmailRetrying
                | EventKind::EmailDead
        );
        Payload {
            r#type: event.kind.as_str(),
            timestamp: rfc3339(event.at),
            data: Data {
                id: &event.event_id,
                at_ms: event.at,
                request_id: event.request_id.as_deref().filter(|r| !r.is_empty()),
                user: event.user_id.map(|id| User {
                    id: id.0,
                    email: event.email.as_deref(),
                }),
                link: event.link_id.map(|id| Link {
                    id,
                    sequence: event.seq.unwrap_or(0),
                }),
                email: is_email.then_some(Email {
                    message_id: event.message_id.as_deref(),
                    kind: event.message_kind.as_deref(),
                    to: event.email.as_deref(),
                }),
                reason: event.detail.as_deref(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pwmail_store::{EventState, UserId};

    fn event(attempts: i64) -> Event {
        Event {
            id: 1,
            event_id: "evt_1".into(),
            kind: EventKind::EmailDead,
            at: 1_700_000_000_123,
            user_id: Some(UserId(7)),
            email: Some("a@example.com".into()),
            link_id: Some(3),
            seq: Some(2),
            outbox_id: Some(9),
            message_id: Some("m@x".into()),
            message_kind: Some("send_password_email".into()),
            request_id: Some("req".into()),
            detail: Some("permanent failure: 550".into()),
            state: EventState::Delivering,
            attempts,
            next_attempt_at: 0,
            last_error: None,
        }
    }

    fn config() -> EventsConfig {
        EventsConfig {
            hook: crate::config::hook::HookConfig::new(
                crate::config::hook::EVENTS,
                "http://127.0.0.1:1/",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "f",
            )
            .unwrap(),
            kinds: EventKind::ALL.to_vec(),
            max_attempts: 3,
            lease: Duration::from_secs(30),
        }
    }

    fn refused(retry_after: Option<u64>) -> Result<String, Refusal> {
        Err(Refusal {
            message: "HTTP 503".into(),
            retryable: true,
            retry_after: retry_after.map(Duration::from_secs),
        })
    }

    #[test]
    fn retried_with_backoff_at_least_retry_after_then_failed() {
        let now = 1_000_000;
        let wait = |s: EventSettlement| match s {
            EventSettlement::Retry {
                next_attempt_at, ..
            } => next_attempt_at - now,
            other => panic!("{other:?}"),
        };
        let first = wait(decide(&config(), &event(1), refused(None), now));
        assert!((1000..=1250).contains(&first), "{first}");
        let second = wait(decide(&config(), &event(2), refused(None), now));
        assert!((2000..=2500).contains(&second), "{second}");
        let asked = wait(decide(&config(), &event(1), refused(Some(30)), now));
        assert_eq!(asked, 30_000);
        assert!(matches!(
            decide(&config(), &event(3), refused(None), now),
            EventSettlement::Failed { error } if error.contains("3 attempts") && error.contains("HTTP 503")
        ));
        assert_eq!(
            decide(&config(), &event(3), Ok("202".into()), now),
            EventSettlement::Delivered
        );
    }

    #[test]
    fn the_payload_names_the_event_user_link_and_email() {
        let e = event(1);
        let json = serde_json::to_value(Payload::of(&e)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "email.dead",
                "timestamp": "2023-11-14T22:13:20Z",
                "data": {
                    "id": "evt_1",
                    "at_ms": 1_700_000_000_123i64,
                    "request_id": "req",
                    "user": {"id": 7, "email": "a@example.com"},
                    "link": {"id": 3, "sequence": 2},
                    "email": {"message_id": "m@x", "kind": "send_password_email", "to": "a@example.com"},
                    "reason": "permanent failure: 550"
                }
            })
        );
    }
}
