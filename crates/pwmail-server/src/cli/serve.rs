//! `pwmail serve`, `pwmail dispatch` and `pwmail migrate`.

use crate::cli::out;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::watch;

use crate::cli::args::{
    ContentArgs, DbArgs, DispatcherArgs, EventsArgs, PoolArgs, RetentionArgs, SenderArgs,
    TemplateArgs, TransportArgs,
};
use crate::clock::{Clock as _, SystemClock};
use crate::config::{RateLimit, ServerConfig};
use crate::tls::TlsFiles;
use crate::{StartOptions, dispatch, dropshot_logger, start};

fn defaults() -> ServerConfig {
    ServerConfig::default()
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on: IP:PORT or HOST:PORT (a host name is resolved once, at start).
    #[arg(long, env = "PWMAIL_LISTEN", default_value_t = defaults().listen,
          value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// Not a flag: the port is part of --listen (e.g. --listen 127.0.0.1:9090).
    #[arg(long, hide = true, value_parser = refuse_port)]
    pub port: Option<String>,
    /// PEM certificate chain for built-in HTTPS (leaf first); needs --tls-key.
    #[arg(long, env = "PWMAIL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "PWMAIL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub content: ContentArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// A stylesheet served with the reset page and linked after the built-in one.
    #[arg(long, env = "PWMAIL_PAGE_CSS")]
    pub page_css: Option<PathBuf>,
    /// Where mail goes and how it is sent, as for `pwmail dispatch`.
    #[command(flatten)]
    pub mail: DispatchArgs,
    #[command(flatten)]
    pub events: EventsArgs,
    /// Refuse new emails with 503 while this many wait to be sent.
    #[arg(long, env = "PWMAIL_MAX_BACKLOG", default_value_t = defaults().max_backlog)]
    pub max_backlog: u64,
    /// Emails per user: COUNT/SECONDS.
    #[arg(long, env = "PWMAIL_USER_RATE", default_value_t = defaults().user_rate)]
    pub user_rate: RateLimit,
    /// Calls per API token: COUNT/SECONDS.
    #[arg(long, env = "PWMAIL_TOKEN_RATE", default_value_t = defaults().token_rate)]
    pub token_rate: RateLimit,
    /// Unknown reset links one client address may open: COUNT/SECONDS.
    #[arg(long, env = "PWMAIL_RESET_GUESS_RATE", default_value_t = defaults().reset_guess_rate)]
    pub reset_guess_rate: RateLimit,
    /// Shortest new password, in characters (NIST SP 800-63B: at least 8; 15 when it is the only factor).
    #[arg(long, env = "PWMAIL_PASSWORD_MIN_LENGTH",
          default_value_t = defaults().password_min_length as u16,
          value_parser = clap::value_parser!(u16).range(8..=64))]
    pub password_min_length: u16,
    /// Password hashes computed at once, 19 MiB each [default: CPU count].
    #[arg(long, env = "PWMAIL_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,
    /// Password submissions that may wait for a hash slot; more are answered 503 (try again).
    #[arg(long, env = "PWMAIL_HASH_QUEUE", default_value_t = defaults().hash_queue)]
    pub hash_queue: usize,
    /// Seconds after which an API call answers 504 (its outcome then unknown).
    #[arg(long, env = "PWMAIL_REQUEST_TIMEOUT_SECS",
          default_value_t = defaults().request_timeout.as_secs())]
    pub request_timeout_secs: u64,
    /// Seconds a client may take: a connection silent this long (before its first request or between requests) is closed, as is one whose request's headers and body have not fully arrived this long after its first byte, or whose TLS handshake has not finished (a 408 is sent where it can be).
    #[arg(long, env = "PWMAIL_CLIENT_TIMEOUT_SECS",
          default_value_t = defaults().client_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub client_timeout_secs: u64,
    /// Connections open at once on --listen; more are closed as soon as they are accepted [default: the open-file limit less what the database, SMTP and files need].
    #[arg(long, env = "PWMAIL_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: Option<u64>,
    /// A second address serving only /livez, /readyz and /metrics, with its own small connection budget, so probes answer while the public port is flooded.
    #[arg(long, env = "PWMAIL_OPS_LISTEN", value_parser = parse_listen)]
    pub ops_listen: Option<SocketAddr>,
    /// Seconds an Idempotency-Key and its stored outcome are kept (a retry within them emails nobody again).
    #[arg(long, env = "PWMAIL_IDEMPOTENCY_TTL_SECS",
          default_value_t = defaults().idempotency_ttl.as_secs(),
          value_parser = clap::value_parser!(u64).range(60..=30 * 24 * 3600))]
    pub idempotency_ttl_secs: u64,
    /// Milliseconds an authenticated API token is trusted without a lookup: a revoked token, a disabled admin or a withdrawn admin role stops working within this (0: at once, one lookup per call).
    #[arg(long, env = "PWMAIL_AUTH_CACHE_MS",
          default_value_t = defaults().auth_cache_ttl.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub auth_cache_ms: u64,
    /// Email of the admin created on first start with an empty database.
    #[arg(long, env = "PWMAIL_BOOTSTRAP_ADMIN", default_value_t = defaults().bootstrap_admin_email)]
    pub bootstrap_admin: String,
    /// Reach the mail transport before serving (SMTP: connect, EHLO, STARTTLS, AUTH; the
    /// hook: a signed pwmail.check) and refuse to start if that fails. Without it the
    /// same check runs after start and only warns.
    #[arg(long, env = "PWMAIL_CHECK_MAIL")]
    pub check_mail: bool,
}

/// `--listen`: a socket address, or a host name and port resolved now
/// (the first address the resolver gives).
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| format!("{text:?} is not HOST:PORT or IP:PORT ({e})"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

fn refuse_port(_: &str) -> Result<String, String> {
    Err("there is no --port: give the whole address, e.g. --listen 127.0.0.1:9090".into())
}

impl ServeArgs {
    pub fn to_config(&self, db: &DbArgs) -> anyhow::Result<ServerConfig> {
        let mut config = ServerConfig {
            listen: self.listen,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            database_url: db.url(),
            db_acquire_timeout: self.mail.pool.acquire_timeout(),
            db_pool_size: self.mail.pool.db_pool_size,
            mail_from: self.mail.sender.mail_from.clone(),
            max_backlog: self.max_backlog,
            user_rate: self.user_rate,
            token_rate: self.token_rate,
            reset_guess_rate: self.reset_guess_rate,
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            client_timeout: Duration::from_secs(self.client_timeout_secs),
            max_connections: self
                .max_connections
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            ops_listen: self.ops_listen,
            idempotency_ttl: Duration::from_secs(self.idempotency_ttl_secs),
            retention: self.retention.to_config(),
            page_css: self.page_css.clone(),
            auth_cache_ttl: Duration::from_millis(self.auth_cache_ms),
            password_min_length: usize::from(self.password_min_length),
            hash_queue: self.hash_queue,
            bootstrap_admin_email: self.bootstrap_admin.clone(),
            dispatcher: self.mail.dispatcher.to_config(),
            ..ServerConfig::default()
        };
        if let Some(n) = self.hash_concurrency {
            config.hash_concurrency = n;
        }
        self.mail.transport.apply(&mut config, &db.dir.data_dir)?;
        self.events.apply(&mut config)?;
        self.content.apply(&mut config)?;
        self.mail.templates.apply(&mut config)?;
        Ok(config)
    }
}

#[derive(Args, Debug)]
pub struct DispatchArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub pool: PoolArgs,
    #[command(flatten)]
    pub sender: SenderArgs,
    #[command(flatten)]
    pub templates: TemplateArgs,
    #[command(flatten)]
    pub transport: TransportArgs,
    #[command(flatten)]
    pub dispatcher: DispatcherArgs,
}

/// A channel that turns true on Ctrl-C or SIGTERM.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}

pub async fn serve(args: &ServeArgs, db: &DbArgs) -> anyhow::Result<()> {
    let config = args.to_config(db)?;
    let mut stop = shutdown_signal();
    // `start` loads the pair and the templates again; checking them first
    // keeps a wrong file from creating a data directory and a database on
    // the way to its error.
    if let Some(files) = &config.tls {
        crate::tls::load(files, SystemClock.now() / 1000)?;
    }
    crate::mail::Renderer::for_config(&config)?;
    db.resolve()?;
    match crate::http::connections::raise_nofile_limit() {
        Ok(limit) => tracing::info!(
            soft_before = limit.soft_before,
            soft = limit.soft,
            hard = limit.hard,
            "open-file limit"
        ),
        Err(e) => tracing::warn!(error = %e, "could not read or raise the open-file limit"),
    }
    let _lock = lock_sqlite(&config.database_url)?;
    let pool = pwmail_store::PoolOptions {
        acquire_timeout: config.db_acquire_timeout,
        max_connections: config.db_pool_size,
    };
    let store = pwmail_store::open_with(&config.database_url, pool)
        .await
        .map_err(|e| anyhow::anyhow!("opening the database: {e}"))?;
    // After the database opened: a wrong database URL stops the start
    // before the check makes the mail directory.
    let transport = crate::build_transport(&config)?;
    let check = check_mail(transport, config.dispatcher.send_timeout);
    if args.check_mail {
        check.await?;
    } else {
        tokio::spawn(async move {
            if let Err(e) = check.await {
                tracing::warn!(
                    error = %format!("{e:#}"),
                    "the mail settings check failed; pwmail serves anyway and emails wait \
                     in the outbox until delivery works (--check-mail refuses to start instead)"
                );
            }
        });
    }
    if _lock.is_some() {
        end_abandoned_leases(&*store).await;
    }
    let (running, bootstrap) = start(StartOptions {
        config: config.clone(),
        store,
        clock: Arc::new(SystemClock),
        log: dropshot_logger(),
    })
    .await?;
    if let Some(b) = bootstrap {
        // Printed, never logged: the only time this token is shown.
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "Created bootstrap admin {}. Its API token (shown only now):",
            b.email
        )?;
        writeln!(out, "{}", b.token.expose())?;
        out.flush()?;
    }
    // The running server's settings: a public URL on port 0 now names the
    // port bound.
    let config = running.app.config();
    for warning in config.public_url_warnings() {
        tracing::warn!(public_url = %config.public_url, "{warning}");
    }
    if let Some(ops) = running.ops_addr() {
        tracing::info!(ops_listen = %ops, "operator endpoints (/livez, /readyz, /metrics)");
    }
    tracing::info!(
        listen = %running.local_addr(),
        tls = config.tls.is_some(),
        public_url = %config.public_url,
        mail = %config.mail,
        dkim = config.dkim.as_ref().map(|d| d.to_string()).as_deref(),
        "pwmail serving"
    );
    let _ = stop.wait_for(|s| *s).await;
    running.shutdown().await
}

/// Reaches the transport as a send would, without a message; logs what it
/// answered.
async fn check_mail(
    transport: Arc<dyn crate::mail::transport::Transport>,
    limit: Duration,
) -> anyhow::Result<()> {
    let via = transport.describe();
    let answer = tokio::time::timeout(limit, transport.check())
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "mail check: {via} gave no answer within {} s",
                limit.as_secs()
            )
        })?
        .map_err(|e| anyhow::anyhow!("mail check: {via}: {e}"))?;
    tracing::info!(transport = %via, answer = %answer, "mail settings check passed");
    Ok(())
}

/// The exclusive lock of a SQLite database, for a process that serves it.
fn lock_sqlite(database_url: &str) -> anyhow::Result<Option<crate::files::ServerLock>> {
    match pwmail_store::sqlite_file(database_url) {
        Some(file) => Ok(Some(crate::files::lock_server(&file)?)),
        None => Ok(None),
    }
}

/// With the SQLite lock held, no other process sends from this database:
/// a message left `sending` was being sent by a process that died, and is
/// sent now rather than when its lease would have ended (2 minutes by
/// default). It may have gone out before the process died: at least once,
/// never lost.
async fn end_abandoned_leases(store: &dyn pwmail_store::Store) {
    match crate::app::users::end_abandoned_leases(store, SystemClock.now()).await {
        Ok(0) => {}
        Ok(messages) => tracing::warn!(
            messages,
            "messages a stopped process left being sent are due again now \
             (they may have been sent before it stopped)"
        ),
        Err(e) => tracing::warn!(error = %e, "could not end the leases a stopped process left"),
    }
    match crate::app::events::end_abandoned_leases(store, SystemClock.now()).await {
        Ok(0) => {}
        Ok(events) => tracing::warn!(
            events,
            "events a stopped process left being delivered are due again now \
             (the receiver may have them already: it drops a repeated id)"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not end the event leases a stopped process left")
        }
    }
}

pub async fn dispatch_only(args: &DispatchArgs, db: &DbArgs) -> anyhow::Result<()> {
    let _lock = lock_sqlite(&db.resolve()?)?;
    let store = db.open(args.pool.pool()).await?;
    if _lock.is_some() {
        end_abandoned_leases(&*store).await;
    }
    let mut config = ServerConfig {
        mail_from: args.sender.mail_from.clone(),
        dispatcher: args.dispatcher.to_config(),
        ..ServerConfig::default()
    };
    args.transport.apply(&mut config, &db.dir.data_dir)?;
    args.templates.apply(&mut config)?;
    dispatch(store, &config, shutdown_signal()).await
}

pub async fn migrate(db: &DbArgs) -> anyhow::Result<()> {
    let store = db.open(pwmail_store::PoolOptions::default()).await?;
    let marked = crate::app::users::check_addresses(&*store).await?;
    out!("the database schema is up to date")?;
    if marked > 0 {
        out!("{marked} user(s) hold an address mail cannot reach; pwmail refuses to email them")?;
    }
    Ok(())
}
