//! Reading the rows of `sql.rs`'s statements into the model, once for both
//! engines: each engine only says how to read one column ([`Columns`]).

use crate::*;

/// One result row, as either engine hands it over.
pub(crate) trait Columns {
    fn int(&self, column: &str) -> Result<i64>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>>;
    fn text(&self, column: &str) -> Result<String>;
    fn opt_text(&self, column: &str) -> Result<Option<String>>;
    /// A boolean column (PostgreSQL `boolean`, SQLite 0/1).
    fn flag(&self, column: &str) -> Result<bool>;
}

/// A row of `sql::USER_*` or `sql::AUTHENTICATE`.
pub(crate) fn user(row: &impl Columns) -> Result<User> {
    Ok(User {
        id: UserId(row.int("id")?),
        email: row.text("email")?,
        name: row.opt_text("name")?,
        is_admin: row.flag("is_admin")?,
        disabled: row.opt_int("disabled_at")?.is_some(),
        has_password: row.opt_text("password_hash")?.is_some(),
        created_at: row.int("created_at")?,
        deliverable: row.flag("deliverable")?,
        locale: row.opt_text("locale")?,
        suppressed: match row.opt_int("suppressed_at")? {
            Some(at) => Some(Suppression {
                at,
                reason: row.opt_text("suppressed_reason")?.unwrap_or_default(),
            }),
            None => None,
        },
    })
}

pub(crate) fn authenticated(row: &impl Columns) -> Result<Authenticated> {
    Ok(Authenticated {
        token_id: row.int("token_id")?,
        reveal_links: row.flag("reveal_links")?,
        user: user(row)?,
    })
}

pub(crate) fn token(row: &impl Columns) -> Result<ApiTokenInfo> {
    Ok(ApiTokenInfo {
        id: row.int("id")?,
        user_id: UserId(row.int("user_id")?),
        label: row.text("label")?,
        created_at: row.int("created_at")?,
        revoked_at: row.opt_int("revoked_at")?,
        reveal_links: row.flag("reveal_links")?,
    })
}

pub(crate) fn stored_outcome(row: &impl Columns) -> Result<StoredOutcome> {
    Ok(StoredOutcome {
        fingerprint: row.text("fingerprint")?,
        outbox_id: row.opt_int("outbox_id")?,
        request_id: row.text("request_id")?,
    })
}

pub(crate) fn link(row: &impl Columns) -> Result<ResetLink> {
    let purpose = row.text("purpose")?;
    Ok(ResetLink {
        id: row.int("id")?,
        user_id: UserId(row.int("user_id")?),
        purpose: LinkPurpose::parse(&purpose)
            .ok_or_else(|| StoreError::Corrupt(format!("link purpose {purpose:?}")))?,
        state: match (row.opt_int("used_at")?, row.opt_int("revoked_at")?) {
            (Some(_), _) => LinkState::Used,
            (None, Some(_)) => LinkState::Revoked,
            (None, None) => LinkState::Open,
        },
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
        options: LinkOptions::from_column(row.opt_text("options")?.as_deref())?,
        opened_at: row.opt_int("opened_at")?,
    })
}

fn attempts(row: &impl Columns) -> Result<u32> {
    Ok(u32::try_from(row.int("attempts")?).unwrap_or(0))
}

fn kind(row: &impl Columns) -> Result<MessageKind> {
    MessageKind::from_column(row.text("kind")?)
}

/// A message's content: a link email while its row holds the link, else
/// the bodies it was queued with (empty once cleared).
fn content(row: &impl Columns) -> Result<Content> {
    Ok(match row.opt_text("link")? {
        Some(link) => Content::Link {
            link,
            name: row.opt_text("link_name")?,
            expires_at: row
                .opt_int("link_expires_at")?
                .ok_or_else(|| StoreError::Corrupt("a link email without its expiry".into()))?,
            options: LinkOptions::from_column(row.opt_text("options")?.as_deref())?,
        },
        None => Content::Rendered {
            subject: row.text("subject")?,
            text: row.opt_text("body_text")?.unwrap_or_default(),
            html: row.opt_text("body_html")?.unwrap_or_default(),
        },
    })
}

/// A message's content as the outbox's columns hold it: parameters $4–$9
/// and $13 of `sql::OUTBOX_INSERT`; `options` is the link's too
/// (`sql::LINK_INSERT`).
pub(crate) struct ContentColumns<'a> {
    pub subject: &'a str,
    pub body_text: Option<&'a str>,
    pub body_html: Option<&'a str>,
    pub link: Option<&'a str>,
    pub link_name: Option<&'a str>,
    pub link_expires_at: Option<UnixMillis>,
    pub options: Option<String>,
}

impl<'a> ContentColumns<'a> {
    pub(crate) fn of(content: &'a Content) -> Self {
        match content {
            Content::Rendered {
                subject,
                text,
                html,
            } => ContentColumns {
                subject,
                body_text: Some(text),
                body_html: Some(html),
                link: None,
                link_name: None,
                link_expires_at: None,
                options: None,
            },
            // Its subject too is written when it is sent.
            Content::Link {
                link,
                name,
                expires_at,
                options,
            } => ContentColumns {
                subject: "",
                body_text: None,
                body_html: None,
                link: Some(link),
                link_name: name.as_deref(),
                link_expires_at: Some(*expires_at),
                options: options.to_column(),
            },
        }
    }
}

/// A row of `sql::claim_outbox`.
pub(crate) fn outbox_message(row: &impl Columns) -> Result<OutboxMessage> {
    Ok(OutboxMessage {
        id: row.int("id")?,
        message: NewMessage {
            message_id: row.text("message_id")?,
            kind: kind(row)?,
            recipient: row.text("recipient")?,
            content: content(row)?,
        },
        attempts: attempts(row)?,
        created_at: row.int("created_at")?,
        queued_at: row.int("queued_at")?,
        request_id: row.opt_text("request_id")?,
        user_id: row.opt_int("user_id")?.map(UserId),
        user_locale: row.opt_text("user_locale")?,
        user_name: row.opt_text("user_name")?,
    })
}

/// A row of `sql::AUDIT_LIST`.
pub(crate) fn audit_record(row: &impl Columns) -> Result<AuditRecord> {
    Ok(AuditRecord {
        id: row.int("id")?,
        at: row.int("at")?,
        actor_user: row.opt_int("actor_user_id")?.map(UserId),
        actor_email: row.opt_text("actor_email")?,
        actor_token: row.opt_int("actor_token_id")?,
        target_user: row.opt_int("target_user_id")?.map(UserId),
        target_email: row.opt_text("target_email")?,
        operation: row.text("operation")?,
        request_id: row.text("request_id")?,
        outbox_id: row.opt_int("outbox_id")?,
        idempotency_key: row.opt_text("idempotency_key")?,
        link_revealed: row.flag("link_revealed")?,
        outcome: audit_outcome(row)?,
    })
}

fn audit_outcome(row: &impl Columns) -> Result<AuditOutcome> {
    let outcome = row.text("outcome")?;
    AuditOutcome::parse(&outcome)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown audit outcome {outcome:?}")))
}

/// A row of `sql::OUTBOX_STATUS`, `OUTBOX_LIST` or `OUTBOX_FOR`.
pub(crate) fn outbox_status(row: &impl Columns) -> Result<OutboxStatus> {
    let state = row.text("state")?;
    Ok(OutboxStatus {
        id: row.int("id")?,
        message_id: row.text("message_id")?,
        kind: kind(row)?,
        recipient: row.text("recipient")?,
        state: OutboxState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox state {state:?}")))?,
        attempts: attempts(row)?,
        last_error: row.opt_text("last_error")?,
        last_reply: row.opt_text("last_reply")?,
        created_at: row.int("created_at")?,
        queued_at: row.int("queued_at")?,
        next_attempt_at: row.opt_int("next_attempt_at")?,
        sent_at: row.opt_int("sent_at")?,
        request_id: row.opt_text("request_id")?,
        link_expires_at: row.opt_int("link_expires_at")?,
        recipient_suppressed_at: row.opt_int("recipient_suppressed_at")?,
    })
}

/// `sql::OUTBOX_DEPTH`'s (state, n) rows as a count for every state: sent
/// is what the other states leave of all rows.
/// Counts from [`sql::OUTBOX_DEPTH`] (every state; sent is all rows less
/// the rest) or [`sql::OUTBOX_UNSENT`] (no `'all'` row: every state but sent).
pub(crate) fn outbox_depth(counts: Vec<(String, i64)>) -> Vec<(OutboxState, u64)> {
    let mut depth: Vec<(OutboxState, u64)> = OutboxState::ALL.iter().map(|s| (*s, 0)).collect();
    let mut all = None;
    for (state, n) in counts {
        let n = n.max(0) as u64;
        if state == "all" {
            all = Some(n);
        } else if let Some(slot) = depth.iter_mut().find(|(s, _)| s.as_str() == state) {
            slot.1 = n;
        }
    }
    match all {
        Some(all) => {
            let counted: u64 = depth.iter().map(|(_, n)| n).sum();
            if let Some(sent) = depth.iter_mut().find(|(s, _)| *s == OutboxState::Sent) {
                sent.1 = all.saturating_sub(counted);
            }
        }
        None => depth.retain(|(s, _)| *s != OutboxState::Sent),
    }
    depth
}

/// An event as `sql`'s event columns give it.
pub(crate) fn event(row: &impl Columns) -> Result<Event> {
    let kind = row.text("kind")?;
    let state = row.text("state")?;
    Ok(Event {
        id: row.int("id")?,
        event_id: row.text("event_id")?,
        kind: EventKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown event kind {kind:?}")))?,
        at: row.int("at")?,
        user_id: row.opt_int("user_id")?.map(UserId),
        email: row.opt_text("email")?,
        link_id: row.opt_int("link_id")?,
        seq: row.opt_int("seq")?,
        outbox_id: row.opt_int("outbox_id")?,
        message_id: row.opt_text("message_id")?,
        message_kind: row.opt_text("message_kind")?,
        request_id: row.opt_text("request_id")?,
        detail: row.opt_text("detail")?,
        state: EventState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown event state {state:?}")))?,
        attempts: row.int("attempts")?,
        next_attempt_at: row.int("next_attempt_at")?,
        last_error: row.opt_text("last_error")?,
    })
}

/// Counts per state as `sql::EVENTS_DEPTH` gives them.
pub(crate) fn event_depth(counts: Vec<(String, i64)>) -> Vec<(EventState, u64)> {
    counts
        .into_iter()
        .filter_map(|(state, n)| Some((EventState::parse(&state)?, n.max(0) as u64)))
        .collect()
}
