//! Why the rules refused, or what failed, in the product's own words.
//! Adapters decide what each means on their side (`http::error` maps them to
//! API errors and reset pages; the CLI prints them).

use std::time::Duration;

use pwmail_store::StoreError;

use crate::app::reset::OpenLink;
use crate::config::RateLimit;
use crate::secrets::password::{HashError, Rejection};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input the rules refuse; the message names the field and the rule.
    #[error("{0}")]
    Invalid(String),
    /// `email` is quoted and cut to a readable length.
    #[error("invalid email {email}: {reason}")]
    InvalidEmail { email: String, reason: String },
    /// `email` matches the API's pattern but mail cannot be addressed to it
    /// (quoted and cut like `InvalidEmail`'s).
    #[error("the address {email} cannot receive mail: {reason}")]
    Undeliverable { email: String, reason: String },
    /// An email to the address failed for good because of the address
    /// (`reason`, the relay's or SES's answer); nothing is sent to it until
    /// an operator lifts the suppression.
    #[error(
        "the address {email} is suppressed since {since}: an email to it failed for good \
         ({reason}); once it can receive mail, lift it with `pwmail user unsuppress {plain}`"
    )]
    Suppressed {
        email: String,
        plain: String,
        since: String,
        reason: String,
    },
    /// The API token is unknown or revoked: the same words for both, so a
    /// caller learns nothing about tokens it does not hold.
    #[error("unknown or revoked API token")]
    BadToken,
    #[error("the owner of this API token is not an admin; only admins may send password emails")]
    NotAdmin,
    /// The call asked for the link in its answer, and the token was not
    /// made with that right.
    #[error(
        "this API token may not receive links (deliver: \"response\"); make one with \
         `pwmail token create EMAIL --reveal-links`, or let pwmail email the link"
    )]
    CannotRevealLinks,
    #[error("no user with email {0}")]
    NoSuchUser(String),
    /// The Idempotency-Key was used before with another request.
    #[error(
        "this Idempotency-Key was already used for a different request (another email or \
         operation); use a new key for a new request"
    )]
    KeyReused,
    /// Another call with the same Idempotency-Key is still running.
    /// A key's call revealed its link; a link is shown once.
    #[error("link already revealed; make a new one (with another Idempotency-Key)")]
    LinkRevealed,
    #[error("a call with this Idempotency-Key is still in progress; retry shortly")]
    KeyInFlight,
    #[error("the user {0} is disabled")]
    Disabled(String),
    #[error("no live API token with id {0}")]
    NoSuchToken(i64),
    #[error("no outbox message {0}")]
    NoSuchMessage(i64),
    #[error("outbox message {0} is not dead (only dead messages can be retried)")]
    NotDead(i64),
    /// `pwmail user delete` of the only admin: nobody could call the API.
    #[error(
        "{0} is the only admin; make another user admin first \
         (pwmail user update OTHER --admin), then delete this one"
    )]
    LastAdmin(String),
    /// `pwmail user unsuppress` of an address that is not suppressed.
    #[error("{0} is not suppressed (nothing to lift)")]
    NotSuppressed(String),
    /// A dead link email cannot be sent again: its link was revoked.
    #[error(
        "outbox message {id} was a password email to {recipient}; its link was revoked when it \
         was given up, so it is not sent again; send a fresh one with \
         `pwmail send --email {recipient}`"
    )]
    DeadLinkEmail { id: i64, recipient: String },
    /// Too many emails wait to be sent; new ones are refused until the
    /// dispatcher catches up.
    #[error("too many emails waiting to be sent ({waiting}, limit {limit}); retry later")]
    Backlog { waiting: u64, limit: u64 },
    #[error(
        "per-token rate limit exceeded: this API token may send {} emails per {} s",
        limit.count,
        limit.per_secs
    )]
    TokenRate {
        limit: RateLimit,
        retry_after: Duration,
    },
    #[error(
        "per-user rate limit exceeded: {email} may be emailed {} time(s) per {} s",
        limit.count,
        limit.per_secs
    )]
    UserCooldown {
        email: String,
        limit: RateLimit,
        retry_after: Duration,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The mail layer could not write an email (a broken template).
    #[error("writing an email: {0}")]
    Letter(#[source] pwmail_store::BoxError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("no randomness from the OS: {0}")]
    Random(#[from] getrandom::Error),
}

impl AppError {
    /// The database did not answer in time: the same call may work shortly.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AppError::Store(e) if e.is_retryable())
    }
}

/// Why a reset link cannot be used, or the new password was not set.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// Unknown or expired: deliberately one answer for both.
    #[error("the link is unknown or expired")]
    Invalid,
    #[error("the link was already used")]
    Used,
    /// A newer link was sent, the password was changed, or the user was
    /// disabled.
    #[error("the link was revoked")]
    Revoked,
    /// Too many unknown links were opened from this client address.
    #[error("too many unknown reset links from this address")]
    Throttled { retry_after: Duration },
    /// The new password breaks the policy; the link is still good.
    #[error("{rejection}")]
    Rejected {
        link: Box<OpenLink>,
        rejection: Rejection,
    },
    /// Every hashing slot and queue place is taken; the link is still good.
    #[error("too many passwords are being changed right now")]
    Busy { link: Box<OpenLink> },
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<StoreError> for ResetError {
    fn from(e: StoreError) -> Self {
        ResetError::App(e.into())
    }
}
