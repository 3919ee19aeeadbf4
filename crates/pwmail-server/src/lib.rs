//! The pwmail service. `app` holds the product's rules; `http` and `cli`
//! adapt them; `mail`, `outbox`, `secrets` and `observe` are the parts they
//! are built from. `main.rs` is the `pwmail` binary. ARCHITECTURE.md has
//! the map.

pub mod app;
pub mod bulk;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dkim;
pub mod events;
pub mod files;
pub mod hook_post;
pub mod http;
pub mod mail;
pub mod observe;
pub mod outbox;
pub mod secrets;
pub mod tls;

use std::sync::Arc;

use anyhow::Context as _;
use lettre::message::Mailbox;
use pwmail_store::{SpaceWatch, Store};
use tokio::sync::{Notify, watch};

use crate::app::App;
use crate::app::users::Bootstrap;
use crate::clock::Clock;
use crate::config::{MailConfig, ServerConfig};
use crate::mail::transport::{
    Composer, DirectoryTransport, SesTransport, SmtpTransport, Transport, WebhookTransport,
};
use crate::outbox::{Backlog, Dispatcher};

pub use crate::observe::logging::dropshot_logger;
pub use crate::secrets::Secret;

/// How often the outbox backlog is counted.
const BACKLOG_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// How often expired rate-limit state and Idempotency-Keys are purged.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// A server started in this process: the HTTP API and the dispatcher.
pub struct Running {
    server: dropshot::HttpServer<http::Context>,
    /// The operator listener (`--ops-listen`), if any.
    ops: Option<dropshot::HttpServer<http::Context>>,
    dispatcher: tokio::task::JoinHandle<()>,
    /// The events deliverer, with `--events-url`.
    events: Option<tokio::task::JoinHandle<()>>,
    backlog_watch: tokio::task::JoinHandle<()>,
    purge: tokio::task::JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    pub app: Arc<App>,
}

impl Running {
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// The operator listener's address, with `--ops-listen`.
    pub fn ops_addr(&self) -> Option<std::net::SocketAddr> {
        self.ops.as_ref().map(|s| s.local_addr())
    }

    /// Stops accepting requests, lets in-flight ones and sends finish.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.server.close().await.map_err(anyhow::Error::msg)?;
        if let Some(ops) = self.ops {
            ops.close().await.map_err(anyhow::Error::msg)?;
        }
        let _ = self.shutdown.send(true);
        self.backlog_watch.abort();
        self.purge.abort();
        self.dispatcher.await.context("dispatcher task")?;
        if let Some(events) = self.events {
            events.await.context("events task")?;
        }
        Ok(())
    }
}

pub struct StartOptions {
    pub config: ServerConfig,
    /// The opened (and migrated) database of `config.database_url`.
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// dropshot's logger; `observe::logging` forwards it into tracing.
    pub log: slog::Logger,
}

/// Starts the API and the dispatcher; on first start, also the bootstrap
/// admin, whose token the caller shows once.
pub async fn start(options: StartOptions) -> anyhow::Result<(Running, Option<Bootstrap>)> {
    let StartOptions {
        mut config,
        store,
        clock,
        log,
    } = options;
    files::warn_if_exposed(&config.secret_paths());
    // Checked before anything is written: a wrong pair is a start-up error.
    let tls = match &config.tls {
        Some(files) => Some(dropshot::ConfigTls::Dynamic(tls::load(
            files,
            clock.now() / 1000,
        )?)),
        None => None,
    };
    // Bound first: with port 0 the system picks a free port, which the
    // default public URL (port 0 too) then names; and nothing is written
    // for an address already in use.
    let bind = |address| {
        // dropshot's error names the address, its source why (in use…).
        dropshot::bind(address).map_err(|e| match std::error::Error::source(&e) {
            Some(why) => anyhow::anyhow!("listening on {address}: {why}"),
            None => anyhow::anyhow!("listening on {address}: {e}"),
        })
    };
    let public_listener = bind(config.listen)?;
    let ops_listener = config.ops_listen.map(bind).transpose()?;
    if config.public_url.port() == Some(0) {
        config.public_url = config::public_url_for(public_listener.local_addr()?, tls.is_some());
    }
    // Before any link is issued: the issue reads whether mail can reach a
    // stored address.
    let marked = app::users::check_addresses(&*store).await?;
    if marked > 0 {
        tracing::warn!(
            users = marked,
            "users hold an address mail cannot reach; calls for them are refused"
        );
    }
    // Which events the database's triggers write from now on: none
    // without a receiver.
    let kinds = config.events.as_ref().map_or(&[][..], |e| &e.kinds[..]);
    store
        .set_event_kinds(kinds)
        .await
        .context("choosing the events to write")?;
    let bootstrap =
        app::users::bootstrap_admin(&*store, &config.bootstrap_admin_email, clock.now()).await?;

    let renderer = Arc::new(mail::Renderer::for_config(&config)?);
    let transport = build_transport(&config)?;

    let wakeup = Arc::new(Notify::new());
    let space = Arc::new(SpaceWatch::default());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let dispatcher = tokio::spawn(
        Dispatcher {
            store: Arc::clone(&store),
            transport,
            renderer: Arc::clone(&renderer),
            clock: Arc::clone(&clock),
            wakeup: Arc::clone(&wakeup),
            config: config.dispatcher.clone(),
            space: Arc::clone(&space),
            unrecorded: Default::default(),
        }
        .run(shutdown_rx),
    );
    let events = match &config.events {
        Some(events) => Some(tokio::spawn(
            events::Deliverer::new(Arc::clone(&store), Arc::clone(&clock), events.clone())?
                .run(shutdown.subscribe()),
        )),
        None => None,
    };
    let backlog = Backlog::default();
    let backlog_watch = tokio::spawn(backlog.clone().watch(
        Arc::clone(&store),
        BACKLOG_EVERY,
        config.dispatcher.store_timeout,
    ));

    let app = Arc::new(App::new(app::Parts {
        store,
        clock,
        mailer: Arc::new(mail::Mailer::new(Arc::clone(&renderer), &config)),
        outbox_wakeup: wakeup,
        backlog: Arc::new(backlog),
        hasher: secrets::password::Hasher::new(config.hash_concurrency, config.hash_queue),
        space,
        config,
    }));
    app.fit_rate_state()
        .await
        .context("fitting rate-limit state to the configured rates")?;
    let purge = tokio::spawn({
        let app = Arc::clone(&app);
        async move {
            loop {
                app.purge_expired(&observe::metrics::purged).await;
                tokio::time::sleep(PURGE_EVERY).await;
            }
        }
    });
    observe::metrics::handle();
    let listen = app.config().listen;
    let client_timeout = app.config().client_timeout;
    let max_connections = app.config().max_connections.unwrap_or_else(|| {
        let soft = http::connections::nofile_limit().map_or(1024, |l| l.rlim_cur);
        http::connections::default_max_connections(soft, app.config())
    });
    let context = Arc::new(http::Context::new(Arc::clone(&app))?);
    let listener = |api, tcp: std::net::TcpListener, name, max_connections| {
        let bind_address = tcp.local_addr()?;
        dropshot::ServerBuilder::new(api, (*context).clone(), log.clone())
            .listener(tcp)
            .config(dropshot::ConfigDropshot {
                bind_address,
                default_request_body_max_bytes: config::REQUEST_BODY_MAX_BYTES,
                ..Default::default()
            })
            .tls(tls.clone())
            .error_renderer(http::router_errors::renderer(Arc::clone(&context)))
            .response_headers(http::every_response_headers(tls.is_some()))
            .connection_limits(http::connections::limits(
                Arc::clone(&context),
                name,
                client_timeout,
                max_connections,
            ))
            .start()
            .map_err(anyhow::Error::from)
    };
    let server = listener(
        http::api_description()?,
        public_listener,
        "public",
        max_connections,
    )
    .map_err(|e| anyhow::anyhow!("starting the HTTP server on {listen}: {e}"))?;
    tracing::info!(
        max_connections,
        client_timeout_secs = client_timeout.as_secs(),
        "connection limits"
    );
    let ops = match ops_listener {
        Some(tcp) => Some(
            listener(
                http::ops_description()?,
                tcp,
                "ops",
                http::connections::OPS_MAX_CONNECTIONS,
            )
            .map_err(|e| anyhow::anyhow!("starting the operator listener: {e}"))?,
        ),
        None => None,
    };
    Ok((
        Running {
            server,
            ops,
            dispatcher,
            events,
            backlog_watch,
            purge,
            shutdown,
            app,
        },
        bootstrap,
    ))
}

/// The transport the mail settings name, signing with `config.dkim`.
pub fn build_transport(config: &ServerConfig) -> anyhow::Result<Arc<dyn Transport>> {
    let mail_from = &config.mail_from;
    let from: Mailbox = mail_from
        .parse()
        .with_context(|| format!("--mail-from {mail_from:?} is not a mailbox"))?;
    let composer = Composer {
        from,
        dkim: config.dkim.clone(),
    };
    Ok(match &config.mail {
        MailConfig::Directory(dir) => Arc::new(
            DirectoryTransport::new(dir.clone(), composer)
                .with_context(|| format!("creating mail directory {}", dir.display()))?,
        ),
        MailConfig::Smtp(smtp) => Arc::new(SmtpTransport::new(smtp, composer)?),
        MailConfig::Ses(ses) => {
            Arc::new(SesTransport::new(ses, composer).context("setting up the SES HTTP client")?)
        }
        MailConfig::Hook(hook) => Arc::new(
            WebhookTransport::new(hook, mail_from)
                .context("setting up the mail hook's HTTP client")?,
        ),
    })
}

/// The dispatcher alone, as `pwmail dispatch` runs it (with `config`'s
/// mail, sender, templates and dispatcher settings): until `shutdown`.
pub async fn dispatch(
    store: Arc<dyn Store>,
    config: &ServerConfig,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let transport = build_transport(config)?;
    let renderer = Arc::new(mail::Renderer::for_config(config)?);
    tracing::info!(mail = %config.mail, "pwmail dispatching");
    Dispatcher {
        store,
        transport,
        renderer,
        clock: Arc::new(clock::SystemClock),
        wakeup: Arc::new(Notify::new()),
        config: config.dispatcher.clone(),
        space: Default::default(),
        unrecorded: Default::default(),
    }
    .run(shutdown)
    .await;
    Ok(())
}
