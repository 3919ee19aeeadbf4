//! Where queued messages go: `.eml` files (the embedded default) or an SMTP
//! relay. The dispatcher only sees the [`Transport`] trait.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use pwmail_store::OutboxMessage;

use crate::mail;
use crate::mail::smtp_pool::{PoolError, Security, SmtpPool};

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
    fn permanent(message: impl Into<String>) -> Self {
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
    async fn send(&self, message: &OutboxMessage) -> Result<String, SendError>;
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
        std::fs::create_dir_all(&dir)?;
        Ok(DirectoryTransport { dir, from })
    }
}

#[async_trait]
impl Transport for DirectoryTransport {
    async fn send(&self, message: &OutboxMessage) -> Result<String, SendError> {
        let mime = mail::build_message(&message.message, &self.from, message.created_at)
            .map_err(|e| SendError::permanent(e.to_string()))?;
        let bytes = mime.formatted();
        let stem: String = message
            .message
            .message_id
            .chars()
            .take_while(|c| *c != '@')
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let final_path = self.dir.join(format!("{stem}.eml"));
        let tmp_path = self.dir.join(format!(".{stem}.eml.tmp"));
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp_path)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp_path, &final_path)?;
            Ok(final_path)
        })
        .await
        .map_err(|e| SendError::transient(e.to_string()))?
        .map_err(|e| SendError::transient(e.to_string()))?;
        Ok(format!("written to {}", written.display()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS, which is required (587).
    StartTls,
    /// TLS from the first byte (465).
    Tls,
    /// No encryption: only for loopback relays, or when forced.
    None,
}

/// An SMTP relay. `Debug` leaves the password out.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Extra trusted root (PEM), for relays with a private CA.
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
    pub pool_size: u32,
}

impl SmtpConfig {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_POOL_SIZE: u32 = 8;
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("custom_ca", &self.ca_pem.is_some())
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    #[error("--smtp-url: {0}")]
    Url(String),
    #[error(
        "refusing unencrypted SMTP to non-loopback host {0}; use tls=starttls or smtps://, \
         or pass --smtp-allow-insecure"
    )]
    Insecure(String),
    #[error("SMTP TLS setup: {0}")]
    Tls(String),
}

impl SmtpConfig {
    /// `smtp://[user[:password]@]host[:port][?tls=starttls|none]` (default
    /// STARTTLS, port 587) or `smtps://…` (implicit TLS, port 465).
    pub fn from_url(text: &str) -> Result<Self, SmtpConfigError> {
        let url = url::Url::parse(text).map_err(|e| SmtpConfigError::Url(e.to_string()))?;
        let host = url
            .host_str()
            .ok_or_else(|| SmtpConfigError::Url("no host".into()))?
            .trim_matches(['[', ']'])
            .to_string();
        let query_tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let tls = match (url.scheme(), query_tls.as_deref()) {
            ("smtps", None | Some("tls")) => TlsMode::Tls,
            ("smtp", None | Some("starttls") | Some("required")) => TlsMode::StartTls,
            ("smtp", Some("tls")) => TlsMode::Tls,
            ("smtp", Some("none")) => TlsMode::None,
            (scheme, tls) => {
                return Err(SmtpConfigError::Url(format!(
                    "unsupported scheme/tls combination {scheme:?}/{tls:?}; use smtp://…?tls=starttls|tls|none or smtps://…"
                )));
            }
        };
        let port = url.port().unwrap_or(match tls {
            TlsMode::Tls => 465,
            TlsMode::StartTls | TlsMode::None => 587,
        });
        let decode = |s: &str| {
            percent_decode(s).map_err(|_| SmtpConfigError::Url("bad percent-encoding".into()))
        };
        let username = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = url.password().map(decode).transpose()?;
        Ok(SmtpConfig {
            host,
            port,
            tls,
            username,
            password,
            ca_pem: None,
            timeout: SmtpConfig::DEFAULT_TIMEOUT,
            pool_size: SmtpConfig::DEFAULT_POOL_SIZE,
        })
    }

    /// Refuses plain-text SMTP beyond this machine unless `forced`.
    pub fn check_security(&self, forced: bool) -> Result<(), SmtpConfigError> {
        if self.tls != TlsMode::None || forced || is_loopback(&self.host) {
            return Ok(());
        }
        Err(SmtpConfigError::Insecure(self.host.clone()))
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn percent_decode(s: &str) -> Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(())?;
            let hex = std::str::from_utf8(hex).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
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
    async fn send(&self, message: &OutboxMessage) -> Result<String, SendError> {
        let mime = mail::build_message(&message.message, &self.from, message.created_at)
            .map_err(|e| SendError::permanent(e.to_string()))?;
        match self.pool.send(mime.envelope(), &mime.formatted()).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let c = SmtpConfig::from_url("smtp://mailer:p%40ss@relay.example.com").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.tls),
            ("relay.example.com", 587, TlsMode::StartTls)
        );
        assert_eq!(c.username.as_deref(), Some("mailer"));
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        assert!(
            !format!("{c:?}").contains("p@ss"),
            "Debug hides the password"
        );

        let c = SmtpConfig::from_url("smtps://relay.example.com").unwrap();
        assert_eq!((c.port, c.tls), (465, TlsMode::Tls));
        let c = SmtpConfig::from_url("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!((c.port, c.tls), (2525, TlsMode::None));
        assert!(c.check_security(false).is_ok(), "loopback may be plain");

        let c = SmtpConfig::from_url("smtp://relay.example.com?tls=none").unwrap();
        assert!(matches!(
            c.check_security(false),
            Err(SmtpConfigError::Insecure(_))
        ));
        assert!(c.check_security(true).is_ok());
        assert!(SmtpConfig::from_url("http://x").is_err());
        assert!(SmtpConfig::from_url("smtp://x?tls=maybe").is_err());
    }
}
