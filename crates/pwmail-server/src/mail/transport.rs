//! Where queued messages go: `.eml` files (the embedded default) or an SMTP
//! relay. The dispatcher only sees the [`Transport`] trait.

use std::path::PathBuf;

use crate::config::smtp::{SmtpConfig, SmtpConfigError, TlsMode};
use crate::mail::smtp_pool::{PoolError, Security, SmtpPool};
use crate::mail::{self, Letter};
use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};

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
}

impl SendError {
    pub(crate) fn permanent(message: impl Into<String>) -> Self {
        SendError {
            failure: Failure::Permanent,
            message: message.into(),
        }
    }

    fn transient(message: impl Into<String>) -> Self {
        SendError {
            failure: Failure::Transient,
            message: message.into(),
        }
    }
}

/// Where messages go. `send` returns the receiving side's reply.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    async fn send(&self, letter: &Letter<'_>) -> Result<String, SendError>;
}

/// Each message becomes `<mail-dir>/<message-id>.eml`.
///
/// Written to a temporary name, synced, then renamed, so a reader never sees
/// half a file; the name comes from the stable Message-ID, so a retry after a
/// crash overwrites instead of duplicating.
pub struct DirectoryTransport {
    dir: PathBuf,
    from: Mailbox,
}

impl DirectoryTransport {
    pub fn new(dir: PathBuf, from: Mailbox) -> std::io::Result<Self> {
        crate::files::create_private_dir(&dir)?;
        Ok(DirectoryTransport { dir, from })
    }
}

#[async_trait]
impl Transport for DirectoryTransport {
    async fn send(&self, letter: &Letter<'_>) -> Result<String, SendError> {
        let bytes = mail::build_message(letter, &self.from)
            .map_err(|e| SendError::permanent(e.to_string()))?
            .bytes;
        let stem: String = letter
            .message_id
            .chars()
            .take_while(|c| *c != '@')
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let final_path = self.dir.join(format!("{stem}.eml"));
        let tmp_path = self.dir.join(format!(".{stem}.eml.tmp"));
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
            crate::files::write_private(&tmp_path, &bytes)?;
            std::fs::rename(&tmp_path, &final_path)?;
            Ok(final_path)
        })
        .await
        .map_err(|e| SendError::transient(e.to_string()))?
        .map_err(|e| SendError::transient(e.to_string()))?;
        Ok(format!("written to {}", written.display()))
    }
}

/// SMTP over rustls (aws-lc-rs): lettre speaks the protocol, on
/// connections from [`SmtpPool`] (TCP_NODELAY; see there why).
pub struct SmtpTransport {
    pool: SmtpPool,
    from: Mailbox,
}

impl SmtpTransport {
    pub fn new(config: &SmtpConfig, from: Mailbox) -> Result<Self, SmtpConfigError> {
        let tls_params = || -> Result<TlsParameters, SmtpConfigError> {
            let mut builder = TlsParameters::builder(config.host.clone());
            if let Some(pem) = &config.ca_pem {
                let cert = Certificate::from_pem(pem)
                    .map_err(|e| SmtpConfigError::Tls(format!("CA certificate: {e}")))?;
                builder = builder.add_root_certificate(cert);
            }
            builder
                .build_rustls()
                .map_err(|e| SmtpConfigError::Tls(e.to_string()))
        };
        let security = match config.tls {
            TlsMode::StartTls => Security::StartTls(tls_params()?),
            TlsMode::Tls => Security::Implicit(tls_params()?),
            TlsMode::None => Security::None,
        };
        let credentials = config.username.as_ref().map(|user| {
            Credentials::new(user.clone(), config.password.clone().unwrap_or_default())
        });
        Ok(SmtpTransport {
            pool: SmtpPool::new(
                config.host.clone(),
                config.port,
                config.timeout,
                security,
                credentials,
                config.pool_size,
            ),
            from,
        })
    }
}

#[async_trait]
impl Transport for SmtpTransport {
    async fn send(&self, letter: &Letter<'_>) -> Result<String, SendError> {
        let mime = mail::build_message(letter, &self.from)
            .map_err(|e| SendError::permanent(e.to_string()))?;
        match self.pool.send(&mime.envelope, &mime.bytes).await {
            Ok(response) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(PoolError::Smtp(e)) => Err(classify(&e)),
            Err(PoolError::Io(e)) => Err(SendError::transient(error_chain(&e))),
        }
    }
}

/// 4xx and anything short of a reply (network, TLS, timeout) is transient; a
/// 5xx reply is permanent, except authentication refusals, which are the
/// relay's configuration and not the message's fault.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = error_chain(e);
    match e.status() {
        Some(code) if e.is_permanent() => {
            let code: u16 = code.to_string().parse().unwrap_or(500);
            if matches!(code, 530 | 534 | 535 | 538) {
                SendError::transient(format!("SMTP authentication refused: {text}"))
            } else {
                SendError::permanent(text)
            }
        }
        _ => SendError::transient(text),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
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
