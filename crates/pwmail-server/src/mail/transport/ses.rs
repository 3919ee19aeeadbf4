//! Amazon SES (API v2): `SendEmail` with `Content.Raw`, the MIME message
//! pwmail builds (DKIM-signed without `Message-ID` and `Date`, which SES
//! replaces), over HTTPS signed with SigV4.
//!
//! The `aws-sigv4` crate signs; the SDK is not used: it would add a large
//! build (on two cores) for one call, and SigV4 over reqwest is the same
//! request. Throttling, 5xx and credential or account trouble are retried
//! (the message is not at fault); `MessageRejected` and other malformed-
//! request answers make the message dead with SES's reason. SES's
//! `MessageId` is kept as the row's reply (`email_status` shows it).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine;
use pwmail_client::reqwest;

use super::{Composer, SendError, Transport, error_chain};
use crate::config::ses::SesConfig;
use crate::dkim::Signed;
use crate::mail::Letter;

/// How much of SES's message is kept as the reason.
const ANSWER_KEPT: usize = 200;

const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The error types that are the message's fault: retrying cannot help.
const PERMANENT: &[&str] = &[
    "MessageRejected",
    "BadRequestException",
    "InvalidParameterValue",
    "ValidationError",
];

pub struct SesTransport {
    client: reqwest::Client,
    config: SesConfig,
    composer: Composer,
}

impl SesTransport {
    pub fn new(config: &SesConfig, composer: Composer) -> Result<Self, reqwest::Error> {
        let client = super::http_client(config.timeout)?;
        Ok(SesTransport {
            client,
            config: config.clone(),
            composer,
        })
    }

    /// `method path` with `body`, signed: what SES answered.
    async fn call(&self, method: &str, path: &str, body: Vec<u8>) -> Result<Answer, SendError> {
        let url = self
            .config
            .endpoint
            .join(path)
            .map_err(|e| SendError::permanent(format!("SES endpoint: {e}")))?;
        let credentials = &self.config.credentials;
        let identity = aws_credential_types::Credentials::new(
            &credentials.access_key_id,
            &credentials.secret_access_key,
            credentials.session_token.clone(),
            None,
            "pwmail",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.config.region)
            .name("ses")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| SendError::permanent(format!("SigV4: {e}")))?
            .into();
        let content_type = [("content-type", "application/json")];
        let headers = if body.is_empty() {
            &[][..]
        } else {
            &content_type[..]
        };
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| SendError::permanent(format!("SigV4: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| SendError::permanent(format!("SigV4: {e}")))?
            .into_parts();
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| SendError::permanent(e.to_string()))?;
        let mut request = self.client.request(method, url);
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| {
            SendError::transient(format!(
                "SES at {}: {}",
                self.config.endpoint,
                error_chain(&e.without_url())
            ))
        })?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|secs| Duration::from_secs(secs).min(LONGEST_RETRY_AFTER));
        let error_type = header("x-amzn-errortype");
        let text = response.text().await.unwrap_or_default();
        Ok(Answer {
            status,
            retry_after,
            error_type,
            text,
        })
    }
}

/// SES's answer to one call.
struct Answer {
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    /// `x-amzn-ErrorType`, when it sent one.
    error_type: Option<String>,
    text: String,
}

impl Answer {
    /// An error answer as a `SendError`: its type and message, redacted. A
    /// `MessageRejected` that names `recipient` is the address's failure.
    fn refusal(&self, recipient: Option<&str>, redact: &dyn Fn(&str) -> String) -> SendError {
        let (status, retry_after) = (self.status, self.retry_after);
        let (kind, message) = error_of(self.error_type.as_deref(), &self.text);
        let message: String = redact(&message).chars().take(ANSWER_KEPT).collect();
        let said = format!("SES answered HTTP {status}: {kind}: {message}");
        let permanent = status.is_client_error()
            && status.as_u16() != 429
            && PERMANENT.contains(&kind.as_str());
        let names_recipient = recipient.is_some_and(|to| {
            kind == "MessageRejected" && message.to_lowercase().contains(&to.to_lowercase())
        });
        if permanent && names_recipient {
            SendError::recipient(said)
        } else if permanent {
            SendError::permanent(said)
        } else {
            SendError {
                retry_after,
                ..SendError::transient(said)
            }
        }
    }
}

#[async_trait]
impl Transport for SesTransport {
    async fn send(&self, letter: &Letter<'_>) -> Result<String, SendError> {
        let mime = self
            .composer
            .compose(letter, Signed::ForSes)
            .map_err(|e| SendError::permanent(e.to_string()))?;
        let body = serde_json::to_vec(&serde_json::json!({
            "FromEmailAddress": self.composer.from.to_string(),
            "Destination": { "ToAddresses": [letter.recipient] },
            "Content": { "Raw": {
                "Data": base64::engine::general_purpose::STANDARD.encode(&mime.bytes)
            } },
        }))
        .map_err(|e| SendError::permanent(e.to_string()))?;
        let answer = self.call("POST", "/v2/email/outbound-emails", body).await?;
        let status = answer.status;
        if !status.is_success() {
            return Err(answer.refusal(Some(letter.recipient), &|t| letter.redact(t)));
        }
        let id = serde_json::from_str::<serde_json::Value>(&answer.text)
            .ok()
            .and_then(|v| v["MessageId"].as_str().map(str::to_string));
        Ok(match id {
            Some(id) => format!("SES MessageId {id}"),
            // Accepted all the same (a 2xx): sent, and said so.
            None => format!("SES answered HTTP {status} without a MessageId"),
        })
    }

    /// `GetEmailIdentity` of the sending domain: the credentials, the
    /// region and that SES knows the domain, without sending anything.
    async fn check(&self) -> Result<String, SendError> {
        let address = self.composer.from.email.to_string();
        let domain = self.composer.from.email.domain().to_string();
        let mut last = None;
        for identity in [domain, address] {
            let path = format!("/v2/email/identities/{identity}");
            let answer = self.call("GET", &path, Vec::new()).await?;
            if answer.status.is_success() {
                // Verified if either says so (moto, as SES's stand-in in
                // the tests, reports VerificationStatus SUCCESS with
                // VerifiedForSendingStatus false).
                let json: serde_json::Value =
                    serde_json::from_str(&answer.text).unwrap_or_default();
                let status = json["VerificationStatus"].as_str().unwrap_or("unknown");
                let verified =
                    json["VerifiedForSendingStatus"].as_bool() == Some(true) || status == "SUCCESS";
                return if verified {
                    Ok(format!(
                        "SES ({}) can send as {identity}",
                        self.config.region
                    ))
                } else {
                    Err(SendError::permanent(format!(
                        "SES knows {identity} but it is not verified for sending yet \
                         (VerificationStatus {status})"
                    )))
                };
            }
            let refused = answer.refusal(None, &str::to_string);
            if answer.status.as_u16() != 404 {
                return Err(refused);
            }
            last = Some(refused);
        }
        Err(last
            .map(|e| SendError {
                message: format!(
                    "{}; SES has no identity for the sending domain or address (verify it in SES)",
                    e.message
                ),
                ..e
            })
            .unwrap_or_else(|| SendError::permanent("SES: no identity")))
    }

    fn kind(&self) -> &'static str {
        "ses"
    }

    fn describe(&self) -> String {
        format!(
            "Amazon SES {} at {} (credentials from {})",
            self.config.region, self.config.endpoint, self.config.credentials.source
        )
    }
}

/// The error's type and message from SES's answer: the `x-amzn-ErrorType`
/// header (`Type:more` or `Type`) or the JSON body's `__type`/`code`, and
/// its `message`; an XML body's `<Code>` and `<Message>` otherwise.
fn error_of(header: Option<&str>, text: &str) -> (String, String) {
    let short = |t: &str| {
        let t = t.split(':').next().unwrap_or(t);
        t.rsplit('#').next().unwrap_or(t).trim().to_string()
    };
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        let kind = header
            .map(short)
            .or_else(|| json["__type"].as_str().map(short))
            .or_else(|| json["code"].as_str().map(short))
            .unwrap_or_else(|| "Unknown".into());
        let message = ["message", "Message"]
            .iter()
            .find_map(|k| json[*k].as_str())
            .unwrap_or_default()
            .to_string();
        return (kind, message);
    }
    let between = |open: &str, close: &str| {
        let start = text.find(open)? + open.len();
        let end = text[start..].find(close)? + start;
        Some(text[start..end].trim().to_string())
    };
    let kind = header
        .map(short)
        .or_else(|| between("<Code>", "</Code>"))
        .unwrap_or_else(|| "Unknown".into());
    let message = between("<Message>", "</Message>").unwrap_or_else(|| text.trim().to_string());
    (kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_in_json_and_xml() {
        assert_eq!(
            error_of(
                Some("MessageRejected:http://internal.amazon.com/coral/"),
                r#"{"message":"Email address is not verified."}"#
            ),
            (
                "MessageRejected".into(),
                "Email address is not verified.".into()
            )
        );
        assert_eq!(
            error_of(
                None,
                r#"{"__type":"com.amazon#TooManyRequestsException","Message":"slow down"}"#
            ),
            ("TooManyRequestsException".into(), "slow down".into())
        );
        assert_eq!(
            error_of(
                None,
                "<ErrorResponse><Error><Code>MessageRejected</Code><Message>Did not have \
                 authority</Message></Error></ErrorResponse>"
            ),
            ("MessageRejected".into(), "Did not have authority".into())
        );
    }

    #[test]
    fn only_the_messages_own_faults_are_permanent() {
        let st = |code| reqwest::StatusCode::from_u16(code).unwrap();
        let refusal = |code, kind: &str| {
            Answer {
                status: st(code),
                retry_after: None,
                error_type: Some(kind.into()),
                text: "{}".into(),
            }
            .refusal(None, &str::to_string)
            .failure
        };
        use crate::mail::transport::Failure::*;
        assert_eq!(refusal(400, "MessageRejected"), Permanent);
        assert_eq!(refusal(429, "TooManyRequestsException"), Transient);
        assert_eq!(refusal(400, "Throttling"), Transient);
        assert_eq!(refusal(403, "InvalidSignatureException"), Transient);
        assert_eq!(refusal(400, "SendingPausedException"), Transient);
        assert_eq!(refusal(500, "InternalFailure"), Transient);
        // MessageRejected naming the recipient is the address's failure.
        let rejected = |text: &str| Answer {
            status: st(400),
            retry_after: None,
            error_type: Some("MessageRejected".into()),
            text: text.into(),
        };
        let naming = rejected(r#"{"message":"Address blacklisted: Gone@Example.com"}"#)
            .refusal(Some("gone@example.com"), &str::to_string);
        assert!(naming.recipient && naming.failure == Permanent);
        let sender = rejected(r#"{"message":"Email address is not verified: it@example.com"}"#)
            .refusal(Some("gone@example.com"), &str::to_string);
        assert!(!sender.recipient && sender.failure == Permanent);
    }
}
