//! The pwmail service: the generated API trait implemented over a store, a
//! durable outbox and its dispatcher. `main.rs` is the `pwmail` binary.

pub mod admin;
pub mod auth;
pub mod bulk;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod health;
pub mod http_api;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod outbox;
pub mod password;
pub mod reset_page;
pub mod settings_file;
pub mod smtp_pool;
pub mod state;
pub mod token;
pub mod transport;
pub mod validate;

use std::sync::Arc;

use anyhow::Context as _;
use lettre::message::Mailbox;
use pwmail_store::Store;
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::{MailConfig, ServerConfig};
use crate::outbox::{Dispatcher, DispatcherConfig};
use crate::state::AppState;
use crate::transport::{DirectoryTransport, SmtpTransport, Transport};

pub use crate::token::Secret;

/// A server started in this process: the HTTP API and the dispatcher.
pub struct Running {
    server: dropshot::HttpServer<Arc<AppState>>,
    dispatcher: tokio::task::JoinHandle<()>,
    backlog_watch: tokio::task::JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    pub state: Arc<AppState>,
}

impl Running {
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// Stops accepting requests, lets in-flight ones and sends finish.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.server.close().await.map_err(anyhow::Error::msg)?;
        let _ = self.shutdown.send(true);
        self.backlog_watch.abort();
        self.dispatcher.await.context("dispatcher task")?;
        Ok(())
    }
}

/// The admin created on first start, whose token is shown once.
pub struct Bootstrap {
    pub email: String,
    pub token: Secret,
}

pub struct StartOptions {
    pub config: ServerConfig,
    pub clock: Arc<dyn Clock>,
    pub dispatcher: DispatcherConfig,
    pub template_dir: Option<std::path::PathBuf>,
    /// dropshot's logger; `logging::SlogToTracing` forwards it into tracing.
    pub log: slog::Logger,
}

pub use logging::dropshot_logger;

pub async fn start(options: StartOptions) -> anyhow::Result<(Running, Option<Bootstrap>)> {
    let StartOptions {
        config,
        clock,
        dispatcher,
        template_dir,
        log,
    } = options;
    let store = pwmail_store::open_with(&config.database_url, config.db_acquire_timeout)
        .await
        .context("opening the database")?;
    let bootstrap = bootstrap_admin(&*store, &config.bootstrap_admin_email, clock.now()).await?;

    let renderer = mail::Renderer::new(
        &config.product_name,
        config.support_contact.as_deref(),
        template_dir.as_deref(),
    )?;
    let transport = build_transport(&config.mail, &config.mail_from)?;

    let wakeup = Arc::new(Notify::new());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let dispatcher = tokio::spawn(
        Dispatcher {
            store: Arc::clone(&store),
            transport,
            clock: Arc::clone(&clock),
            wakeup: Arc::clone(&wakeup),
            config: dispatcher,
        }
        .run(shutdown_rx),
    );

    let state = Arc::new(AppState {
        store,
        clock,
        config: config.clone(),
        renderer,
        outbox_wakeup: wakeup,
        backlog: Default::default(),
        pages: reset_page::environment(),
        policy: password::Policy {
            min_length: config.password_min_length,
        },
        hasher: password::Hasher::new(config.hash_concurrency, config.hash_queue),
    });
    metrics::handle();
    let backlog_watch = tokio::spawn(state::watch_backlog(
        Arc::clone(&state),
        std::time::Duration::from_millis(250),
    ));
    let mut api = pwmail_api::pwmail_api_mod::api_description::<http_api::PwmailImpl>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for registered in [
        api.register(metrics::metrics_endpoint),
        api.register(reset_page::reset_form),
        api.register(reset_page::reset_submit),
        api.register(reset_page::reset_css),
        api.register(health::livez),
        api.register(health::readyz),
    ] {
        registered.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let dropshot_config = dropshot::ConfigDropshot {
        bind_address: config.listen,
        default_request_body_max_bytes: config::REQUEST_BODY_MAX_BYTES,
        ..Default::default()
    };
    let server = dropshot::ServerBuilder::new(api, Arc::clone(&state), log)
        .config(dropshot_config)
        .start()
        .map_err(|e| anyhow::anyhow!("starting the HTTP server on {}: {e}", config.listen))?;
    Ok((
        Running {
            server,
            dispatcher,
            backlog_watch,
            shutdown,
            state,
        },
        bootstrap,
    ))
}

/// The transport the mail settings name.
pub fn build_transport(mail: &MailConfig, mail_from: &str) -> anyhow::Result<Arc<dyn Transport>> {
    let from: Mailbox = mail_from
        .parse()
        .with_context(|| format!("--mail-from {mail_from:?} is not a mailbox"))?;
    Ok(match mail {
        MailConfig::Directory(dir) => Arc::new(
            DirectoryTransport::new(dir.clone(), from)
                .with_context(|| format!("creating mail directory {}", dir.display()))?,
        ),
        MailConfig::Smtp(smtp) => Arc::new(SmtpTransport::new(smtp, from)?),
    })
}

/// The dispatcher alone, as `pwmail dispatch` runs it: until `shutdown`.
pub async fn dispatch(
    store: Arc<dyn Store>,
    mail: &MailConfig,
    mail_from: &str,
    config: DispatcherConfig,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let transport = build_transport(mail, mail_from)?;
    Dispatcher {
        store,
        transport,
        clock: Arc::new(clock::SystemClock),
        wakeup: Arc::new(Notify::new()),
        config,
    }
    .run(shutdown)
    .await;
    Ok(())
}

/// On first start with no admin (an empty database, or one with only users
/// added before the first `serve`), an admin with one API token.
async fn bootstrap_admin(
    store: &dyn Store,
    email: &str,
    now: pwmail_store::UnixMillis,
) -> anyhow::Result<Option<Bootstrap>> {
    if store.count_admins().await? > 0 {
        return Ok(None);
    }
    let user = match admin::add_user(store, email, true, Some("Bootstrap admin"), now).await {
        Ok(user) => user,
        // Another replica won the race.
        Err(admin::AdminError::Store(pwmail_store::StoreError::Conflict(_))) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let token = admin::create_token(store, &user.email, "bootstrap", now).await?;
    Ok(Some(Bootstrap {
        email: user.email,
        token,
    }))
}
