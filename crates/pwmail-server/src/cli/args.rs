//! Flag groups shared by several commands, each declared once and
//! flattened where needed. Defaults are `ServerConfig::default()`'s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::config::EventsConfig;
use crate::config::SmtpConfig;
use crate::config::hook::{self, HookConfig, HookConfigError, HookFlags};
use crate::config::{self, DispatcherConfig, MailConfig, ServerConfig};
use crate::dkim::DkimSigner;
use pwmail_store::EventKind;

fn defaults() -> ServerConfig {
    ServerConfig::default()
}

/// The data directory: the embedded database's, and the `.eml` files'
/// unless `--mail-dir` says otherwise.
#[derive(Args, Debug, Clone)]
pub struct DataDirArgs {
    /// Directory for the embedded SQLite database and the mail directory.
    #[arg(long, global = true, env = "PWMAIL_DATA_DIR", default_value = config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

/// A command of a group that opens the database: the database's flags,
/// and the command.
#[derive(Args, Debug)]
pub struct WithDb<T: clap::Subcommand> {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(subcommand)]
    pub command: T,
}

/// Where the data lives: `--database-url` wins over the SQLite file in the
/// data directory. Each command that opens the database has these (global
/// to its own subcommands: `pwmail user add X --database-url …`); others
/// do not show them.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    #[command(flatten)]
    pub dir: DataDirArgs,
    /// Database URL (`sqlite://PATH` or `postgres://…`); overrides the file in --data-dir.
    #[arg(
        long,
        global = true,
        env = "PWMAIL_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

/// The connection pool of a long-running process (`serve`, `dispatch`);
/// one-off commands use the store's default.
#[derive(Args, Debug, Clone)]
pub struct PoolArgs {
    /// Longest wait for a database connection before a request fails with 503 (PostgreSQL).
    #[arg(long, env = "PWMAIL_DB_ACQUIRE_TIMEOUT_MS",
          default_value_t = defaults().db_acquire_timeout.as_millis() as u64)]
    pub db_acquire_timeout_ms: u64,
    /// PostgreSQL connections per process (each replica has its own pool).
    #[arg(long, env = "PWMAIL_DB_POOL_SIZE",
          default_value_t = defaults().db_pool_size,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: u32,
}

impl PoolArgs {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.db_acquire_timeout_ms.max(50))
    }

    /// The pool settings these flags name.
    pub fn pool(&self) -> pwmail_store::PoolOptions {
        pwmail_store::PoolOptions {
            acquire_timeout: self.acquire_timeout(),
            max_connections: self.db_pool_size,
        }
    }
}

impl DbArgs {
    /// Opens the database, creating it and running migrations: for the
    /// commands that set a database up (`serve`, `dispatch`, `migrate`).
    pub async fn open(
        &self,
        pool: pwmail_store::PoolOptions,
    ) -> anyhow::Result<std::sync::Arc<dyn pwmail_store::Store>> {
        let url = self.resolve()?;
        Ok(pwmail_store::open_with(&url, pool).await?)
    }

    /// Opens a database that already exists; for every other command, so
    /// that one run in the wrong directory says so instead of quietly
    /// working on a fresh, empty database.
    pub async fn open_existing(&self) -> anyhow::Result<std::sync::Arc<dyn pwmail_store::Store>> {
        let url = self.url();
        if !pwmail_store::exists(&url).await? {
            return Err(crate::cli::Failed::NoDatabase(pwmail_store::describe(&url)).into());
        }
        Ok(pwmail_store::open_with(&url, pwmail_store::PoolOptions::default()).await?)
    }

    /// The database URL, creating the data directory for the SQLite default.
    pub fn resolve(&self) -> std::io::Result<String> {
        if self.database_url.is_none() {
            crate::files::create_private_dir(&self.dir.data_dir)?;
        }
        Ok(self.url())
    }

    /// The database URL these flags name, creating nothing.
    pub fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| config::sqlite_url(&self.dir.data_dir))
    }
}

/// The sender of every email; its domain is used in Message-IDs.
#[derive(Args, Debug, Clone)]
pub struct SenderArgs {
    /// Sender of the emails.
    #[arg(long, env = "PWMAIL_MAIL_FROM", default_value_t = defaults().mail_from)]
    pub mail_from: String,
}

/// How long aged rows are kept (`serve`'s purge task and `pwmail purge`).
#[derive(Args, Debug, Clone)]
pub struct RetentionArgs {
    /// Days sent and dead emails, and used, revoked or expired links, are kept.
    #[arg(long, env = "PWMAIL_RETAIN_DAYS", default_value_t = defaults().retention.days,
          value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub retain_days: u32,
    /// Days audit rows are kept.
    #[arg(long, env = "PWMAIL_AUDIT_RETAIN_DAYS", default_value_t = defaults().retention.audit_days,
          value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub audit_retain_days: u32,
}

impl RetentionArgs {
    pub fn to_config(&self) -> config::Retention {
        config::Retention {
            days: self.retain_days,
            audit_days: self.audit_retain_days,
        }
    }
}

/// What the reset links are: their base and lifetime (fixed when a link is
/// issued).
#[derive(Args, Debug, Clone)]
pub struct ContentArgs {
    /// Public base URL of this service; reset links are built from it [default: the --listen address, https with --tls-cert].
    #[arg(long, env = "PWMAIL_PUBLIC_URL", value_parser = config::parse_public_url)]
    pub public_url: Option<url::Url>,
    /// Lifetime of a reset link in seconds (300..=604800; above 86400 is logged as a warning).
    #[arg(long, env = "PWMAIL_LINK_TTL_SECS", default_value_t = defaults().link_ttl.as_secs())]
    pub link_ttl_secs: u64,
    /// Shortest lifetime a call may ask for with `ttl_secs` (300..=604800).
    #[arg(long, env = "PWMAIL_LINK_TTL_MIN_SECS", default_value_t = defaults().link_ttl_range.min.as_secs())]
    pub link_ttl_min_secs: u64,
    /// Longest lifetime a call may ask for with `ttl_secs` (300..=604800; above 86400 is logged as a warning).
    #[arg(long, env = "PWMAIL_LINK_TTL_MAX_SECS", default_value_t = defaults().link_ttl_range.max.as_secs())]
    pub link_ttl_max_secs: u64,
    /// An origin (`https://app.example.com`) a call's `return_to` may point under; repeatable.
    #[arg(
        long = "return-to-origin",
        env = "PWMAIL_RETURN_TO_ORIGINS",
        value_delimiter = ','
    )]
    pub return_to_origins: Vec<String>,
    /// The page the done page links to when a call gave no `return_to` (the F5 operations never do); under a --return-to-origin.
    #[arg(long, env = "PWMAIL_DEFAULT_RETURN_TO")]
    pub default_return_to: Option<String>,
}

impl ContentArgs {
    /// These settings over `config`.
    pub fn apply(&self, config: &mut ServerConfig) -> anyhow::Result<()> {
        config.public_url = match &self.public_url {
            Some(url) => url.clone(),
            None => config::public_url_for(config.listen, config.tls.is_some()),
        };
        config.link_ttl = config::check_link_ttl(Duration::from_secs(self.link_ttl_secs))?;
        config.link_ttl_range = config::LinkTtlRange::new(
            Duration::from_secs(self.link_ttl_min_secs),
            Duration::from_secs(self.link_ttl_max_secs),
        )?;
        config.return_to =
            config::ReturnTo::new(&self.return_to_origins, self.default_return_to.as_deref())?;
        Ok(())
    }
}

/// What the emails say around the link: product, support contact,
/// templates. Whoever sends a link email writes it (`serve`'s dispatcher,
/// or `pwmail dispatch`), so it takes these.
#[derive(Args, Debug, Clone)]
pub struct TemplateArgs {
    /// Product name used in the emails.
    #[arg(long, env = "PWMAIL_PRODUCT_NAME", default_value_t = defaults().product_name)]
    pub product_name: String,
    /// Support contact named in the emails.
    #[arg(long, env = "PWMAIL_SUPPORT_CONTACT")]
    pub support_contact: Option<String>,
    /// Directory whose template files replace the built-in ones.
    #[arg(long, env = "PWMAIL_TEMPLATE_DIR")]
    pub template_dir: Option<PathBuf>,
    /// Language of emails and pages for users without a locale (BCP 47; one of en, de, fr, es, pt-BR, ja, ar, or a tag near one).
    #[arg(long, env = "PWMAIL_DEFAULT_LOCALE", default_value = crate::config::DEFAULT_LOCALE)]
    pub default_locale: String,
}

impl TemplateArgs {
    /// These settings over `config`.
    pub fn apply(&self, config: &mut ServerConfig) -> Result<(), crate::config::ConfigError> {
        config.product_name = self.product_name.clone();
        config.support_contact = self.support_contact.clone();
        config.template_dir = self.template_dir.clone();
        config.catalogs = crate::config::catalogs(&self.default_locale)?;
        Ok(())
    }
}

/// Where mail goes: an SMTP relay (`--smtp-url`), the delivery hook
/// (`--mail-webhook-url`), else `.eml` files; and the DKIM key it is
/// signed with.
#[derive(Args, Debug, Clone)]
pub struct TransportArgs {
    /// Write each email as an .eml file here [default: DATA_DIR/mail]. Unused with --smtp-url or --mail-webhook-url.
    #[arg(long, env = "PWMAIL_MAIL_DIR")]
    pub mail_dir: Option<PathBuf>,
    /// SMTP relay: smtp://[user[:pass]@]host[:port][?tls=starttls|tls|none] (STARTTLS, 587) or smtps://host (TLS, 465).
    #[arg(
        long,
        env = "PWMAIL_SMTP_URL",
        hide_env_values = true,
        conflicts_with_all = ["mail_webhook_url", "ses_region"]
    )]
    pub smtp_url: Option<String>,
    /// SMTP password (prefer this variable or --smtp-password-file to the URL).
    #[arg(
        long,
        env = "PWMAIL_SMTP_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    pub smtp_password: Option<String>,
    /// File holding the SMTP password (trailing newline ignored).
    #[arg(long, env = "PWMAIL_SMTP_PASSWORD_FILE")]
    pub smtp_password_file: Option<PathBuf>,
    /// PEM file of an extra CA to trust for the relay's certificate.
    #[arg(long, env = "PWMAIL_SMTP_CA_FILE")]
    pub smtp_ca_file: Option<PathBuf>,
    /// Connect and command timeout, seconds.
    #[arg(long, env = "PWMAIL_SMTP_TIMEOUT_SECS", default_value_t = SmtpConfig::DEFAULT_TIMEOUT.as_secs())]
    pub smtp_timeout_secs: u64,
    /// Pooled SMTP connections.
    #[arg(long, env = "PWMAIL_SMTP_POOL_SIZE", default_value_t = SmtpConfig::DEFAULT_POOL_SIZE)]
    pub smtp_pool_size: u32,
    /// Allow tls=none to a host that is not loopback.
    #[arg(long, env = "PWMAIL_SMTP_ALLOW_INSECURE")]
    pub smtp_allow_insecure: bool,
    /// POST each email as signed JSON (Standard Webhooks) to this URL instead of SMTP: https://, or http:// to loopback.
    #[arg(long, env = "PWMAIL_MAIL_WEBHOOK_URL", conflicts_with = "ses_region")]
    pub mail_webhook_url: Option<String>,
    /// File holding the hook's signing secret: whsec_ and the base64 of 24 to 64 random bytes.
    #[arg(long, env = "PWMAIL_MAIL_WEBHOOK_SECRET_FILE")]
    pub mail_webhook_secret_file: Option<PathBuf>,
    /// Seconds to wait for the hook's answer.
    #[arg(long, env = "PWMAIL_MAIL_WEBHOOK_TIMEOUT_SECS", default_value_t = HookConfig::DEFAULT_TIMEOUT.as_secs())]
    pub mail_webhook_timeout_secs: u64,
    /// Send through Amazon SES (API v2) in this region, e.g. eu-west-1. Credentials come from
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the shared credentials file (AWS_PROFILE).
    #[arg(long, env = "PWMAIL_SES_REGION")]
    pub ses_region: Option<String>,
    /// Another SES endpoint than https://email.REGION.amazonaws.com (a VPC endpoint, a test server).
    #[arg(long, env = "PWMAIL_SES_ENDPOINT", requires = "ses_region")]
    pub ses_endpoint: Option<String>,
    #[command(flatten)]
    pub dkim: DkimArgs,
}

/// An endpoint's settings from its flags: the URL checked before the
/// secret file is read, so a wrong URL is named first.
fn hook_config(
    flags: HookFlags,
    url: &str,
    secret_file: Option<&Path>,
    timeout_secs: u64,
) -> anyhow::Result<HookConfig> {
    HookConfig::url(flags, url)?;
    let file = secret_file.ok_or(HookConfigError::NoSecret { flags })?;
    let secret = crate::files::read_small_text(file)
        .map_err(|e| anyhow::anyhow!("{} {}: {e}", flags.secret, file.display()))?;
    let mut hook = HookConfig::new(flags, url, &secret, &file.display().to_string())?;
    hook.timeout = Duration::from_secs(timeout_secs.max(1));
    Ok(hook)
}

/// Where events go (`--events-url`), and which.
#[derive(Args, Debug, Clone)]
pub struct EventsArgs {
    /// POST events (email.queued, email.sent, link.opened, password.set…) as signed JSON (Standard Webhooks) to this URL: https://, or http:// to loopback. Every replica must be given the same event settings.
    #[arg(long, env = "PWMAIL_EVENTS_URL")]
    pub events_url: Option<String>,
    /// File holding the events' signing secret: whsec_ and the base64 of 24 to 64 random bytes.
    #[arg(long, env = "PWMAIL_EVENTS_SECRET_FILE", requires = "events_url")]
    pub events_secret_file: Option<PathBuf>,
    /// The events to send, comma-separated [default: all]: email.queued, email.sent, email.retrying, email.dead, link.opened, password.set, link.revoked, user.suppressed, user.unsuppressed.
    #[arg(long = "events", env = "PWMAIL_EVENTS", value_delimiter = ',',
          requires = "events_url", value_parser = parse_event_kind)]
    pub events: Vec<EventKind>,
    /// Seconds to wait for the receiver's answer.
    #[arg(long, env = "PWMAIL_EVENTS_TIMEOUT_SECS", default_value_t = EventsConfig::DEFAULT_TIMEOUT.as_secs())]
    pub events_timeout_secs: u64,
    /// Attempts before an event is given up as failed (`pwmail events retry` sends failed ones again); retries wait 1 s, 2 s, 4 s… up to 10 minutes.
    #[arg(long, env = "PWMAIL_EVENTS_MAX_ATTEMPTS", default_value_t = EventsConfig::DEFAULT_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub events_max_attempts: u32,
}

fn parse_event_kind(text: &str) -> Result<EventKind, String> {
    EventKind::parse(text.trim()).ok_or_else(|| {
        let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("no event {text:?}; the events are {}", known.join(", "))
    })
}

impl EventsArgs {
    /// The events settings, and the secret file among `config.secret_files`.
    pub fn apply(&self, config: &mut crate::config::ServerConfig) -> anyhow::Result<()> {
        let Some(url) = &self.events_url else {
            return Ok(());
        };
        let hook = hook_config(
            hook::EVENTS,
            url,
            self.events_secret_file.as_deref(),
            self.events_timeout_secs,
        )?;
        let mut kinds = if self.events.is_empty() {
            EventKind::ALL.to_vec()
        } else {
            self.events.clone()
        };
        // `--events a,b,a`: each kind once, in the order first named.
        let mut seen = std::collections::HashSet::new();
        kinds.retain(|kind| seen.insert(*kind));
        config.events = Some(EventsConfig {
            lease: hook.timeout * 3,
            hook,
            kinds,
            max_attempts: self.events_max_attempts,
        });
        config.secret_files.extend(self.events_secret_file.clone());
        Ok(())
    }
}

/// The DKIM key messages are signed with.
#[derive(Args, Debug, Clone)]
pub struct DkimArgs {
    /// Sign every message with DKIM using this private key (PEM: RSA 2048 or Ed25519, as `openssl genpkey` writes it).
    #[arg(long, env = "PWMAIL_DKIM_KEY", requires = "dkim_selector")]
    pub dkim_key: Option<PathBuf>,
    /// The DKIM selector: the key's record is SELECTOR._domainkey.DOMAIN.
    #[arg(long, env = "PWMAIL_DKIM_SELECTOR", requires = "dkim_key")]
    pub dkim_selector: Option<String>,
    /// The signing domain (d=) [default: the domain of --mail-from].
    #[arg(long, env = "PWMAIL_DKIM_DOMAIN", requires = "dkim_key")]
    pub dkim_domain: Option<String>,
}

impl DkimArgs {
    /// The signer these flags name, for mail from `mail_domain`.
    pub fn signer(&self, mail_domain: &str) -> anyhow::Result<Option<DkimSigner>> {
        let (Some(path), Some(selector)) = (&self.dkim_key, &self.dkim_selector) else {
            return Ok(None);
        };
        let pem = crate::files::read_small(path)
            .map_err(|e| anyhow::anyhow!("--dkim-key {}: {e}", path.display()))?;
        let domain = self.dkim_domain.as_deref().unwrap_or(mail_domain);
        Ok(Some(DkimSigner::from_pem(
            &pem,
            &path.display().to_string(),
            selector,
            domain,
        )?))
    }
}

impl TransportArgs {
    /// Sets `config.mail` and `config.dkim` (after `config.mail_from`,
    /// whose domain DKIM signs for unless `--dkim-domain` says otherwise).
    pub fn apply(&self, config: &mut ServerConfig, data_dir: &Path) -> anyhow::Result<()> {
        config.mail = self.to_config(data_dir)?;
        config.dkim = self.dkim.signer(&config.mail_domain())?.map(Arc::new);
        config.secret_files = [
            &self.smtp_password_file,
            &self.mail_webhook_secret_file,
            &self.dkim.dkim_key,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        Ok(())
    }

    fn to_config(&self, data_dir: &Path) -> anyhow::Result<MailConfig> {
        if let Some(region) = &self.ses_region {
            let env = |name: &str| std::env::var(name).ok();
            return Ok(MailConfig::Ses(crate::config::ses::SesConfig::new(
                region,
                self.ses_endpoint.as_deref(),
                &env,
            )?));
        }
        if let Some(url) = &self.mail_webhook_url {
            return Ok(MailConfig::Hook(hook_config(
                hook::MAIL_HOOK,
                url,
                self.mail_webhook_secret_file.as_deref(),
                self.mail_webhook_timeout_secs,
            )?));
        }
        let Some(url) = &self.smtp_url else {
            let dir = self
                .mail_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("mail"));
            return Ok(MailConfig::Directory(dir));
        };
        let mut smtp = SmtpConfig::from_url(url)?;
        if let Some(password) = &self.smtp_password {
            smtp.password = Some(password.clone());
        }
        if let Some(file) = &self.smtp_password_file {
            let text = crate::files::read_small_text(file)
                .map_err(|e| anyhow::anyhow!("--smtp-password-file {}: {e}", file.display()))?;
            smtp.password = Some(text.trim_end_matches(['\r', '\n']).to_string());
        }
        if let Some(file) = &self.smtp_ca_file {
            smtp.ca_pem = Some(
                crate::files::read_small(file)
                    .map_err(|e| anyhow::anyhow!("--smtp-ca-file {}: {e}", file.display()))?,
            );
        }
        smtp.timeout = Duration::from_secs(self.smtp_timeout_secs.max(1));
        smtp.pool_size = self.smtp_pool_size.max(1);
        smtp.check_security(self.smtp_allow_insecure)?;
        Ok(MailConfig::Smtp(smtp))
    }
}

/// How the dispatcher works through the outbox.
#[derive(Args, Debug, Clone)]
pub struct DispatcherArgs {
    /// Messages sent at once.
    #[arg(long, env = "PWMAIL_MAIL_CONCURRENCY", default_value_t = defaults().dispatcher.concurrency)]
    pub mail_concurrency: u32,
    /// Attempts before a message is given up (dead).
    #[arg(long, env = "PWMAIL_MAIL_MAX_ATTEMPTS", default_value_t = defaults().dispatcher.max_attempts)]
    pub mail_max_attempts: u32,
    /// Seconds after queueing before an undelivered message is given up.
    #[arg(long, env = "PWMAIL_MAIL_MAX_AGE_SECS", default_value_t = defaults().dispatcher.max_age.as_secs())]
    pub mail_max_age_secs: u64,
    /// First retry delay, seconds; doubles per attempt.
    #[arg(long, env = "PWMAIL_MAIL_BACKOFF_SECS", default_value_t = defaults().dispatcher.backoff_base.as_secs())]
    pub mail_backoff_secs: u64,
    /// Longest retry delay, seconds.
    #[arg(long, env = "PWMAIL_MAIL_BACKOFF_MAX_SECS", default_value_t = defaults().dispatcher.backoff_max.as_secs())]
    pub mail_backoff_max_secs: u64,
    /// Seconds a claim on a message lasts; a crashed sender's rows return after it.
    #[arg(long, env = "PWMAIL_MAIL_LEASE_SECS", default_value_t = defaults().dispatcher.lease.as_secs())]
    pub mail_lease_secs: u64,
    /// Milliseconds between looks for messages queued by other processes.
    #[arg(long, env = "PWMAIL_MAIL_POLL_MS",
          default_value_t = defaults().dispatcher.poll_interval.as_millis() as u64)]
    pub mail_poll_ms: u64,
}

impl DispatcherArgs {
    pub fn to_config(&self) -> DispatcherConfig {
        let lease = Duration::from_secs(self.mail_lease_secs.max(1));
        DispatcherConfig {
            concurrency: self.mail_concurrency.max(1),
            lease,
            max_attempts: self.mail_max_attempts.max(1),
            max_age: Duration::from_secs(self.mail_max_age_secs),
            backoff_base: Duration::from_secs(self.mail_backoff_secs),
            backoff_max: Duration::from_secs(self.mail_backoff_max_secs),
            poll_interval: Duration::from_millis(self.mail_poll_ms.max(10)),
            send_timeout: DispatcherConfig::send_timeout_for(lease),
            store_timeout: DispatcherConfig::store_timeout_for(lease),
        }
    }
}
