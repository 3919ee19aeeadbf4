//! The SMTP relay settings: `--smtp-url` and the flags beside it.

use std::time::Duration;

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
                let asked = match tls {
                    Some(tls) => format!("{scheme}://…?tls={tls}"),
                    None => format!("{scheme}://"),
                };
                return Err(SmtpConfigError::Url(format!(
                    "{asked} is not a way to reach a relay; use smtp://…?tls=starttls|tls|none or smtps://…"
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
