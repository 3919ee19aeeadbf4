//! Resolved configuration of a pwmail server, and its defaults.
//!
//! [`ServerConfig::default()`] is the one set of defaults: the CLI's flags
//! show and fall back to it, and the test harness starts from it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pwmail_i18n::{Catalogs, Locale, LocaleError};
use pwmail_store::Rate;
use url::Url;

pub mod events;
pub mod hook;
pub mod return_to;
pub mod ses;
pub mod smtp;

pub use events::EventsConfig;
pub use hook::HookConfig;
pub use return_to::ReturnTo;
pub use smtp::SmtpConfig;

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

/// The language of links whose call and user name none (`--default-locale`).
pub const DEFAULT_LOCALE: &str = "en";

/// The catalogs with [`DEFAULT_LOCALE`], parsed once per process: every
/// `ServerConfig::default()` (the CLI's flags take their defaults from
/// one each) shares them.
fn default_catalogs() -> Arc<Catalogs> {
    static DEFAULT: std::sync::OnceLock<Arc<Catalogs>> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| catalogs(DEFAULT_LOCALE).expect("the default is a shipped catalog"))
        .clone()
}

/// The shipped catalogs with `tag` as the default.
pub fn catalogs(tag: &str) -> Result<Arc<Catalogs>, ConfigError> {
    let locale = Locale::parse(tag).map_err(ConfigError::DefaultLocale)?;
    Catalogs::new(&locale)
        .map(Arc::new)
        .map_err(ConfigError::DefaultLocale)
}

/// Where the embedded defaults keep the SQLite file and the `.eml` files.
pub const DEFAULT_DATA_DIR: &str = "pwmail-data";

/// The SQLite URL of the database file in `data_dir`.
pub fn sqlite_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}", data_dir.join("pwmail.db").display())
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Built-in HTTPS; `None` serves plain HTTP (behind a TLS proxy).
    pub tls: Option<crate::tls::TlsFiles>,
    pub database_url: String,
    /// Longest wait for a database connection (PostgreSQL).
    pub db_acquire_timeout: Duration,
    /// PostgreSQL connections per process.
    pub db_pool_size: u32,
    /// Base of the links in emails. Never taken from the request's Host.
    pub public_url: Url,
    pub mail: MailConfig,
    /// Signs what leaves (SMTP, `.eml`, SES) with DKIM.
    pub dkim: Option<Arc<crate::dkim::DkimSigner>>,
    /// Files the mail settings were read from that hold secrets (the SMTP
    /// password, the hook's secret, the DKIM key): warned about at start
    /// if others may read them.
    pub secret_files: Vec<PathBuf>,
    /// Where events go, and which (`--events-url`); none: events are off.
    pub events: Option<EventsConfig>,
    pub link_ttl: Duration,
    /// The lifetimes a call may ask for (`ttl_secs`).
    pub link_ttl_range: LinkTtlRange,
    /// Where a done page may send the user back to.
    pub return_to: ReturnTo,
    /// Per target user: how often one user may be emailed.
    pub user_rate: RateLimit,
    /// Per calling API token.
    pub token_rate: RateLimit,
    /// Above this many messages waiting, new emails are refused with 503.
    pub max_backlog: u64,
    /// Unknown reset links one client address may open.
    pub reset_guess_rate: RateLimit,
    pub password_min_length: usize,
    /// Password hashes computed at once (19 MiB each).
    pub hash_concurrency: usize,
    /// Submissions waiting for a hash slot beyond which the page says "busy".
    pub hash_queue: usize,
    /// An API call still running after this answers 504.
    pub request_timeout: Duration,
    /// A connection silent this long, a request not fully arrived this long
    /// after its first byte, or a TLS handshake not done in this time is
    /// closed (with a 408 where one can be written).
    pub client_timeout: Duration,
    /// Connections open at once on the public listener; `None`: derived
    /// from the open-file limit (see `http::connections`).
    pub max_connections: Option<usize>,
    /// A second listener with only `/livez`, `/readyz` and `/metrics`, with
    /// its own small connection budget.
    pub ops_listen: Option<SocketAddr>,
    /// How long an Idempotency-Key and its outcome are kept.
    pub idempotency_ttl: Duration,
    /// How long sent and dead emails, finished links and audit rows are kept.
    pub retention: Retention,
    /// How long an authenticated API token is taken on trust without a
    /// lookup: the longest a revoked token keeps working (zero: none).
    pub auth_cache_ttl: Duration,
    pub product_name: String,
    pub mail_from: String,
    pub support_contact: Option<String>,
    /// Files here replace the built-in templates of the same name (the
    /// emails', and the reset page's under `page/`).
    pub template_dir: Option<PathBuf>,
    /// A stylesheet served with the reset page, after the built-in one.
    pub page_css: Option<PathBuf>,
    /// The shipped catalogs, with `--default-locale`: the language of a
    /// link whose call and user name none.
    pub catalogs: Arc<Catalogs>,
    pub bootstrap_admin_email: String,
    pub dispatcher: DispatcherConfig,
}

/// How long rows are kept once they have aged: sent and dead emails and
/// used, revoked or expired links `days` (`--retain-days`), audit rows
/// `audit_days` (`--audit-retain-days`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub days: u32,
    pub audit_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            days: 30,
            audit_days: 365,
        }
    }
}

impl Retention {
    /// Rows of `table` due before this time are deleted.
    pub fn cutoff(&self, table: pwmail_store::Aging, now: pwmail_store::UnixMillis) -> i64 {
        let days = match table {
            pwmail_store::Aging::Emails | pwmail_store::Aging::Links => self.days,
            pwmail_store::Aging::Audit => self.audit_days,
        };
        now.saturating_sub(i64::from(days) * 86_400_000)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let data_dir = PathBuf::from(DEFAULT_DATA_DIR);
        let listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        ServerConfig {
            listen,
            tls: None,
            database_url: sqlite_url(&data_dir),
            db_acquire_timeout: Duration::from_millis(2000),
            db_pool_size: pwmail_store::PoolOptions::default().max_connections,
            public_url: public_url_for(listen, false),
            mail: MailConfig::Directory(data_dir.join("mail")),
            dkim: None,
            secret_files: Vec::new(),
            events: None,
            link_ttl: Duration::from_secs(24 * 3600),
            link_ttl_range: LinkTtlRange {
                min: LINK_TTL_MIN,
                max: LINK_TTL_RECOMMENDED_MAX,
            },
            return_to: ReturnTo::default(),
            user_rate: RateLimit {
                count: 1,
                per_secs: 60,
            },
            token_rate: RateLimit {
                count: 6000,
                per_secs: 60,
            },
            max_backlog: 50_000,
            reset_guess_rate: RateLimit {
                count: 20,
                per_secs: 600,
            },
            password_min_length: 12,
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            hash_queue: 256,
            request_timeout: Duration::from_secs(30),
            client_timeout: Duration::from_secs(10),
            max_connections: None,
            ops_listen: None,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            retention: Retention::default(),
            auth_cache_ttl: Duration::from_secs(1),
            product_name: "pwmail".into(),
            mail_from: "pwmail <no-reply@localhost>".into(),
            support_contact: None,
            template_dir: None,
            page_css: None,
            catalogs: default_catalogs(),
            bootstrap_admin_email: "admin@pwmail.localhost".into(),
            dispatcher: DispatcherConfig::default(),
        }
    }
}

/// How the dispatcher works through the outbox.
#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// Messages in flight at once.
    pub concurrency: u32,
    /// How long a claim lasts before another worker may take the row over.
    pub lease: Duration,
    pub max_attempts: u32,
    /// A message still undelivered this long after it was queued is dead.
    pub max_age: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Fallback wake-up for rows queued by other processes.
    pub poll_interval: Duration,
    /// One send may take this long before it counts as a transient failure
    /// (a relay that stops answering must not stall the dispatcher).
    pub send_timeout: Duration,
    /// One claim or settle may take this long before it counts as failed:
    /// a database connection that stops answering without being closed
    /// must not hold delivery up until TCP gives up, many minutes later.
    pub store_timeout: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        let lease = Duration::from_secs(120);
        DispatcherConfig {
            concurrency: 8,
            lease,
            max_attempts: 10,
            max_age: Duration::from_secs(24 * 3600),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(30 * 60),
            poll_interval: Duration::from_millis(250),
            send_timeout: DispatcherConfig::send_timeout_for(lease),
            store_timeout: DispatcherConfig::store_timeout_for(lease),
        }
    }
}

impl DispatcherConfig {
    /// The send timeout for a lease: well inside it, so a slow send never
    /// outlives its claim.
    pub fn send_timeout_for(lease: Duration) -> Duration {
        Duration::from_secs((lease.as_secs() / 2).clamp(1, 300))
    }

    /// The store timeout for a lease: a quarter of it, 1 to 30 s. A claim
    /// that gave up may still have leased rows; they wait for the lease to
    /// end, and a quarter of it leaves time to settle what was sent.
    pub fn store_timeout_for(lease: Duration) -> Duration {
        Duration::from_secs((lease.as_secs() / 4).clamp(1, 30))
    }
}

#[derive(Clone, Debug)]
pub enum MailConfig {
    /// Each message is written as an `.eml` file into this directory.
    Directory(PathBuf),
    /// Messages go to an SMTP relay.
    Smtp(SmtpConfig),
    /// Each message is POSTed, signed, to the operator's delivery hook.
    Hook(HookConfig),
    /// Each message goes to Amazon SES's API (v2 `SendEmail`, raw MIME).
    Ses(ses::SesConfig),
}

/// Where mail goes, in words for the log (no secret: no password, key or
/// secret file's content).
impl std::fmt::Display for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailConfig::Directory(dir) => write!(f, ".eml files in {}", dir.display()),
            MailConfig::Smtp(smtp) => {
                let tls = match smtp.tls {
                    smtp::TlsMode::StartTls => "STARTTLS",
                    smtp::TlsMode::Tls => "TLS",
                    smtp::TlsMode::None => "no TLS",
                };
                write!(f, "SMTP relay {}:{} ({tls}", smtp.host, smtp.port)?;
                if let Some(user) = &smtp.username {
                    write!(f, ", user {user}")?;
                }
                f.write_str(")")
            }
            MailConfig::Hook(hook) => write!(f, "the mail hook {}", hook.shown_url()),
            // The key's id shortened: enough to tell keys apart.
            MailConfig::Ses(ses) => write!(
                f,
                "Amazon SES {} at {} (key …{} from {})",
                ses.region,
                ses.endpoint,
                ses.credentials
                    .access_key_id
                    .get(ses.credentials.access_key_id.len().saturating_sub(4)..)
                    .unwrap_or_default(),
                ses.credentials.source
            ),
        }
    }
}

/// `count` calls per `per_secs` seconds, written `COUNT/SECONDS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub per_secs: u64,
}

impl RateLimit {
    /// The same limit as the store's GCRA parameters.
    pub fn gcra(self) -> Rate {
        Rate {
            period_ms: (self.per_secs * 1000 / u64::from(self.count)).max(1) as i64,
            burst: self.count,
        }
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.count, self.per_secs)
    }
}

impl std::str::FromStr for RateLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (count, secs) = text
            .split_once('/')
            .ok_or_else(|| format!("expected COUNT/SECONDS, got {text:?}"))?;
        let count: u32 = count.trim().parse().map_err(|e| format!("count: {e}"))?;
        let per_secs: u64 = secs.trim().parse().map_err(|e| format!("seconds: {e}"))?;
        if count == 0 || per_secs == 0 {
            return Err("count and seconds must be positive".into());
        }
        Ok(RateLimit { count, per_secs })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--public-url {0:?} is not an absolute http(s) URL")]
    PublicUrl(String),
    #[error("--public-url {0:?} must not carry {1}: links are built by appending to it")]
    PublicUrlPart(String, &'static str),
    #[error("--link-ttl-secs must be between {min} and {max} seconds, got {got}")]
    LinkTtl { min: u64, max: u64, got: u64 },
    #[error("--link-ttl-min-secs ({min}) must not exceed --link-ttl-max-secs ({max})")]
    LinkTtlRange { min: u64, max: u64 },
    #[error("--return-to-origin {0:?}: {1}")]
    ReturnToOrigin(String, return_to::ReturnToError),
    #[error("--default-return-to: {0}")]
    DefaultReturnTo(return_to::ReturnToError),
    #[error("--default-locale: {0}")]
    DefaultLocale(LocaleError),
}

/// The lifetimes a call may ask for; both ends within the hard bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkTtlRange {
    pub min: Duration,
    pub max: Duration,
}

impl LinkTtlRange {
    pub fn new(min: Duration, max: Duration) -> Result<LinkTtlRange, ConfigError> {
        let (min, max) = (check_link_ttl(min)?, check_link_ttl(max)?);
        if min > max {
            return Err(ConfigError::LinkTtlRange {
                min: min.as_secs(),
                max: max.as_secs(),
            });
        }
        Ok(LinkTtlRange { min, max })
    }

    pub fn contains(&self, ttl: Duration) -> bool {
        (self.min..=self.max).contains(&ttl)
    }
}

pub fn parse_public_url(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|_| ConfigError::PublicUrl(text.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::PublicUrl(text.to_string()));
    }
    let part = if !url.username().is_empty() || url.password().is_some() {
        Some("a user name or password")
    } else if url.query().is_some() {
        Some("a query")
    } else if url.fragment().is_some() {
        Some("a fragment")
    } else {
        None
    };
    if let Some(part) = part {
        return Err(ConfigError::PublicUrlPart(text.to_string(), part));
    }
    Ok(url)
}

/// The base URL links get when no `--public-url` is given: the listening
/// address itself (loopback for an unspecified one), `https` with TLS on.
pub fn public_url_for(listen: SocketAddr, tls: bool) -> Url {
    let scheme = if tls { "https" } else { "http" };
    let ip = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let host = SocketAddr::new(ip, listen.port());
    Url::parse(&format!("{scheme}://{host}/")).expect("a socket address makes a valid URL")
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

impl ServerConfig {
    /// Settings that work but will likely send users to a link they cannot
    /// open, for the operator to read at start.
    pub fn public_url_warnings(&self) -> Vec<&'static str> {
        let loopback_url = match self.public_url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        let mut out = Vec::new();
        if !self.listen.ip().is_loopback() && loopback_url {
            out.push(
                "listening beyond loopback, but reset links point at loopback: \
                 users elsewhere cannot open them; set --public-url",
            );
        }
        if !loopback_url && self.public_url.scheme() == "http" {
            out.push(
                "reset links are plain http on a non-loopback host: \
                 the link can be read on the network; use https",
            );
        }
        out
    }

    /// The link the user follows to set a new password.
    pub fn reset_link(&self, token: &str) -> String {
        let base = self.public_url.as_str().trim_end_matches('/');
        format!("{base}/reset/{token}")
    }

    /// Files and directories that hold secrets, each with what it holds:
    /// the SQLite database (with its directory, `-wal` and `-shm`) and the
    /// `.eml` directory (live links), the TLS private key, and the files the
    /// mail settings were read from.
    pub fn secret_paths(&self) -> Vec<(PathBuf, &'static str)> {
        const LINKS: &str = "holds live reset links";
        let mut paths = Vec::new();
        if let Some(file) = pwmail_store::sqlite_file(&self.database_url) {
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                paths.push((dir.to_path_buf(), LINKS));
            }
            for suffix in ["-wal", "-shm"] {
                let mut name = file.clone().into_os_string();
                name.push(suffix);
                paths.push((name.into(), LINKS));
            }
            paths.push((file, LINKS));
        }
        if let MailConfig::Directory(dir) = &self.mail {
            paths.push((dir.clone(), "holds emails with live reset links"));
        }
        if let Some(tls) = &self.tls {
            paths.push((tls.key.clone(), "is the TLS private key"));
        }
        for file in &self.secret_files {
            paths.push((file.clone(), "holds a secret (a password, a signing key)"));
        }
        paths
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_and_print_as_count_per_seconds() {
        let rate: RateLimit = "6000/60".parse().unwrap();
        assert_eq!(
            rate,
            RateLimit {
                count: 6000,
                per_secs: 60
            }
        );
        assert_eq!(rate.to_string(), "6000/60");
        assert_eq!(
            rate.gcra(),
            Rate {
                period_ms: 10,
                burst: 6000
            }
        );
        assert!("0/60".parse::<RateLimit>().is_err());
        assert!("5".parse::<RateLimit>().is_err());
    }

    #[test]
    fn message_id_domain_comes_from_the_sender() {
        let config = ServerConfig {
            mail_from: "Acme <no-reply@acme.example>".into(),
            ..ServerConfig::default()
        };
        assert_eq!(config.mail_domain(), "acme.example");
        assert_eq!(
            config.reset_link("T"),
            "http://127.0.0.1:8080/reset/T",
            "no double slash"
        );
    }

    #[test]
    fn the_default_public_url_follows_the_listening_address_and_tls() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            public_url_for(at("127.0.0.1:18701"), false).as_str(),
            "http://127.0.0.1:18701/"
        );
        assert_eq!(
            public_url_for(at("0.0.0.0:8443"), true).as_str(),
            "https://127.0.0.1:8443/"
        );
        assert_eq!(
            public_url_for(at("[::]:9000"), false).as_str(),
            "http://[::1]:9000/"
        );
    }

    #[test]
    fn a_public_url_with_userinfo_query_or_fragment_is_refused() {
        for bad in [
            "http://evil.com@127.0.0.1:18603/",
            "http://u:p@host/",
            "https://host/?x=",
            "https://host/#frag",
            "ftp://host/",
            "/relative",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
        assert!(parse_public_url("https://id.example.com/pw/").is_ok());
    }

    #[test]
    fn links_users_cannot_open_are_warned_about() {
        let config = |listen: &str, url: &str| ServerConfig {
            listen: listen.parse().unwrap(),
            public_url: parse_public_url(url).unwrap(),
            ..ServerConfig::default()
        };
        assert!(
            config("127.0.0.1:8080", "http://127.0.0.1:8080/")
                .public_url_warnings()
                .is_empty()
        );
        assert!(
            config("0.0.0.0:8080", "https://id.example.com/")
                .public_url_warnings()
                .is_empty()
        );
        let w = config("0.0.0.0:8080", "http://127.0.0.1:8080/").public_url_warnings();
        assert!(w.len() == 1 && w[0].contains("point at loopback"), "{w:?}");
        let w = config("127.0.0.1:8080", "http://id.example.com/").public_url_warnings();
        assert!(w.len() == 1 && w[0].contains("plain http"), "{w:?}");
    }
}
