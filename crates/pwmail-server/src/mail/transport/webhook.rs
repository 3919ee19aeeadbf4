//! The delivery hook: each message POSTed as JSON to the operator's
//! endpoint, signed as the Standard Webhooks specification says
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,…`), for
//! operators who send mail through an HTTP API of their own choosing.
//!
//! Any 2xx is sent (a 202 too: Kratos retried on it and emailed users
//! twice, kratos#3399). 408, 429 and 5xx are retried with the dispatcher's
//! backoff, waiting at least as long as `Retry-After` asks; any other
//! answer makes the message dead with the answer's first 200 characters.

use async_trait::async_trait;
use pwmail_client::reqwest;
use serde::Serialize;

use super::{SendError, Transport};
use crate::config::hook::HookConfig;
use crate::hook_post::{HookPoster, Post, Refusal, rfc3339, unix_now};
use crate::mail::Letter;

/// The payload's `type`.
pub const EVENT_TYPE: &str = "email.send";

pub struct WebhookTransport {
    poster: HookPoster,
    from: String,
}

impl WebhookTransport {
    pub fn new(config: &HookConfig, from: &str) -> Result<Self, reqwest::Error> {
        Ok(WebhookTransport {
            poster: HookPoster::new(config, "the mail hook")?,
            from: from.to_string(),
        })
    }

    /// The request for `letter` at `timestamp` (seconds). Its id is the
    /// Message-ID: the same on every attempt, so a receiver can drop a
    /// repeat.
    fn request(&self, letter: &Letter<'_>, timestamp: i64) -> Result<Post, SendError> {
        let payload = Payload {
            r#type: EVENT_TYPE,
            timestamp: rfc3339(timestamp * 1000),
            data: Data {
                message_id: letter.message_id,
                kind: letter.kind,
                to: letter.recipient,
                from: &self.from,
                subject: &letter.subject,
                text: &letter.text,
                html: &letter.html,
                locale: letter.lang.tag(),
                user: User {
                    id: letter.user_id.map(|id| id.0),
                    email: letter.recipient,
                    name: letter.user_name,
                },
                link_expires_at: letter.link_expires_at.map(rfc3339),
            },
        };
        self.signed(letter.message_id, timestamp, &payload)
    }

    fn signed(
        &self,
        id: &str,
        timestamp: i64,
        payload: &impl Serialize,
    ) -> Result<Post, SendError> {
        self.poster
            .signed(id, timestamp, payload)
            .map_err(|e| SendError::permanent(format!("the mail hook's request: {e}")))
    }

    /// Any 2xx is sent; 408, 429 and 5xx (and no answer) are retried, at
    /// least as late as `Retry-After` asks; any other answer is final.
    async fn post(
        &self,
        post: Post,
        redact: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<String, SendError> {
        self.poster.post(post, redact).await.map_err(
            |Refusal {
                 message,
                 retryable,
                 retry_after,
             }| {
                if retryable {
                    SendError {
                        retry_after,
                        ..SendError::transient(message)
                    }
                } else {
                    SendError::permanent(message)
                }
            },
        )
    }
}

#[async_trait]
impl Transport for WebhookTransport {
    async fn send(&self, letter: &Letter<'_>) -> Result<String, SendError> {
        let post = self.request(letter, unix_now())?;
        self.post(post, &|text| letter.redact(text)).await
    }

    /// A signed `pwmail.check` with no message in it: the receiver's answer
    /// says whether the URL, TLS and secret are right.
    async fn check(&self) -> Result<String, SendError> {
        let timestamp = unix_now();
        let id = format!("check-{}", uuid::Uuid::now_v7());
        let payload = serde_json::json!({
            "type": "pwmail.check",
            "timestamp": rfc3339(timestamp * 1000),
            "data": {},
        });
        let post = self.signed(&id, timestamp, &payload)?;
        self.post(post, &str::to_string).await
    }

    fn kind(&self) -> &'static str {
        "hook"
    }

    fn describe(&self) -> String {
        self.poster.describe().to_string()
    }
}

#[derive(Serialize)]
struct Payload<'a> {
    r#type: &'static str,
    timestamp: String,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    message_id: &'a str,
    kind: &'a str,
    to: &'a str,
    from: &'a str,
    subject: &'a str,
    text: &'a str,
    html: &'a str,
    locale: &'a str,
    user: User<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link_expires_at: Option<String>,
}

#[derive(Serialize)]
struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}
