//! `pwmail`: serve the API, manage users and tokens.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use pwmail_server::cli::{Cli, Command, LogFormat, TokenCommand, UserCommand};
use pwmail_server::clock::{Clock, SystemClock};
use pwmail_server::outbox::DispatcherConfig;
use pwmail_server::{StartOptions, admin, mail};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pwmail: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("PWMAIL_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match command {
        Command::Serve(args) => {
            let config = args.to_config()?;
            let options = StartOptions {
                config: config.clone(),
                clock: Arc::new(SystemClock),
                dispatcher: DispatcherConfig {
                    concurrency: args.mail_concurrency,
                    ..DispatcherConfig::default()
                },
                template_dir: args.template_dir.clone(),
                log: pwmail_server::dropshot_logger(),
            };
            let (running, bootstrap) = pwmail_server::start(options).await?;
            if let Some(b) = bootstrap {
                // Printed, never logged: the only time this token is shown.
                println!(
                    "Created bootstrap admin {}. Its API token (shown only now):",
                    b.email
                );
                println!("{}", b.token.expose());
            }
            tracing::info!(
                listen = %running.local_addr(),
                public_url = %config.public_url,
                mail = ?config.mail,
                "pwmail serving"
            );
            tokio::select! {
                r = tokio::signal::ctrl_c() => r?,
                r = sigterm() => r?,
            }
            tracing::info!("shutting down");
            running.shutdown().await
        }
        Command::User(cmd) => user(cmd, now).await,
        Command::Token(cmd) => token(cmd, now).await,
    }
}

async fn sigterm() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    term.recv().await;
    Ok(())
}

async fn user(cmd: UserCommand, now: i64) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            email,
            admin: is_admin,
            name,
            db,
        } => {
            let store = pwmail_store::open(&db.resolve()?).await?;
            let user = admin::add_user(&*store, &email, is_admin, name.as_deref(), now).await?;
            println!(
                "added user {} (id {}{})",
                user.email,
                user.id,
                if user.is_admin { ", admin" } else { "" }
            );
        }
        UserCommand::List { db } => {
            let store = pwmail_store::open(&db.resolve()?).await?;
            println!(
                "{:>6}  {:<40} {:<6} {:<9} {:<8} created",
                "id", "email", "admin", "state", "password"
            );
            for u in store.list_users().await? {
                println!(
                    "{:>6}  {:<40} {:<6} {:<9} {:<8} {}",
                    u.id,
                    u.email,
                    if u.is_admin { "yes" } else { "no" },
                    if u.disabled { "disabled" } else { "active" },
                    if u.has_password { "set" } else { "none" },
                    mail::format_utc(u.created_at)
                );
            }
        }
        UserCommand::Disable { email, db } => {
            let store = pwmail_store::open(&db.resolve()?).await?;
            let user = admin::disable_user(&*store, &email, now).await?;
            println!(
                "disabled user {}; their API tokens and open links are revoked",
                user.email
            );
        }
    }
    Ok(())
}

async fn token(cmd: TokenCommand, now: i64) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create { email, label, db } => {
            let store = pwmail_store::open(&db.resolve()?).await?;
            let secret = admin::create_token(&*store, &email, &label, now).await?;
            println!("{}", secret.expose());
        }
        TokenCommand::List { email, db } => {
            let store = pwmail_store::open(&db.resolve()?).await?;
            println!("{:>6}  {:<20} {:<8} created", "id", "label", "state");
            for t in admin::list_tokens(&*store, &email).await? {
                println!(
                    "{:>6}  {:<20} {:<8} {}",
                    t.id,
                    t.label,
                    if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "live"
                    },
                    mail::format_utc(t.created_at)
                );
            }
        }
        TokenCommand::Revoke { id, db } => {
            let store = pwmail_store::open(&db.resolve()?).await?;
            admin::revoke_token(&*store, id, now).await?;
            println!("revoked API token {id}");
        }
    }
    Ok(())
}
