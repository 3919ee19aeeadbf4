//! The `pwmail` command line. Every flag has a `PWMAIL_*` environment twin.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, ConfigError, MailConfig, ServerConfig};

#[derive(Parser, Debug)]
#[command(
    name = "pwmail",
    version,
    about = "Admin-triggered password emails (F5 XC user API compatible)"
)]
pub struct Cli {
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
    Serve(ServeArgs),
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
    /// Database URL (`sqlite://PATH`); overrides the file in --data-dir.
    #[arg(long, env = "PWMAIL_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DbArgs {
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
    /// Write each email as an .eml file here [default: DATA_DIR/mail].
    #[arg(long, env = "PWMAIL_MAIL_DIR")]
    pub mail_dir: Option<PathBuf>,
    /// Sender of the emails.
    #[arg(
        long,
        env = "PWMAIL_MAIL_FROM",
        default_value = "pwmail <no-reply@localhost>"
    )]
    pub mail_from: String,
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
    /// Messages the dispatcher sends at once.
    #[arg(long, env = "PWMAIL_MAIL_CONCURRENCY", default_value_t = 8)]
    pub mail_concurrency: u32,
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
        let mail_dir = self
            .mail_dir
            .clone()
            .unwrap_or_else(|| self.db.data_dir.join("mail"));
        Ok(ServerConfig {
            listen: self.listen,
            database_url,
            public_url: config::parse_public_url(&self.public_url)?,
            mail: MailConfig::Directory(mail_dir),
            link_ttl: config::check_link_ttl(Duration::from_secs(self.link_ttl_secs))?,
            user_cooldown: config::rate("user-rate", self.user_rate.0, self.user_rate.1)?,
            token_rate: config::rate("token-rate", self.token_rate.0, self.token_rate.1)?,
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            product_name: self.product_name.clone(),
            mail_from: self.mail_from.clone(),
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
    /// List users.
    List {
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
