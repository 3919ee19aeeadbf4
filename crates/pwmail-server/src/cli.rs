//! The `pwmail` command line. Every flag has a `PWMAIL_*` environment twin.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use pwmail_store::OutboxState;

use crate::config::{self, ConfigError, MailConfig, ServerConfig};
use crate::outbox::DispatcherConfig;
use crate::transport::SmtpConfig;

#[derive(Parser, Debug)]
#[command(
    name = "pwmail",
    version,
    about = "Admin-triggered password emails (F5 XC user API compatible)"
)]
pub struct Cli {
    /// TOML file of settings: keys are the flags' names with `_` for `-`
    /// (e.g. `smtp_url = "smtps://relay.example.com"`). Flags and `PWMAIL_*`
    /// variables win over the file.
    #[arg(long, global = true, env = "PWMAIL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log line format.
    #[arg(long, global = true, env = "PWMAIL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP API and the mail dispatcher.
    Serve(Box<ServeArgs>),
    /// Run only the mail dispatcher (scale sending apart from the API).
    Dispatch(Box<DispatchArgs>),
    /// Send password emails through a pwmail server (one address or a CSV file).
    Send(Box<SendArgs>),
    /// Inspect and requeue queued emails.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Email templates.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Bring the database schema up to date (serve and dispatch do it too, under a lock).
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// Where the data lives: `--database-url` wins over the SQLite file in the data directory.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// Directory for the embedded SQLite database and the mail directory.
    #[arg(long, env = "PWMAIL_DATA_DIR", default_value = "pwmail-data")]
    pub data_dir: PathBuf,
    /// Database URL (`sqlite://PATH` or `postgres://…`); overrides the file in --data-dir.
    #[arg(long, env = "PWMAIL_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Longest wait for a database connection before a request fails with 503 (PostgreSQL).
    #[arg(long, env = "PWMAIL_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub db_acquire_timeout_ms: u64,
}

impl DbArgs {
    /// Opens the database (running migrations).
    pub async fn open(&self) -> anyhow::Result<std::sync::Arc<dyn pwmail_store::Store>> {
        let url = self.resolve()?;
        Ok(pwmail_store::open_with(&url, self.acquire_timeout()).await?)
    }

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.db_acquire_timeout_ms.max(50))
    }

    /// The database URL, creating the data directory for the SQLite default.
    pub fn resolve(&self) -> std::io::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir)?;
        Ok(format!(
            "sqlite://{}",
            self.data_dir.join("pwmail.db").display()
        ))
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address to listen on.
    #[arg(long, env = "PWMAIL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Public base URL of this service; reset links are built from it.
    #[arg(
        long,
        env = "PWMAIL_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,
    #[command(flatten)]
    pub mail: MailArgs,
    #[command(flatten)]
    pub dispatcher: DispatcherArgs,
    /// Refuse new emails with 503 while this many wait to be sent.
    #[arg(long, env = "PWMAIL_MAX_BACKLOG", default_value_t = 50_000)]
    pub max_backlog: u64,
    /// Product name used in the emails.
    #[arg(long, env = "PWMAIL_PRODUCT_NAME", default_value = "pwmail")]
    pub product_name: String,
    /// Support contact named in the emails.
    #[arg(long, env = "PWMAIL_SUPPORT_CONTACT")]
    pub support_contact: Option<String>,
    /// Directory whose template files replace the built-in ones.
    #[arg(long, env = "PWMAIL_TEMPLATE_DIR")]
    pub template_dir: Option<PathBuf>,
    /// Lifetime of a reset link in seconds (300..=604800; above 86400 is logged as a warning).
    #[arg(long, env = "PWMAIL_LINK_TTL_SECS", default_value_t = 86_400)]
    pub link_ttl_secs: u64,
    /// Emails per user: COUNT/SECONDS.
    #[arg(long, env = "PWMAIL_USER_RATE", default_value = "1/60", value_parser = parse_rate)]
    pub user_rate: (u32, u64),
    /// Calls per API token: COUNT/SECONDS.
    #[arg(long, env = "PWMAIL_TOKEN_RATE", default_value = "6000/60", value_parser = parse_rate)]
    pub token_rate: (u32, u64),
    /// Unknown reset links one client address may open: COUNT/SECONDS.
    #[arg(long, env = "PWMAIL_RESET_GUESS_RATE", default_value = "20/600", value_parser = parse_rate)]
    pub reset_guess_rate: (u32, u64),
    /// Shortest new password, in characters (NIST SP 800-63B: at least 8; 15 when it is the only factor).
    #[arg(long, env = "PWMAIL_PASSWORD_MIN_LENGTH", default_value_t = 12, value_parser = clap::value_parser!(u16).range(8..=64))]
    pub password_min_length: u16,
    /// Password hashes computed at once, 19 MiB each [default: CPU count].
    #[arg(long, env = "PWMAIL_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,
    /// Password submissions that may wait for a hash slot; more are answered 503 (try again).
    #[arg(long, env = "PWMAIL_HASH_QUEUE", default_value_t = 256)]
    pub hash_queue: usize,
    /// Seconds after which an API call answers 504 (its outcome then unknown).
    #[arg(long, env = "PWMAIL_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Email of the admin created on first start with an empty database.
    #[arg(
        long,
        env = "PWMAIL_BOOTSTRAP_ADMIN",
        default_value = "admin@pwmail.localhost"
    )]
    pub bootstrap_admin: String,
}

/// Where mail goes: SMTP when `--smtp-url` is set, else `.eml` files.
#[derive(Args, Debug, Clone)]
pub struct MailArgs {
    /// Write each email as an .eml file here [default: DATA_DIR/mail]. Unused with --smtp-url.
    #[arg(long, env = "PWMAIL_MAIL_DIR")]
    pub mail_dir: Option<PathBuf>,
    /// Sender of the emails.
    #[arg(
        long,
        env = "PWMAIL_MAIL_FROM",
        default_value = "pwmail <no-reply@localhost>"
    )]
    pub mail_from: String,
    /// SMTP relay: smtp://[user[:pass]@]host[:port][?tls=starttls|tls|none] (STARTTLS, 587) or smtps://host (TLS, 465).
    #[arg(long, env = "PWMAIL_SMTP_URL", hide_env_values = true)]
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
    #[arg(long, env = "PWMAIL_SMTP_TIMEOUT_SECS", default_value_t = 30)]
    pub smtp_timeout_secs: u64,
    /// Pooled SMTP connections.
    #[arg(long, env = "PWMAIL_SMTP_POOL_SIZE", default_value_t = 8)]
    pub smtp_pool_size: u32,
    /// Allow tls=none to a host that is not loopback.
    #[arg(long, env = "PWMAIL_SMTP_ALLOW_INSECURE")]
    pub smtp_allow_insecure: bool,
}

impl MailArgs {
    pub fn to_config(&self, data_dir: &std::path::Path) -> anyhow::Result<MailConfig> {
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
            let text = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("--smtp-password-file {}: {e}", file.display()))?;
            smtp.password = Some(text.trim_end_matches(['\r', '\n']).to_string());
        }
        if let Some(file) = &self.smtp_ca_file {
            smtp.ca_pem = Some(
                std::fs::read(file)
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
    #[arg(long, env = "PWMAIL_MAIL_CONCURRENCY", default_value_t = 8)]
    pub mail_concurrency: u32,
    /// Attempts before a message is given up (dead).
    #[arg(long, env = "PWMAIL_MAIL_MAX_ATTEMPTS", default_value_t = 10)]
    pub mail_max_attempts: u32,
    /// Seconds after queueing before an undelivered message is given up.
    #[arg(long, env = "PWMAIL_MAIL_MAX_AGE_SECS", default_value_t = 86_400)]
    pub mail_max_age_secs: u64,
    /// First retry delay, seconds; doubles per attempt.
    #[arg(long, env = "PWMAIL_MAIL_BACKOFF_SECS", default_value_t = 5)]
    pub mail_backoff_secs: u64,
    /// Longest retry delay, seconds.
    #[arg(long, env = "PWMAIL_MAIL_BACKOFF_MAX_SECS", default_value_t = 1800)]
    pub mail_backoff_max_secs: u64,
    /// Seconds a claim on a message lasts; a crashed sender's rows return after it.
    #[arg(long, env = "PWMAIL_MAIL_LEASE_SECS", default_value_t = 120)]
    pub mail_lease_secs: u64,
    /// Milliseconds between looks for messages queued by other processes.
    #[arg(long, env = "PWMAIL_MAIL_POLL_MS", default_value_t = 250)]
    pub mail_poll_ms: u64,
}

impl DispatcherArgs {
    pub fn to_config(&self) -> DispatcherConfig {
        DispatcherConfig {
            concurrency: self.mail_concurrency.max(1),
            lease: Duration::from_secs(self.mail_lease_secs.max(1)),
            max_attempts: self.mail_max_attempts.max(1),
            max_age: Duration::from_secs(self.mail_max_age_secs),
            backoff_base: Duration::from_secs(self.mail_backoff_secs),
            backoff_max: Duration::from_secs(self.mail_backoff_max_secs),
            poll_interval: Duration::from_millis(self.mail_poll_ms.max(10)),
            // Well inside the lease, so a slow send never outlives its claim.
            send_timeout: Duration::from_secs((self.mail_lease_secs / 2).clamp(1, 300)),
        }
    }
}

#[derive(Args, Debug)]
pub struct DispatchArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub mail: MailArgs,
    #[command(flatten)]
    pub dispatcher: DispatcherArgs,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// Base URL of the pwmail API.
    #[arg(long, env = "PWMAIL_SERVER")]
    pub server: String,
    /// One user's email.
    #[arg(
        long,
        conflicts_with = "from_csv",
        required_unless_present = "from_csv"
    )]
    pub email: Option<String>,
    /// A CSV file with an `email` column.
    #[arg(long)]
    pub from_csv: Option<PathBuf>,
    /// `send` (SendPasswordEmail) or `reset` (ResetPasswordByAdmin).
    #[arg(long, value_enum, default_value_t = crate::bulk::Operation::Send)]
    pub operation: crate::bulk::Operation,
    /// File holding the API token (else PWMAIL_TOKEN).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// API token (prefer --token-file).
    #[arg(
        long = "token",
        env = "PWMAIL_TOKEN",
        hide_env_values = true,
        hide = true
    )]
    pub token: Option<String>,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Retries of one email after 429/503 (each waits Retry-After).
    #[arg(long, default_value_t = 20)]
    pub max_retries: u32,
    /// Write failures here: CSV for *.csv, else JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum OutboxCommand {
    /// Recent messages and their delivery state.
    List {
        #[arg(long, value_parser = parse_state)]
        state: Option<OutboxState>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        db: DbArgs,
    },
    /// One message's delivery record.
    Show {
        id: i64,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Queue a dead message again, with a fresh attempt budget.
    Retry {
        id: i64,
        #[command(flatten)]
        db: DbArgs,
    },
}

fn parse_state(text: &str) -> Result<OutboxState, String> {
    OutboxState::parse(text)
        .ok_or_else(|| "expected queued, sending, sent, retrying or dead".to_string())
}

#[derive(Subcommand, Debug)]
pub enum MailCommand {
    /// Print a rendered message (with a sample link) as it would be sent.
    Preview {
        #[arg(long, value_enum)]
        kind: PreviewKind,
        #[arg(long)]
        to: String,
        #[arg(long, env = "PWMAIL_PRODUCT_NAME", default_value = "pwmail")]
        product_name: String,
        #[arg(long, env = "PWMAIL_SUPPORT_CONTACT")]
        support_contact: Option<String>,
        #[arg(long, env = "PWMAIL_TEMPLATE_DIR")]
        template_dir: Option<PathBuf>,
        #[arg(
            long,
            env = "PWMAIL_MAIL_FROM",
            default_value = "pwmail <no-reply@localhost>"
        )]
        mail_from: String,
        #[arg(
            long,
            env = "PWMAIL_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        public_url: String,
        #[arg(long, env = "PWMAIL_LINK_TTL_SECS", default_value_t = 86_400)]
        link_ttl_secs: u64,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PreviewKind {
    SendPasswordEmail,
    ResetPasswordByAdmin,
    PasswordChanged,
}

fn parse_rate(text: &str) -> Result<(u32, u64), String> {
    let (count, secs) = text
        .split_once('/')
        .ok_or_else(|| format!("expected COUNT/SECONDS, got {text:?}"))?;
    let count: u32 = count.trim().parse().map_err(|e| format!("count: {e}"))?;
    let secs: u64 = secs.trim().parse().map_err(|e| format!("seconds: {e}"))?;
    if count == 0 || secs == 0 {
        return Err("count and seconds must be positive".into());
    }
    Ok((count, secs))
}

impl ServeArgs {
    pub fn to_config(&self) -> Result<ServerConfig, anyhow::Error> {
        let database_url = self.db.resolve()?;
        Ok(ServerConfig {
            listen: self.listen,
            database_url,
            db_acquire_timeout: self.db.acquire_timeout(),
            public_url: config::parse_public_url(&self.public_url)?,
            mail: self.mail.to_config(&self.db.data_dir)?,
            max_backlog: self.max_backlog,
            link_ttl: config::check_link_ttl(Duration::from_secs(self.link_ttl_secs))?,
            user_cooldown: config::rate("user-rate", self.user_rate.0, self.user_rate.1)?,
            token_rate: config::rate("token-rate", self.token_rate.0, self.token_rate.1)?,
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            reset_guess_rate: config::rate(
                "reset-guess-rate",
                self.reset_guess_rate.0,
                self.reset_guess_rate.1,
            )?,
            password_min_length: usize::from(self.password_min_length),
            hash_concurrency: self
                .hash_concurrency
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            hash_queue: self.hash_queue,
            product_name: self.product_name.clone(),
            mail_from: self.mail.mail_from.clone(),
            support_contact: self.support_contact.clone(),
            bootstrap_admin_email: self.bootstrap_admin.clone(),
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user (no password yet: they set one through an emailed link).
    Add {
        email: String,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Add every address in the `email` column of a CSV file (header row
    /// required); addresses already present are left as they are.
    Import {
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Read a password from stdin; exit 0 if it is the user's, 1 if not (2 on errors).
    CheckPassword {
        email: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Disable a user: their tokens and open links are revoked.
    Disable {
        email: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token for a user; prints only the token.
    Create {
        email: String,
        #[arg(long, default_value = "cli")]
        label: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List a user's API tokens (ids, labels, state; never the tokens).
    List {
        email: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke an API token by id (see `pwmail token list`).
    Revoke {
        id: i64,
        #[command(flatten)]
        db: DbArgs,
    },
}

impl From<ConfigError> for std::io::Error {
    fn from(e: ConfigError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
    }
}
