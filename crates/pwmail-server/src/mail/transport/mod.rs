//! Where queued messages go: `.eml` files (the embedded default), an SMTP
//! relay, the operator's delivery hook (HTTP) or Amazon SES. The
//! dispatcher only sees the [`Transport`] trait; the MIME transports write
//! their bytes with one [`Composer`], which DKIM-signs them when asked.

pub mod directory;
pub mod ses;
pub mod smtp;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;

use crate::dkim::{DkimSigner, Signed};
use crate::mail::{self, Built, Letter, MailError};

pub use directory::DirectoryTransport;
pub use ses::SesTransport;
pub use smtp::SmtpTransport;
pub use webhook::WebhookTransport;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying: 4xx replies, connection trouble, timeouts.
    Transient,
    /// Retrying cannot help: 5xx replies, an unusable message.
    Permanent,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub failure: Failure,
    pub message: String,
    /// The receiver asked for this wait before the next attempt (an HTTP
    /// `Retry-After`); the retry waits at least this long.
    pub retry_after: Option<Duration>,
    /// A permanent failure of the recipient's address itself (a 5xx to
    /// RCPT, a 5.1.x status, SES refusing the address): the address is
    /// suppressed. Never for the relay's or the hook's own trouble.
    pub recipient: bool,
}

impl SendError {
    pub(crate) fn permanent(message: impl Into<String>) -> Self {
        SendError {
            failure: Failure::Permanent,
            message: message.into(),
            retry_after: None,
            recipient: false,
        }
    }

    /// A permanent failure that is the recipient address's.
    pub(crate) fn recipient(message: impl Into<String>) -> Self {
        SendError {
            recipient: true,
            ..SendError::permanent(message)
        }
    }

    pub(crate) fn transient(message: impl Into<String>) -> Self {
        SendError {
            failure: Failure::Transient,
            message: message.into(),
            retry_after: None,
            recipient: false,
        }
    }
}

/// Where messages go. `send` returns the receiving side's reply.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    async fn send(&self, letter: &Letter<'_>) -> Result<String, SendError>;

    /// Reaches the receiving side as a send would, without a message
    /// (`serve --check-mail`): what it answered.
    async fn check(&self) -> Result<String, SendError>;

    /// Where it sends, for the start-up line and `mail test`; no secret.
    fn describe(&self) -> String;

    /// Which kind it is (`smtp`, `hook`, `ses`, `files`): a trace attribute.
    fn kind(&self) -> &'static str;
}

/// Writes the MIME message of a letter, from `--mail-from`, and signs it
/// with DKIM when a key is configured: last, once every header is final,
/// so the signed bytes are the bytes sent.
#[derive(Clone)]
pub struct Composer {
    pub from: Mailbox,
    pub dkim: Option<Arc<DkimSigner>>,
}

impl Composer {
    pub fn compose(&self, letter: &Letter<'_>, signed: Signed) -> Result<Built, MailError> {
        let mut built = mail::build_message(letter, &self.from)?;
        if let Some(dkim) = &self.dkim {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let header = dkim
                .sign(&built.bytes, now, signed)
                .map_err(|e| MailError::Build(e.to_string()))?;
            let mut bytes = Vec::with_capacity(header.len() + built.bytes.len());
            bytes.extend_from_slice(header.as_bytes());
            bytes.extend_from_slice(&built.bytes);
            built.bytes = bytes;
        }
        Ok(built)
    }
}

pub(crate) use crate::hook_post::{error_chain, http_client};
