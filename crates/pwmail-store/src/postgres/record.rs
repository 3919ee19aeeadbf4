//! The named records the issue functions read (`jsonb_to_recordset` in
//! functions/postgres/pwmail_issue_links.sql), one per call: each field is
//! written here by name and read there by name, so a call's field is one
//! line on each side and never a positional parameter.

use serde::Serialize;

use crate::rows::ContentColumns;
use crate::{IssueLink, LinkDraft, RateKey, TokenHash, UnixMillis};

/// What every issue record holds: the link, its email and the call.
#[derive(Serialize)]
pub(super) struct Link<'a> {
    /// The call's place in its group, from 1: rows come back by it.
    ord: usize,
    actor_user: i64,
    actor_token: i64,
    purpose: &'static str,
    invalidates: bool,
    /// The link's SHA-256, in hex (`decode(…, 'hex')`).
    link_hash: String,
    expires_at: UnixMillis,
    message_id: &'a str,
    kind: &'static str,
    link: Option<&'a str>,
    link_expires_at: Option<UnixMillis>,
    /// `LinkOptions` as its column holds it (JSON text, or null).
    options: Option<String>,
    request_id: &'a str,
    at_ms: UnixMillis,
    idem_key: Option<&'a str>,
    fingerprint: Option<&'a str>,
    key_expires_at: Option<UnixMillis>,
}

/// A call for a known user (`pwmail_issue_links`, `pwmail_issue_link`).
#[derive(Serialize)]
pub(super) struct Issue<'a> {
    #[serde(flatten)]
    link: Link<'a>,
    target: i64,
    rate_key: String,
    recipient: &'a str,
    subject: &'a str,
    body_text: Option<&'a str>,
    body_html: Option<&'a str>,
    link_name: Option<&'a str>,
}

/// A call by address (`pwmail_issue_by_address`), which adds the user's
/// fields and passes the record on.
#[derive(Serialize)]
pub(super) struct Addressed<'a> {
    #[serde(flatten)]
    link: Link<'a>,
    /// The calling API token's rate key.
    caller: String,
    /// The address's key (`email_key`).
    email_key: &'a str,
}

fn hex(hash: &TokenHash) -> String {
    use std::fmt::Write as _;
    let mut hex = String::with_capacity(2 * hash.0.len());
    for b in hash.0 {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

impl<'a> Issue<'a> {
    pub(super) fn of(ord: usize, issue: &'a IssueLink) -> Issue<'a> {
        let content = ContentColumns::of(&issue.message.content);
        let idem = issue.idempotency.as_ref();
        Issue {
            link: Link {
                ord,
                actor_user: issue.actor.user.0,
                actor_token: issue.actor.token_id,
                purpose: issue.purpose.as_str(),
                invalidates: issue.purpose.invalidates_password(),
                link_hash: hex(&issue.link_hash),
                expires_at: issue.expires_at,
                message_id: &issue.message.message_id,
                kind: issue.message.kind.as_str(),
                link: content.link,
                link_expires_at: content.link_expires_at,
                options: content.options,
                request_id: &issue.request_id,
                at_ms: issue.now,
                idem_key: idem.map(|k| k.key.as_str()),
                fingerprint: idem.map(|k| k.fingerprint.as_str()),
                key_expires_at: idem.map(|k| k.expires_at),
            },
            target: issue.target.0,
            rate_key: RateKey::User(issue.target).to_string(),
            recipient: &issue.message.recipient,
            subject: content.subject,
            body_text: content.body_text,
            body_html: content.body_html,
            link_name: content.link_name,
        }
    }
}

impl<'a> Addressed<'a> {
    /// A call without an Idempotency-Key (a keyed one takes two steps).
    pub(super) fn of(ord: usize, draft: &'a LinkDraft, email_key: &'a str) -> Addressed<'a> {
        Addressed {
            link: Link {
                ord,
                actor_user: draft.actor.user.0,
                actor_token: draft.actor.token_id,
                purpose: draft.purpose.as_str(),
                invalidates: draft.purpose.invalidates_password(),
                link_hash: hex(&draft.link_hash),
                expires_at: draft.expires_at,
                message_id: &draft.message_id,
                kind: crate::MessageKind::from(draft.purpose).as_str(),
                link: Some(draft.link.as_str()),
                link_expires_at: Some(draft.expires_at),
                options: draft.options.to_column(),
                request_id: &draft.request_id,
                at_ms: draft.now,
                idem_key: None,
                fingerprint: None,
                key_expires_at: None,
            },
            caller: RateKey::ApiToken(draft.actor.token_id).to_string(),
            email_key,
        }
    }
}

/// Records as the one JSON parameter of their function (bound as text,
/// cast to JSONB in the statement).
pub(super) fn json<T: Serialize + ?Sized>(records: &T) -> crate::Result<String> {
    serde_json::to_string(records)
        .map_err(|e| crate::StoreError::Corrupt(format!("an issue record: {e}")))
}
