//! Resolved configuration of a running pwmail server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use pwmail_store::Rate;
use url::Url;

/// Shortest and longest link lifetime accepted. NIST SP 800-63B wants email
/// codes to expire within 24 h; anything above that is allowed only up to a
/// week and logged as a warning.
pub const LINK_TTL_MIN: Duration = Duration::from_secs(5 * 60);
pub const LINK_TTL_RECOMMENDED_MAX: Duration = Duration::from_secs(24 * 3600);
pub const LINK_TTL_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// Largest accepted request body. A legal body holds an email of at most
/// 1024 ASCII characters and a namespace of at most 1024 characters, each of
/// which may be written as a 6-byte JSON `\uXXXX` escape: about 7.2 KiB plus
/// syntax. 16 KiB admits all of that with room for whitespace; anything
/// larger is refused with 413.
pub const REQUEST_BODY_MAX_BYTES: usize = 16 * 1024;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    /// Longest wait for a database connection (PostgreSQL).
    pub db_acquire_timeout: Duration,
    /// Base of the links in emails. Never taken from the request's Host.
    pub public_url: Url,
    pub mail: MailConfig,
    pub link_ttl: Duration,
    /// Per target user: how often one user may be emailed.
    pub user_cooldown: Rate,
    /// Per calling API token.
    pub token_rate: Rate,
    /// Above this many messages waiting, new emails are refused with 503.
    pub max_backlog: u64,
    /// Unknown reset links one client address may open.
    pub reset_guess_rate: Rate,
    pub password_min_length: usize,
    /// Password hashes computed at once (19 MiB each).
    pub hash_concurrency: usize,
    /// Submissions waiting for a hash slot beyond which the page says "busy".
    pub hash_queue: usize,
    /// An API call still running after this answers 504.
    pub request_timeout: Duration,
    pub product_name: String,
    pub mail_from: String,
    pub support_contact: Option<String>,
    pub bootstrap_admin_email: String,
}

#[derive(Clone, Debug)]
pub enum MailConfig {
    /// Each message is written as an `.eml` file into this directory.
    Directory(PathBuf),
    /// Messages go to an SMTP relay.
    Smtp(crate::transport::SmtpConfig),
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--public-url {0:?} is not an absolute http(s) URL")]
    PublicUrl(String),
    #[error("--link-ttl must be between {min} and {max} seconds, got {got}")]
    LinkTtl { min: u64, max: u64, got: u64 },
    #[error("--{name} must be positive")]
    NotPositive { name: &'static str },
}

pub fn parse_public_url(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|_| ConfigError::PublicUrl(text.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::PublicUrl(text.to_string()));
    }
    Ok(url)
}

pub fn check_link_ttl(ttl: Duration) -> Result<Duration, ConfigError> {
    if ttl < LINK_TTL_MIN || ttl > LINK_TTL_MAX {
        return Err(ConfigError::LinkTtl {
            min: LINK_TTL_MIN.as_secs(),
            max: LINK_TTL_MAX.as_secs(),
            got: ttl.as_secs(),
        });
    }
    if ttl > LINK_TTL_RECOMMENDED_MAX {
        tracing::warn!(
            link_ttl_secs = ttl.as_secs(),
            "link lifetime exceeds the 24 h NIST SP 800-63B recommends for emailed codes"
        );
    }
    Ok(ttl)
}

/// `count` calls per `period_secs`, as a GCRA rate.
pub fn rate(name: &'static str, count: u32, period_secs: u64) -> Result<Rate, ConfigError> {
    if count == 0 || period_secs == 0 {
        return Err(ConfigError::NotPositive { name });
    }
    Ok(Rate {
        period_ms: (period_secs * 1000 / u64::from(count)).max(1) as i64,
        burst: count,
    })
}

impl ServerConfig {
    /// The link the user follows to set a new password.
    pub fn reset_link(&self, token: &str) -> String {
        let base = self.public_url.as_str().trim_end_matches('/');
        format!("{base}/reset/{token}")
    }

    /// Right-hand side of Message-IDs: the sender's domain.
    pub fn mail_domain(&self) -> String {
        self.mail_from
            .rsplit_once('@')
            .map(|(_, domain)| domain.trim_end_matches('>').trim())
            .filter(|d| !d.is_empty())
            .unwrap_or("localhost")
            .to_string()
    }
}
