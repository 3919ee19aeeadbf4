//! The named records the issue functions read (migration 0015's
//! `pwmail_link_call` and `pwmail_link_user`; functions/postgres/), one of
//! each per call: what the call asks, and whom it is for. sqlx sends them
//! in binary, which PostgreSQL reads by position: the fields below are in
//! the types' order, and a test checks them against the types' names.

use crate::rows::ContentColumns;
use crate::{IssueLink, LinkDraft, RateKey, UnixMillis};

/// What a call asks (`pwmail_link_call`).
#[derive(sqlx::Type)]
#[sqlx(type_name = "pwmail_link_call")]
pub(super) struct Call {
    /// The call's place in its group, from 1: rows come back by it.
    ord: i32,
    actor_user: i64,
    actor_token: i64,
    purpose: String,
    invalidates: bool,
    /// The link's SHA-256.
    link_hash: Vec<u8>,
    expires_at: UnixMillis,
    message_id: String,
    kind: String,
    /// The whole link: a secret (this struct has no `Debug`).
    link: Option<String>,
    link_expires_at: Option<UnixMillis>,
    /// `LinkOptions` as its column holds it (JSON text, or NULL).
    options: Option<String>,
    request_id: String,
    at_ms: UnixMillis,
    idem_key: Option<String>,
    fingerprint: Option<String>,
    key_expires_at: Option<UnixMillis>,
    /// By address only: the calling API token's rate key.
    caller: Option<String>,
    /// By address only: the address's key (`email_key`).
    email_key: Option<String>,
    /// The link goes back in the answer: no email (migration 0016).
    reveal: bool,
}

/// Whom a call is for (`pwmail_link_user`): filled in by Rust for a call
/// by user id, by `pwmail_issue_by_address` for a call by address.
#[derive(sqlx::Type)]
#[sqlx(type_name = "pwmail_link_user")]
pub(super) struct User {
    target: i64,
    rate_key: String,
    recipient: String,
    subject: String,
    body_text: Option<String>,
    body_html: Option<String>,
    link_name: Option<String>,
}

fn ord(i: usize) -> i32 {
    i32::try_from(i).unwrap_or(i32::MAX)
}

/// A call for a known user (`pwmail_issue_links`, `pwmail_issue_link`).
pub(super) fn issue(place: usize, issue: &IssueLink) -> (Call, User) {
    let content = ContentColumns::of(&issue.message.content);
    let idem = issue.idempotency.as_ref();
    let call = Call {
        ord: ord(place),
        actor_user: issue.actor.user.0,
        actor_token: issue.actor.token_id,
        purpose: issue.purpose.as_str().to_string(),
        invalidates: issue.purpose.invalidates_password(),
        link_hash: issue.link_hash.0.to_vec(),
        expires_at: issue.expires_at,
        message_id: issue.message.message_id.clone(),
        kind: issue.message.kind.as_str().to_string(),
        link: content.link.map(str::to_string),
        link_expires_at: content.link_expires_at,
        options: content.options,
        request_id: issue.request_id.clone(),
        at_ms: issue.now,
        idem_key: idem.map(|k| k.key.clone()),
        fingerprint: idem.map(|k| k.fingerprint.clone()),
        key_expires_at: idem.map(|k| k.expires_at),
        caller: None,
        email_key: None,
        reveal: issue.reveal,
    };
    let user = User {
        target: issue.target.0,
        rate_key: RateKey::User(issue.target).to_string(),
        recipient: issue.message.recipient.clone(),
        subject: content.subject.to_string(),
        body_text: content.body_text.map(str::to_string),
        body_html: content.body_html.map(str::to_string),
        link_name: content.link_name.map(str::to_string),
    };
    (call, user)
}

/// A call by address without an Idempotency-Key (`pwmail_issue_by_address`,
/// which finds the user).
pub(super) fn addressed(place: usize, draft: &LinkDraft, email_key: &str) -> Call {
    Call {
        ord: ord(place),
        actor_user: draft.actor.user.0,
        actor_token: draft.actor.token_id,
        purpose: draft.purpose.as_str().to_string(),
        invalidates: draft.purpose.invalidates_password(),
        link_hash: draft.link_hash.0.to_vec(),
        expires_at: draft.expires_at,
        message_id: draft.message_id.clone(),
        kind: crate::MessageKind::from(draft.purpose).as_str().to_string(),
        link: Some(draft.link.clone()),
        link_expires_at: Some(draft.expires_at),
        options: draft.options.to_column(),
        request_id: draft.request_id.clone(),
        at_ms: draft.now,
        idem_key: None,
        fingerprint: None,
        key_expires_at: None,
        caller: Some(RateKey::ApiToken(draft.actor.token_id).to_string()),
        email_key: Some(email_key.to_string()),
        reveal: draft.reveal,
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row as _;

    use super::*;

    /// PostgreSQL reads a binary record by position: each field must stand
    /// where the type has the attribute of its name. Every field gets its
    /// own value, and PostgreSQL names what it read.
    #[tokio::test]
    async fn each_field_lands_in_the_attribute_of_its_name() {
        let schema = pwmail_testkit::pg::PgSchema::create().await;
        let store = crate::PgStore::open(&schema.url(None), crate::PoolOptions::default())
            .await
            .unwrap();
        let call = Call {
            ord: 1,
            actor_user: 2,
            actor_token: 3,
            purpose: "purpose".into(),
            invalidates: true,
            link_hash: vec![0xab, 0xcd],
            expires_at: 4,
            message_id: "message_id".into(),
            kind: "kind".into(),
            link: Some("link".into()),
            link_expires_at: Some(5),
            options: Some("options".into()),
            request_id: "request_id".into(),
            at_ms: 6,
            idem_key: Some("idem_key".into()),
            fingerprint: Some("fingerprint".into()),
            key_expires_at: Some(7),
            caller: Some("caller".into()),
            email_key: Some("email_key".into()),
            reveal: true,
        };
        let user = User {
            target: 8,
            rate_key: "rate_key".into(),
            recipient: "recipient".into(),
            subject: "subject".into(),
            body_text: Some("body_text".into()),
            body_html: Some("body_html".into()),
            link_name: Some("link_name".into()),
        };
        let mut conn = store.pool.acquire().await.unwrap();
        let row = sqlx::query("SELECT to_jsonb($1)::TEXT AS call, to_jsonb($2)::TEXT AS user")
            .bind(call)
            .bind(user)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        conn.release();
        let read = |column: &str| -> serde_json::Value {
            serde_json::from_str(&row.try_get::<String, _>(column).unwrap()).unwrap()
        };
        assert_eq!(
            read("call"),
            serde_json::json!({
                "ord": 1, "actor_user": 2, "actor_token": 3, "purpose": "purpose",
                "invalidates": true, "link_hash": "\\xabcd", "expires_at": 4,
                "message_id": "message_id", "kind": "kind", "link": "link",
                "link_expires_at": 5, "options": "options", "request_id": "request_id",
                "at_ms": 6, "idem_key": "idem_key", "fingerprint": "fingerprint",
                "key_expires_at": 7, "caller": "caller", "email_key": "email_key",
                "reveal": true,
            })
        );
        assert_eq!(
            read("user"),
            serde_json::json!({
                "target": 8, "rate_key": "rate_key", "recipient": "recipient",
                "subject": "subject", "body_text": "body_text", "body_html": "body_html",
                "link_name": "link_name",
            })
        );
        schema.drop_schema().await;
    }
}
