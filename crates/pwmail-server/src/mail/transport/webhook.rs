//! The delivery hook: each message POSTed as JSON to the operator's
//! endpoint, signed as the Standard Webhooks specification says
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,…`), for
//! operators who send mail through an HTTP API of their own choosing.
//!
//! Any 2xx is sent (a 202 too: Kratos retried on it and emailed users
//! twice, kratos#3399). 408, 429 and 5xx are retried with the dispatcher's
//! backoff, waiting at least as long as `Retry-After` asks; any other
//! answer makes the message dead with the answer's first 200 characters.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use pwmail_client::reqwest;
use serde::Serialize;

use super::{SendError, Transport, error_chain};
use crate::config::hook::HookConfig;
use crate::mail::Letter;

/// The payload's `type`.
pub const EVENT_TYPE: &str = "email.send";

/// How much of an answer is kept as the reason.
const ANSWER_KEPT: usize = 200;

/// The longest `Retry-After` honoured; a longer one is capped (the
/// message's age limit still applies).
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(3600);

pub struct WebhookTransport {
    client: reqwest::Client,
    url: reqwest::Url,
    /// The URL as logs and errors show it (no query, no credentials).
    shown: String,
    signer: standardwebhooks::Webhook,
    from: String,
}

impl WebhookTransport {
    pub fn new(config: &HookConfig, from: &str) -> Result<Self, reqwest::Error> {
        let client = super::http_client(config.timeout)?;
        Ok(WebhookTransport {
            client,
            url: config.url.clone(),
            shown: config.shown_url(),
            signer: standardwebhooks::Webhook::from_bytes(config.key.clone())
                .expect("from_bytes takes any key"),
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

    /// `payload` as JSON, with its three Standard Webhooks headers.
    fn signed(
        &self,
        id: &str,
        timestamp: i64,
        payload: &impl Serialize,
    ) -> Result<Post, SendError> {
        let body = serde_json::to_vec(payload)
            .map_err(|e| SendError::permanent(format!("writing the hook's JSON: {e}")))?;
        let signature = self
            .signer
            .sign(id, timestamp, &body)
            .map_err(|e| SendError::permanent(format!("signing the hook's request: {e}")))?;
        Ok(Post {
            body,
            headers: [
                (standardwebhooks::HEADER_WEBHOOK_ID, id.to_string()),
                (
                    standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                    timestamp.to_string(),
                ),
                (standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature),
            ],
        })
    }

    async fn post(
        &self,
        post: Post,
        redact: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<String, SendError> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .body(post.body);
        for (name, value) in post.headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| {
            // reqwest's error would name the whole URL, query and all.
            SendError::transient(format!(
                "the mail hook {}: {}",
                self.shown,
                error_chain(&e.without_url())
            ))
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after)
            .map(|wait| wait.min(LONGEST_RETRY_AFTER));
        let text = response.text().await.unwrap_or_default();
        let answer: String = redact(&text).chars().take(ANSWER_KEPT).collect();
        let answer = answer.trim();
        let said = if answer.is_empty() {
            format!("the mail hook answered HTTP {status}")
        } else {
            format!("the mail hook answered HTTP {status}: {answer}")
        };
        let code = status.as_u16();
        if status.is_success() {
            Ok(said)
        } else if code == 408 || code == 429 || status.is_server_error() {
            Err(SendError {
                retry_after,
                ..SendError::transient(said)
            })
        } else {
            Err(SendError::permanent(said))
        }
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

    fn describe(&self) -> String {
        format!("the mail hook {}", self.shown)
    }
}

/// A signed request: its JSON body and Standard Webhooks headers.
struct Post {
    body: Vec<u8>,
    headers: [(&'static str, String); 3],
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

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn rfc3339(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 10.2.3).
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.timestamp() - unix_now();
    Some(Duration::from_secs(wait.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 "), Some(Duration::ZERO));
        let in_a_minute = chrono::Utc::now() + chrono::Duration::seconds(61);
        let date = in_a_minute.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let wait = retry_after(&date).unwrap().as_secs();
        assert!((58..=61).contains(&wait), "{date}: {wait}");
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
