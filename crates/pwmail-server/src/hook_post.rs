//! A signed POST to an endpoint of the operator's, as the Standard
//! Webhooks specification has it (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,…`): the delivery hook's messages and the
//! events both go this way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pwmail_client::reqwest;
use serde::Serialize;

use crate::config::hook::HookConfig;

/// How much of an answer is kept as the reason.
const ANSWER_KEPT: usize = 200;

/// The longest `Retry-After` honoured; a longer one is capped.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// One endpoint, its signing key, and what logs and errors call it.
pub struct HookPoster {
    client: reqwest::Client,
    url: reqwest::Url,
    /// What messages call it: "the mail hook".
    noun: String,
    /// That and the URL as errors may show it (no query, no credentials).
    named: String,
    signer: standardwebhooks::Webhook,
}

/// A signed request: its JSON body and Standard Webhooks headers.
pub struct Post {
    body: Vec<u8>,
    headers: [(&'static str, String); 3],
}

/// An answer other than 2xx, or none.
#[derive(Debug)]
pub struct Refusal {
    /// What happened, for the row and the log; never the URL's secrets.
    pub message: String,
    /// 408, 429, 5xx or no answer at all: worth trying again.
    pub retryable: bool,
    /// What `Retry-After` asked for, capped at an hour.
    pub retry_after: Option<Duration>,
}

impl HookPoster {
    /// `noun` names the endpoint in messages ("the mail hook").
    pub fn new(config: &HookConfig, noun: &str) -> Result<Self, reqwest::Error> {
        Ok(HookPoster {
            client: http_client(config.timeout)?,
            url: config.url.clone(),
            noun: noun.to_string(),
            named: format!("{noun} {}", config.shown_url()),
            signer: standardwebhooks::Webhook::from_bytes(config.key.clone())
                .expect("from_bytes takes any key"),
        })
    }

    /// "the mail hook https://host/path".
    pub fn describe(&self) -> &str {
        &self.named
    }

    /// `payload` as JSON, signed for message `id` at `timestamp` (seconds).
    pub fn signed(
        &self,
        id: &str,
        timestamp: i64,
        payload: &impl Serialize,
    ) -> Result<Post, String> {
        let body = serde_json::to_vec(payload).map_err(|e| format!("writing the JSON: {e}"))?;
        let signature = self
            .signer
            .sign(id, timestamp, &body)
            .map_err(|e| format!("signing the request: {e}"))?;
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

    /// Posts `post`; 2xx is what the endpoint answered, in words. The
    /// answer's text goes through `redact` before it is kept.
    pub async fn post(
        &self,
        post: Post,
        redact: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<String, Refusal> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .body(post.body);
        for (name, value) in post.headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| Refusal {
            // reqwest's error would name the whole URL, query and all.
            message: format!("{}: {}", self.named, error_chain(&e.without_url())),
            retryable: true,
            retry_after: None,
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
        let noun = &self.noun;
        let said = if answer.is_empty() {
            format!("{noun} answered HTTP {status}")
        } else {
            format!("{noun} answered HTTP {status}: {answer}")
        };
        let code = status.as_u16();
        if status.is_success() {
            return Ok(said);
        }
        Err(Refusal {
            message: said,
            retryable: code == 408 || code == 429 || status.is_server_error(),
            retry_after,
        })
    }
}

/// The HTTP client of the HTTP endpoints (the hook, events, SES):
/// `timeout` to connect and for the whole answer, and no redirect followed
/// (one could lead a message, and its link, elsewhere, plain HTTP included).
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("pwmail/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// An error and its sources, each once.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A time as the payloads write it.
pub(crate) fn rfc3339(millis: i64) -> String {
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
