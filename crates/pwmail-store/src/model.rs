//! What the store holds, as the rest of pwmail sees it.

use std::fmt;

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

/// How addresses are compared: case and surrounding spaces aside.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
    /// Whether a password is set and not invalidated.
    pub has_password: bool,
    pub created_at: UnixMillis,
    /// Whether mail can be addressed to `email` (the mail builder's check,
    /// made when the user was written or by `Users::check_addresses`).
    pub deliverable: bool,
    /// Their language (a BCP 47 tag); `None`: the server's default.
    pub locale: Option<String>,
    /// Set when an email to them failed for good because of the address
    /// (then `deliverable` is false too), until lifted.
    pub suppressed: Option<Suppression>,
}

/// What `Users::delete_user` removed with the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedUser {
    /// The user as they were.
    pub user: User,
    pub tokens: u64,
    pub links: u64,
    /// Emails not yet sent, deleted; sent and dead ones stay without them.
    pub unsent_emails: u64,
    /// Audit rows about or by them, which keep their address.
    pub audit_rows: u64,
}

/// What `Users::update_user` changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserChange {
    /// A new name, or `Some(None)` to remove it.
    pub name: Option<Option<String>>,
    /// A new address, and whether mail can be addressed to it (checked by
    /// the app). Its open links are revoked and a suppression lifted.
    pub email: Option<(String, bool)>,
    /// A new locale (a canonical tag), or `Some(None)` for the default.
    pub locale: Option<Option<String>>,
    pub admin: Option<bool>,
    /// `Some(false)` disables (revoking tokens and open links).
    pub enabled: Option<bool>,
}

impl UserChange {
    /// The audit operations this change makes of `before` (only what
    /// differs).
    pub fn audited(&self, before: &User) -> Vec<&'static str> {
        let mut ops = Vec::new();
        if self.name.as_ref().is_some_and(|n| *n != before.name) {
            ops.push("name_changed");
        }
        if self.email.as_ref().is_some_and(|(e, _)| *e != before.email) {
            ops.push("email_changed");
        }
        if self.locale.as_ref().is_some_and(|l| *l != before.locale) {
            ops.push("locale_changed");
        }
        match self.admin {
            Some(true) if !before.is_admin => ops.push("admin_granted"),
            Some(false) if before.is_admin => ops.push("admin_revoked"),
            _ => {}
        }
        match self.enabled {
            Some(true) if before.disabled => ops.push("enabled"),
            Some(false) if !before.disabled => ops.push("disabled"),
            _ => {}
        }
        ops
    }
}

/// When and why an address was suppressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    pub at: UnixMillis,
    /// The failure that caused it (the relay's or SES's answer).
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub email: String,
    pub name: Option<String>,
    pub is_admin: bool,
    /// Whether mail can be addressed to `email`, as the app checked it.
    pub deliverable: bool,
    /// A BCP 47 tag the app checked, in its canonical spelling.
    pub locale: Option<String>,
}

/// SHA-256 of a secret. Only hashes of API tokens and link tokens are stored.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl fmt::Debug for TokenHash {
    // Hashes are not secrets, but there's no reason to print them whole.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTokenInfo {
    pub id: i64,
    pub user_id: UserId,
    pub label: String,
    pub created_at: UnixMillis,
    pub revoked_at: Option<UnixMillis>,
    /// May ask for a link in the API response instead of an email
    /// (`token create --reveal-links`): it lets its holder act as the user.
    pub reveal_links: bool,
}

#[derive(Clone, Debug)]
pub struct Authenticated {
    pub user: User,
    pub token_id: i64,
    /// The token's `reveal_links` permission.
    pub reveal_links: bool,
}

/// A GCRA limit: `burst` calls at once, refilled one per `period_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub period_ms: i64,
    pub burst: u32,
}

/// What a rate limit counts against. Its `Display` is the stored key, built
/// here and nowhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// Calls made with one API token.
    ApiToken(i64),
    /// Emails sent to one user (the per-user cooldown).
    User(UserId),
    /// Unknown reset links opened from one client address.
    ResetGuess(std::net::IpAddr),
}

impl RateKey {
    /// What a `User` key is before the id (SQL that builds keys takes it).
    pub(crate) const USER_PREFIX: &'static str = "user:";

    pub fn kind(&self) -> RateKind {
        match self {
            RateKey::ApiToken(_) => RateKind::ApiToken,
            RateKey::User(_) => RateKind::User,
            RateKey::ResetGuess(_) => RateKind::ResetGuess,
        }
    }
}

/// Which limit a [`RateKey`] is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateKind {
    ApiToken,
    User,
    ResetGuess,
}

impl RateKind {
    /// What the stored keys of this kind start with.
    pub fn prefix(self) -> &'static str {
        match self {
            RateKind::ApiToken => "token:",
            RateKind::User => RateKey::USER_PREFIX,
            RateKind::ResetGuess => "reset-guess:",
        }
    }
}

impl fmt::Display for RateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.kind().prefix();
        match self {
            RateKey::ApiToken(id) => write!(f, "{prefix}{id}"),
            RateKey::User(id) => write!(f, "{prefix}{id}"),
            RateKey::ResetGuess(ip) => write!(f, "{prefix}{ip}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Refused; the limit admits a call again after this many milliseconds.
    Refused {
        retry_after_ms: i64,
    },
}

/// Which admin operation issued a link; it decides what the transaction does
/// to the current password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPurpose {
    /// SendPasswordEmail: the current password keeps working.
    SendPasswordEmail,
    /// ResetPasswordByAdmin: the current password stops working at once.
    ResetPasswordByAdmin,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::SendPasswordEmail => "send_password_email",
            LinkPurpose::ResetPasswordByAdmin => "reset_password_by_admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "send_password_email" => Some(LinkPurpose::SendPasswordEmail),
            "reset_password_by_admin" => Some(LinkPurpose::ResetPasswordByAdmin),
            _ => None,
        }
    }

    pub fn invalidates_password(self) -> bool {
        matches!(self, LinkPurpose::ResetPasswordByAdmin)
    }
}

/// What an outbox message is; stored in the `kind` column by its
/// [`as_str`](MessageKind::as_str) name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A link email sent by SendPasswordEmail.
    SendPasswordEmail,
    /// A link email sent by ResetPasswordByAdmin.
    ResetPasswordByAdmin,
    /// The notice after a password change; it carries no link.
    PasswordChanged,
}

impl MessageKind {
    pub const ALL: [MessageKind; 3] = [
        MessageKind::SendPasswordEmail,
        MessageKind::ResetPasswordByAdmin,
        MessageKind::PasswordChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::SendPasswordEmail => "send_password_email",
            MessageKind::ResetPasswordByAdmin => "reset_password_by_admin",
            MessageKind::PasswordChanged => "password_changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        MessageKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A stored `kind` column; an unknown name means the row is corrupt.
    pub(crate) fn from_column(s: String) -> crate::Result<Self> {
        MessageKind::parse(&s)
            .ok_or_else(|| crate::StoreError::Corrupt(format!("outbox kind {s:?}")))
    }
}

impl From<LinkPurpose> for MessageKind {
    fn from(purpose: LinkPurpose) -> Self {
        match purpose {
            LinkPurpose::SendPasswordEmail => MessageKind::SendPasswordEmail,
            LinkPurpose::ResetPasswordByAdmin => MessageKind::ResetPasswordByAdmin,
        }
    }
}

impl MessageKind {
    /// The link a message of this kind carries, if it carries one.
    pub fn link_purpose(self) -> Option<LinkPurpose> {
        match self {
            MessageKind::SendPasswordEmail => Some(LinkPurpose::SendPasswordEmail),
            MessageKind::ResetPasswordByAdmin => Some(LinkPurpose::ResetPasswordByAdmin),
            MessageKind::PasswordChanged => None,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Who called the admin API.
#[derive(Clone, Copy, Debug)]
pub struct Actor {
    pub user: UserId,
    pub token_id: i64,
}

/// A queued message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// Stable Message-ID, reused on every attempt (without angle brackets).
    pub message_id: String,
    pub kind: MessageKind,
    pub recipient: String,
    pub content: Content,
}

/// What a queued message says, as stored.
#[derive(Clone, PartialEq, Eq)]
pub enum Content {
    /// Written when it was queued: a notice, which holds no link.
    Rendered {
        subject: String,
        text: String,
        html: String,
    },
    /// A link email, written from its templates when it is sent: the row
    /// holds the link and what the templates need, not ~3 KiB of rendered
    /// text and HTML, which every write of the row (queue, claim, settle)
    /// paid for. The link is cleared when the row settles, as the bodies are.
    Link {
        /// The whole link (the token with this service's public URL, fixed
        /// when it was issued). A secret: never in a log line or an error.
        link: String,
        /// The user's name when the link was issued.
        name: Option<String>,
        /// When the link stops working (it was issued at the row's
        /// `created_at`).
        expires_at: UnixMillis,
        /// What the call asked of its link, for the templates.
        options: LinkOptions,
    },
}

/// What one call asked of its link beyond the server's settings, kept as
/// one JSON document beside the link and beside its email (the `options`
/// columns of `reset_links` and `outbox`): the store and its SQL carry the
/// document whole, so a new per-call field is a field here, read where it
/// is used (the email's templates, the reset page), and no column,
/// statement or function parameter. Fields are optional and absent ones
/// are left out; a field this build does not know, written by a newer
/// replica, is ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LinkOptions {
    /// A value only tests set, to see a document travel whole on both
    /// engines: from the call to the link and to its email.
    #[cfg(feature = "testing")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The application page the done page links to once the password is
    /// set (checked against the server's allowed origins when the call
    /// was made, and again when the page is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
    /// The language the call asked for (a BCP 47 tag, checked and spelt
    /// canonically by the app): the email's and the page's, over the
    /// user's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// The W3C `traceparent` of the call, when traces are on: the
    /// delivery attempt of its email links to it. Not part of what the call
    /// asked (an Idempotency-Key's fingerprint leaves it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl LinkOptions {
    /// The document as its columns hold it, or `None` (NULL) when the call
    /// asked for nothing (the defaults).
    pub fn to_column(&self) -> Option<String> {
        if *self == LinkOptions::default() {
            return None;
        }
        // A struct of plain fields always serializes.
        serde_json::to_string(self).ok()
    }

    pub(crate) fn from_column(column: Option<&str>) -> Result<LinkOptions, crate::StoreError> {
        column.map_or(Ok(LinkOptions::default()), |text| {
            serde_json::from_str(text)
                .map_err(|e| crate::StoreError::Corrupt(format!("link options: {e}")))
        })
    }
}

/// The link is a credential: `Debug` (logs, panics) shows that there is
/// one, never what it is.
impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::Rendered { subject, .. } => f
                .debug_struct("Rendered")
                .field("subject", subject)
                .finish_non_exhaustive(),
            Content::Link {
                name,
                expires_at,
                options,
                ..
            } => f
                .debug_struct("Link")
                .field("link", &"<redacted>")
                .field("name", name)
                .field("expires_at", expires_at)
                .field("options", options)
                .finish(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct IssueLink {
    pub actor: Actor,
    pub target: UserId,
    pub purpose: LinkPurpose,
    pub link_hash: TokenHash,
    pub expires_at: UnixMillis,
    /// The calling API token's rate (key `RateKey::ApiToken(actor.token_id)`):
    /// if [`Links::find_addressee`](crate::Links::find_addressee) left it
    /// pending, charged here before anything else but the idempotency check.
    /// The charge stands whatever the outcome (a refused call uses up the
    /// caller's rate too), except for a failure that rolls the call back.
    pub caller: CallerCharge,
    /// Per-user cooldown, checked and recorded inside the transaction.
    pub cooldown: Rate,
    pub message: NewMessage,
    /// The link goes back in the call's answer instead of an email: the
    /// message is not queued, the audit row says "revealed", and a stored
    /// Idempotency-Key keeps no outbox id.
    pub reveal: bool,
    pub request_id: String,
    /// The caller's Idempotency-Key: stored with the outcome when the link
    /// is issued, and checked first, in the same transaction.
    pub idempotency: Option<IdempotencyKey>,
    pub now: UnixMillis,
}

/// Whether an admin call's step of the caller's rate is done. Which it is
/// after [`Links::find_addressee`](crate::Links::find_addressee) is the
/// engine's choice (PostgreSQL charges with the lookup, in one round trip;
/// SQLite inside the issue's transaction, on its one writer); either way a
/// call is charged once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallerCharge {
    /// Charged, and admitted.
    Charged,
    /// Still to be charged, at this rate.
    Pending(Rate),
}

/// The user an admin call names, as [`Links::find_addressee`](crate::Links::find_addressee)
/// found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addressee {
    /// The caller's rate refused the call; the user is not given (whether
    /// one has the address says nothing to a throttled caller).
    Throttled {
        retry_after_ms: i64,
    },
    Found {
        user: User,
        charge: CallerCharge,
    },
    /// No user has the address.
    Missing {
        charge: CallerCharge,
    },
}

/// An admin call that names its user by address, as the app fixes it
/// before the user is known: everything the call needs, taken to its end in
/// the store; see [`Links::issue_call`](crate::Links::issue_call).
#[derive(Clone)]
pub struct IssueCall {
    /// The address as the caller gave it.
    pub email: String,
    /// The calling API token's rate (key `RateKey::ApiToken(link.actor.token_id)`).
    pub caller_rate: Rate,
    pub link: LinkDraft,
}

/// A link to issue and its email, all but the user (no `Debug`: it holds
/// the link).
#[derive(Clone)]
pub struct LinkDraft {
    pub actor: Actor,
    pub purpose: LinkPurpose,
    pub link_hash: TokenHash,
    pub expires_at: UnixMillis,
    /// Per-user cooldown, as [`IssueLink::cooldown`].
    pub cooldown: Rate,
    /// The email's Message-ID (without angle brackets).
    pub message_id: String,
    /// The whole link, as `Content::Link` holds it: a secret.
    pub link: String,
    /// What the call asked of its link (kept with the link and its email).
    pub options: LinkOptions,
    /// Answer the link instead of emailing it (see [`IssueLink::reveal`]).
    pub reveal: bool,
    pub request_id: String,
    pub idempotency: Option<IdempotencyKey>,
    pub now: UnixMillis,
}

impl LinkDraft {
    /// The issue for `user`: their stored address is the recipient, their
    /// name the greeting's.
    pub fn issue_for(&self, user: &User, caller: CallerCharge) -> IssueLink {
        IssueLink {
            actor: self.actor,
            target: user.id,
            purpose: self.purpose,
            link_hash: self.link_hash,
            expires_at: self.expires_at,
            caller,
            cooldown: self.cooldown,
            message: NewMessage {
                message_id: self.message_id.clone(),
                kind: MessageKind::from(self.purpose),
                recipient: user.email.clone(),
                content: Content::Link {
                    link: self.link.clone(),
                    name: user.name.clone(),
                    expires_at: self.expires_at,
                    options: self.options.clone(),
                },
            },
            reveal: self.reveal,
            request_id: self.request_id.clone(),
            idempotency: self.idempotency.clone(),
            now: self.now,
        }
    }
}

/// What [`Links::issue_call`](crate::Links::issue_call) made
/// of a call: the one outcome of an admin call by address.
#[derive(Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// To the issue's transaction, for this user: its outcome.
    Issued { user: UserId, outcome: IssueOutcome },
    /// The caller's rate refused the call; nothing was written.
    Throttled { retry_after_ms: i64 },
    /// No user has the address; only the caller's rate step was written.
    NoSuchUser,
    /// The user's stored address cannot receive mail (`User::deliverable`);
    /// only the caller's rate step was written.
    Undeliverable { user: UserId },
}

/// An Idempotency-Key as the store keeps it: scoped to the calling API
/// token (`IssueLink::actor`) and the operation (`IssueLink::purpose`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    /// SHA-256 (hex) of what makes two requests the same one.
    pub fingerprint: String,
    pub expires_at: UnixMillis,
}

/// A stored outcome of an earlier call with the same key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOutcome {
    pub fingerprint: String,
    /// The email the call queued; `None`: the call revealed its link in
    /// its answer instead, which is never repeated.
    pub outbox_id: Option<i64>,
    /// The request id of the call that did the work.
    pub request_id: String,
}

impl StoredOutcome {
    /// What this live key means for a new call with `key`: the same request
    /// gets the stored outcome again; another request under the key is
    /// refused.
    pub fn outcome_for(self, key: &IdempotencyKey) -> IssueOutcome {
        if self.fingerprint != key.fingerprint {
            IssueOutcome::KeyReused
        } else if self.outbox_id.is_none() {
            IssueOutcome::AlreadyRevealed
        } else {
            IssueOutcome::Replayed(self)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssueOutcome {
    Issued {
        link_id: i64,
        outbox_id: i64,
    },
    /// Issued like `Issued`, but no email was queued: the caller asked for
    /// the link in its answer (`LinkDraft::reveal`).
    Revealed {
        link_id: i64,
    },
    /// The calling token's rate refused it; nothing was written.
    Throttled {
        retry_after_ms: i64,
    },
    /// The per-user cooldown refused it; nothing but the caller's rate
    /// charge was written.
    CoolingDown {
        retry_after_ms: i64,
    },
    /// The user is disabled; nothing was written. Checked inside the
    /// transaction, so a user disabled a moment earlier is never emailed.
    Disabled,
    /// The key was used before for the same request: this is its stored
    /// outcome, and nothing was written.
    Replayed(StoredOutcome),
    /// The key was used before for a different request; nothing was written.
    KeyReused,
    /// The key's call revealed its link in its answer; a link is shown
    /// once, so nothing is answered again and nothing was written.
    AlreadyRevealed,
    /// Another call with the key is still running (PostgreSQL, several
    /// replicas); nothing was written.
    KeyInFlight,
}

#[derive(Clone, Debug)]
pub struct CompleteReset {
    pub link_hash: TokenHash,
    /// PHC string of the new password.
    pub password_phc: String,
    /// The "your password was changed" notice.
    pub notice: NewMessage,
    pub request_id: String,
    pub now: UnixMillis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetOutcome {
    Changed {
        user: UserId,
        outbox_id: i64,
    },
    /// The link was used, revoked or expired meanwhile; nothing was written.
    LinkUnusable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    Open,
    Used,
    Revoked,
}

#[derive(Clone, Debug)]
pub struct ResetLink {
    pub id: i64,
    pub user_id: UserId,
    pub purpose: LinkPurpose,
    pub state: LinkState,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    /// What the call that issued it asked of it.
    pub options: LinkOptions,
    /// When its page was first opened.
    pub opened_at: Option<UnixMillis>,
}

/// What an audited call came to, stored in `audit_log.outcome` by its
/// [`as_str`](AuditOutcome::as_str) name: done, or the refusal its caller
/// was told. Volume refusals (rate limits, a full backlog, an unavailable
/// database) and unauthenticated calls are never stored, so no caller can
/// fill the disk with them; which refusals are is decided in one place
/// (`app::issue`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditOutcome {
    /// The call did what it was asked (every row before refusals were audited).
    Ok,
    /// The token's owner is not an admin.
    NotAdmin,
    /// The token may not receive links.
    CannotRevealLinks,
    NoSuchUser,
    Disabled,
    /// The user's address cannot receive mail.
    Undeliverable,
    /// The Idempotency-Key's call revealed its link.
    LinkRevealed,
    /// The Idempotency-Key's call is still running.
    KeyInFlight,
    /// The Idempotency-Key was used for another request.
    KeyReused,
}

impl AuditOutcome {
    pub const ALL: [AuditOutcome; 9] = [
        AuditOutcome::Ok,
        AuditOutcome::NotAdmin,
        AuditOutcome::CannotRevealLinks,
        AuditOutcome::NoSuchUser,
        AuditOutcome::Disabled,
        AuditOutcome::Undeliverable,
        AuditOutcome::LinkRevealed,
        AuditOutcome::KeyInFlight,
        AuditOutcome::KeyReused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Ok => "ok",
            AuditOutcome::NotAdmin => "not_admin",
            AuditOutcome::CannotRevealLinks => "cannot_reveal_links",
            AuditOutcome::NoSuchUser => "no_such_user",
            AuditOutcome::Disabled => "disabled",
            AuditOutcome::Undeliverable => "undeliverable",
            AuditOutcome::LinkRevealed => "link_revealed",
            AuditOutcome::KeyInFlight => "key_in_flight",
            AuditOutcome::KeyReused => "key_reused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        AuditOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// The audit row of a refused call, its only write.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub at: UnixMillis,
    pub actor: Actor,
    /// The user the call was for, when the refusal came after finding them.
    pub target: Option<UserId>,
    /// The address the call asked for, as lookups compare it (`email_key`).
    pub address: String,
    pub operation: &'static str,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    /// Never [`AuditOutcome::Ok`].
    pub outcome: AuditOutcome,
}

/// A table whose rows age out (`Retention`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Aging {
    /// Sent and dead emails (`outbox`).
    Emails,
    /// Used, revoked and expired reset links.
    Links,
    Audit,
}

impl Aging {
    pub const ALL: [Aging; 3] = [Aging::Emails, Aging::Links, Aging::Audit];

    /// Its name in metrics and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Aging::Emails => "emails",
            Aging::Links => "links",
            Aging::Audit => "audit",
        }
    }
}

/// What one window of a purge saw and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PurgeWindow {
    /// Rows in the window (fewer than asked: the table's end).
    pub scanned: u64,
    pub deleted: u64,
    /// The window's last id: the next window starts after it.
    pub last_id: Option<i64>,
    /// The newest creation time in the window: once it is past the cutoff,
    /// the rest of the table is too young to be due.
    pub newest: Option<UnixMillis>,
}

/// `pwmail audit list --outcome`: which outcomes to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeFilter {
    /// Every refusal.
    Refused,
    Is(AuditOutcome),
}

impl OutcomeFilter {
    /// The statement's parameter: `refused`, or the outcome's name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeFilter::Refused => "refused",
            OutcomeFilter::Is(outcome) => outcome.as_str(),
        }
    }
}

/// Which audit rows an operator asks for (`pwmail audit list`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Rows where this user acted or was acted on.
    pub user: Option<UserId>,
    pub request_id: Option<String>,
    /// From this time on (inclusive).
    pub since: Option<UnixMillis>,
    /// Before this time (exclusive).
    pub until: Option<UnixMillis>,
    /// Rows of refusals for this address (as `email_key` writes it) that no
    /// user had; with `user`, rows matching either.
    pub address: Option<String>,
    pub outcome: Option<OutcomeFilter>,
    pub limit: u32,
}

/// One audit row as an operator reads it: the ids, and the users' current
/// emails where the users still exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: UnixMillis,
    pub actor_user: Option<UserId>,
    pub actor_email: Option<String>,
    pub actor_token: Option<i64>,
    /// `None`: a refusal for an address no user had.
    pub target_user: Option<UserId>,
    /// The user's current email, or the address a refusal asked for.
    pub target_email: Option<String>,
    pub operation: String,
    pub request_id: String,
    pub outbox_id: Option<i64>,
    pub idempotency_key: Option<String>,
    /// The link went back in the call's answer, not in an email.
    pub link_revealed: bool,
    pub outcome: AuditOutcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutboxState {
    Queued,
    Sending,
    Sent,
    Retrying,
    Dead,
}

impl OutboxState {
    pub const ALL: [OutboxState; 5] = [
        OutboxState::Queued,
        OutboxState::Sending,
        OutboxState::Sent,
        OutboxState::Retrying,
        OutboxState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Retrying => "retrying",
            OutboxState::Dead => "dead",
        }
    }

    /// Not yet delivered nor given up.
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            OutboxState::Queued | OutboxState::Sending | OutboxState::Retrying
        )
    }

    pub fn parse(s: &str) -> Option<Self> {
        OutboxState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Clone, Debug)]
pub struct Claim {
    /// Identifies this claim; settling needs it, so a worker whose lease ran
    /// out cannot overwrite the result of the worker that took over.
    pub owner: String,
    pub now: UnixMillis,
    pub lease_ms: i64,
    pub limit: u32,
}

/// A leased message, with its content.
#[derive(Clone, Debug)]
pub struct OutboxMessage {
    pub id: i64,
    pub message: NewMessage,
    /// Attempts including the current one.
    pub attempts: u32,
    pub created_at: UnixMillis,
    /// Start of the current attempt budget (creation, or a manual requeue).
    pub queued_at: UnixMillis,
    pub request_id: Option<String>,
    /// The recipient's language as their user row holds it now (a link
    /// email is written when it is sent, in the link's language).
    pub user_locale: Option<String>,
    /// Whom it is for (none for a row of an older release), and their
    /// name as their row holds it now: what a delivery hook is told.
    pub user_id: Option<UserId>,
    pub user_name: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Settlement {
    Sent {
        reply: String,
        at: UnixMillis,
    },
    Retry {
        error: String,
        at: UnixMillis,
        next_attempt_at: UnixMillis,
    },
    Dead {
        error: String,
        at: UnixMillis,
        /// The failure was the recipient's address (it cannot receive
        /// mail): its user is suppressed in the same transaction.
        suppress: bool,
    },
}

impl Settlement {
    /// The state it leaves its message in.
    pub fn state(&self) -> OutboxState {
        match self {
            Settlement::Sent { .. } => OutboxState::Sent,
            Settlement::Retry { .. } => OutboxState::Retrying,
            Settlement::Dead { .. } => OutboxState::Dead,
        }
    }
}

/// Delivery status of one message, without its content.
#[derive(Clone, Debug)]
pub struct OutboxStatus {
    pub id: i64,
    pub message_id: String,
    pub kind: MessageKind,
    pub recipient: String,
    pub state: OutboxState,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub last_reply: Option<String>,
    pub created_at: UnixMillis,
    pub queued_at: UnixMillis,
    pub next_attempt_at: Option<UnixMillis>,
    pub sent_at: Option<UnixMillis>,
    pub request_id: Option<String>,
    /// When the link a link email carries expires.
    pub link_expires_at: Option<UnixMillis>,
    /// Since when the recipient's address is suppressed, if it is now.
    pub recipient_suppressed_at: Option<UnixMillis>,
}

/// How much SQLite's writer thread has done since it started, for the
/// metrics and the benchmark: writes per commit, and the share of time it
/// was busy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Commits (batches) run.
    pub batches: u64,
    /// Writes run in them (abandoned ones not counted).
    pub writes: u64,
    /// Time the writer thread spent running batches and their COMMITs.
    pub busy: std::time::Duration,
    /// The part of `busy` spent in COMMIT (writing the WAL; the fsync is
    /// the sync thread's).
    pub committing: std::time::Duration,
    /// fsyncs of the WAL; each covers every commit before it.
    pub syncs: u64,
    /// Time the sync thread spent in them.
    pub syncing: std::time::Duration,
    /// Time since the writer started.
    pub uptime: std::time::Duration,
}

#[cfg(test)]
mod tests {
    use super::LinkOptions;
    use crate::StoreError;

    #[test]
    fn link_options_asked_for_nothing_are_stored_as_null_and_read_back_as_the_defaults() {
        assert_eq!(LinkOptions::default().to_column(), None);
        assert_eq!(
            LinkOptions::from_column(None).unwrap(),
            LinkOptions::default()
        );
    }

    #[test]
    fn a_field_a_newer_replica_wrote_is_ignored_and_a_broken_document_is_corrupt() {
        assert_eq!(
            LinkOptions::from_column(Some(r#"{"from_a_newer_replica":"x"}"#)).unwrap(),
            LinkOptions::default()
        );
        assert!(matches!(
            LinkOptions::from_column(Some("{not json")),
            Err(StoreError::Corrupt(m)) if m.starts_with("link options: ")
        ));
    }
}
