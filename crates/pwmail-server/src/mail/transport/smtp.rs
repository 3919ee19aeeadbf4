//! SMTP over rustls, on connections from [`SmtpPool`].

use async_trait::async_trait;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};

use super::{Composer, SendError, Transport, error_chain};
use crate::config::smtp::{SmtpConfig, SmtpConfigError, TlsMode};
use crate::dkim::Signed;
use crate::mail::Letter;
use crate::mail::smtp_pool::{PoolError, Security, SmtpPool};

/// SMTP over rustls (aws-lc-rs): lettre speaks the protocol, on
/// connections from [`SmtpPool`] (TCP_NODELAY; see there why).
pub struct SmtpTransport {
    pool: SmtpPool,
    composer: Composer,
    /// host:port, for `describe`.
    relay: String,
}

impl SmtpTransport {
    pub fn new(config: &SmtpConfig, composer: Composer) -> Result<Self, SmtpConfigError> {
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
            composer,
            relay: format!("{}:{}", config.host, config.port),
        })
    }
}

#[async_trait]
impl Transport for SmtpTransport {
    async fn send(&self, letter: &Letter<'_>) -> Result<String, SendError> {
        let mime = self
            .composer
            .compose(letter, Signed::Whole)
            .map_err(|e| SendError::permanent(e.to_string()))?;
        match self.pool.send(&mime.envelope, &mime.bytes).await {
            Ok(response) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(PoolError::Smtp(e)) => Err(classify(&e, false)),
            Err(PoolError::Recipient(e)) => Err(classify(&e, true)),
            Err(PoolError::Io(e)) => Err(SendError::transient(error_chain(&e))),
        }
    }

    async fn check(&self) -> Result<String, SendError> {
        self.pool.check().await.map_err(|e| match e {
            PoolError::Smtp(e) | PoolError::Recipient(e) => classify(&e, false),
            PoolError::Io(e) => SendError::transient(error_chain(&e)),
        })
    }

    fn kind(&self) -> &'static str {
        "smtp"
    }

    fn describe(&self) -> String {
        format!("SMTP relay {}", self.relay)
    }
}

/// 4xx and anything short of a reply (network, TLS, timeout) is transient; a
/// 5xx reply is permanent, except authentication refusals, which are the
/// relay's configuration and not the message's fault. A permanent refusal
/// is the recipient address's (`at_rcpt`: the reply to RCPT TO, or an
/// enhanced status 5.1.x, RFC 3463's "addressing status") or the message's.
fn classify(e: &lettre::transport::smtp::Error, at_rcpt: bool) -> SendError {
    let text = error_chain(e);
    match e.status() {
        Some(code) if e.is_permanent() => {
            let code: u16 = code.to_string().parse().unwrap_or(500);
            if matches!(code, 530 | 534 | 535 | 538) {
                SendError::transient(format!("SMTP authentication refused: {text}"))
            } else if at_rcpt || addressing_status(&text) {
                SendError::recipient(if at_rcpt {
                    format!("RCPT TO refused: {text}")
                } else {
                    text
                })
            } else {
                SendError::permanent(text)
            }
        }
        _ => SendError::transient(text),
    }
}

/// Whether a reply carries an enhanced status code 5.1.x (bad mailbox,
/// bad domain, moved, no MX…: the destination address), other than 5.1.7
/// and 5.1.8, which are the sender's.
fn addressing_status(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || c == ':' || c == '(' || c == ')')
        .any(|word| {
            word.strip_prefix("5.1.").is_some_and(|rest| {
                !rest.is_empty()
                    && rest.len() <= 3
                    && rest.bytes().all(|b| b.is_ascii_digit())
                    && rest != "7"
                    && rest != "8"
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_addressing_status_is_5_1_x() {
        assert!(addressing_status(
            "permanent error (550): 5.1.1 <a@b.c>: user unknown"
        ));
        assert!(addressing_status("550 5.1.10 null MX"));
        assert!(!addressing_status("550 5.7.1 relaying denied"));
        assert!(!addressing_status("554 5.6.0 message content rejected"));
        assert!(!addressing_status("550 version 5.1.2024 of the filter"));
        assert!(!addressing_status("553 5.1.8 sender domain does not exist"));
    }
}
