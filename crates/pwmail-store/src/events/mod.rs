//! Events: what happened to links, their emails and their users, queued
//! for the operator's receiver. The triggers of migration 0021 write them,
//! in the transaction of each change, whoever makes it; this aggregate
//! chooses which kinds are written and hands them to the deliverer.
//!
//! The trait, and each engine's implementation beside it (see `outbox`).

use std::fmt;

use async_trait::async_trait;

use crate::*;

#[async_trait]
pub trait Events: Send + Sync {
    /// From now on the triggers queue these kinds and no others (none:
    /// events are off). One transaction.
    async fn set_event_kinds(&self, kinds: &[EventKind]) -> Result<()>;

    /// The kinds the triggers queue now.
    async fn event_kinds(&self) -> Result<Vec<EventKind>>;

    /// Leases up to `limit` due events (pending whose time has come, or
    /// delivering whose lease ran out) to `owner`, oldest first.
    async fn claim_events(&self, claim: &Claim) -> Result<Vec<Event>>;

    /// Settles a claimed event; false if the lease was lost meanwhile.
    async fn settle_event(&self, id: i64, owner: &str, outcome: &EventSettlement) -> Result<bool>;

    /// Ends every delivery lease now; how many. Only for a process that
    /// holds the database alone (SQLite under the server lock), as
    /// `Outbox::end_leases`.
    async fn end_event_leases(&self, now: UnixMillis) -> Result<u64>;

    /// Every failed event pending again with a fresh budget; how many.
    async fn retry_failed_events(&self, now: UnixMillis) -> Result<u64>;

    /// Events in one state (all when `None`), oldest first.
    async fn list_events(&self, state: Option<EventState>, limit: u32) -> Result<Vec<Event>>;

    /// How many events wait in each state.
    async fn event_depth(&self) -> Result<Vec<(EventState, u64)>>;

    /// The earliest time a pending event is due or a lease runs out.
    async fn next_event_due(&self) -> Result<Option<UnixMillis>>;
}

/// What an event reports; its name is the payload's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    EmailQueued,
    EmailSent,
    EmailRetrying,
    EmailDead,
    LinkOpened,
    PasswordSet,
    LinkRevoked,
    UserSuppressed,
    UserUnsuppressed,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::EmailQueued,
        EventKind::EmailSent,
        EventKind::EmailRetrying,
        EventKind::EmailDead,
        EventKind::LinkOpened,
        EventKind::PasswordSet,
        EventKind::LinkRevoked,
        EventKind::UserSuppressed,
        EventKind::UserUnsuppressed,
    ];

    /// The name the triggers write and receivers see.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::EmailQueued => "email.queued",
            EventKind::EmailSent => "email.sent",
            EventKind::EmailRetrying => "email.retrying",
            EventKind::EmailDead => "email.dead",
            EventKind::LinkOpened => "link.opened",
            EventKind::PasswordSet => "password.set",
            EventKind::LinkRevoked => "link.revoked",
            EventKind::UserSuppressed => "user.suppressed",
            EventKind::UserUnsuppressed => "user.unsuppressed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where an event is. A delivered event is deleted: the receiver has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventState {
    Pending,
    Delivering,
    /// Given up after its attempts; `pwmail events retry` queues it again.
    Failed,
}

impl EventState {
    pub const ALL: [EventState; 3] = [
        EventState::Pending,
        EventState::Delivering,
        EventState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Delivering => "delivering",
            EventState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        EventState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

impl fmt::Display for EventState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One queued event, as the deliverer and `pwmail events list` see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: i64,
    /// Unique and random: the receiver dedupes on it; every attempt keeps it.
    pub event_id: String,
    pub kind: EventKind,
    pub at: UnixMillis,
    pub user_id: Option<UserId>,
    /// The user's address when it happened.
    pub email: Option<String>,
    pub link_id: Option<i64>,
    /// The link's events are numbered 1, 2, 3… in the order they happened.
    pub seq: Option<i64>,
    pub outbox_id: Option<i64>,
    pub message_id: Option<String>,
    pub message_kind: Option<String>,
    /// The API call that issued the link or queued the email.
    pub request_id: Option<String>,
    /// Why: an email's error, a suppression's reason.
    pub detail: Option<String>,
    pub state: EventState,
    pub attempts: i64,
    pub next_attempt_at: UnixMillis,
    pub last_error: Option<String>,
}

/// What became of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventSettlement {
    /// The receiver answered 2xx: the event is forgotten.
    Delivered,
    Retry {
        error: String,
        next_attempt_at: UnixMillis,
    },
    Failed {
        error: String,
    },
}
