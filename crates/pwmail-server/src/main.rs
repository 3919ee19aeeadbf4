//! `pwmail`: serve the API, dispatch mail, manage users, tokens and the outbox.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use pwmail_server::cli::{
    Cli, Command, LogFormat, MailCommand, OutboxCommand, PreviewKind, TokenCommand, UserCommand,
};
use pwmail_server::clock::{Clock, SystemClock};
use pwmail_server::{StartOptions, admin, mail, settings_file};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(path) = settings_file::config_path(&args) {
        match settings_file::read(&path) {
            Ok(settings) => {
                for (var, value) in settings {
                    if std::env::var_os(&var).is_none() {
                        // SAFETY: no other thread exists yet; the runtime
                        // starts below.
                        unsafe { std::env::set_var(var, value) };
                    }
                }
            }
            Err(e) => {
                eprintln!("pwmail: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let cli = Cli::parse_from(args);
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pwmail: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<PasswordMismatch>() => {
            eprintln!("pwmail: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("pwmail: {e:#}");
            ExitCode::from(if is_check_password() { 2 } else { 1 })
        }
    }
}

/// `check-password`'s "no": exit status 1, apart from errors (2).
#[derive(Debug, thiserror::Error)]
#[error("the password does not match")]
struct PasswordMismatch;

fn is_check_password() -> bool {
    std::env::args().any(|a| a == "check-password")
}

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("PWMAIL_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
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

async fn run(command: Command) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match command {
        Command::Serve(args) => {
            let config = args.to_config()?;
            let mut stop = shutdown_signal();
            let options = StartOptions {
                config: config.clone(),
                clock: Arc::new(SystemClock),
                dispatcher: args.dispatcher.to_config(),
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
            let _ = stop.wait_for(|s| *s).await;
            running.shutdown().await
        }
        Command::Dispatch(args) => {
            let store = args.db.open().await?;
            let mail = args.mail.to_config(&args.db.data_dir)?;
            tracing::info!(mail = ?mail, "pwmail dispatching");
            pwmail_server::dispatch(
                store,
                &mail,
                &args.mail.mail_from,
                args.dispatcher.to_config(),
                shutdown_signal(),
            )
            .await
        }
        Command::Send(args) => send(*args).await,
        Command::Migrate { db } => {
            db.open().await?;
            println!("the database schema is up to date");
            Ok(())
        }
        Command::User(cmd) => user(cmd, now).await,
        Command::Token(cmd) => token(cmd, now).await,
        Command::Outbox(cmd) => outbox(cmd, now).await,
        Command::Mail(cmd) => mail_command(cmd, now),
    }
}

async fn user(cmd: UserCommand, now: i64) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            email,
            admin: is_admin,
            name,
            db,
        } => {
            let store = db.open().await?;
            let user = admin::add_user(&*store, &email, is_admin, name.as_deref(), now).await?;
            println!(
                "added user {} (id {}{})",
                user.email,
                user.id,
                if user.is_admin { ", admin" } else { "" }
            );
        }
        UserCommand::Import { file, db } => {
            let emails = pwmail_server::bulk::read_csv(&file)?;
            let store = db.open().await?;
            let started = std::time::Instant::now();
            let imported = admin::import_users(&*store, &emails, now).await?;
            println!(
                "imported {} user(s), {} already present, in {:.1} s",
                imported.added,
                imported.present,
                started.elapsed().as_secs_f64()
            );
        }
        UserCommand::List { db } => {
            let store = db.open().await?;
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
        UserCommand::CheckPassword { email, db } => {
            let store = db.open().await?;
            let user = store
                .find_user_by_email(&email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user with email {email}"))?;
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            let verified = match store.password_hash(user.id).await? {
                Some(phc) => {
                    pwmail_server::password::Hasher::new(1, 0)
                        .verify(password, phc)
                        .await?
                }
                None => false,
            };
            if !verified {
                return Err(PasswordMismatch.into());
            }
            println!("the password matches");
        }
        UserCommand::Disable { email, db } => {
            let store = db.open().await?;
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
            let store = db.open().await?;
            let secret = admin::create_token(&*store, &email, &label, now).await?;
            println!("{}", secret.expose());
        }
        TokenCommand::List { email, db } => {
            let store = db.open().await?;
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
            let store = db.open().await?;
            admin::revoke_token(&*store, id, now).await?;
            println!("revoked API token {id}");
        }
    }
    Ok(())
}

async fn send(args: pwmail_server::cli::SendArgs) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let token = match (&args.token_file, &args.token) {
        (Some(file), _) => std::fs::read_to_string(file)?.trim().to_string(),
        (None, Some(token)) => token.clone(),
        (None, None) => anyhow::bail!("no API token: set PWMAIL_TOKEN or pass --token-file"),
    };
    let emails = match (&args.email, &args.from_csv) {
        (Some(email), _) => vec![email.clone()],
        (None, Some(csv)) => pwmail_server::bulk::read_csv(csv)?,
        (None, None) => anyhow::bail!("give --email or --from-csv"),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = Arc::clone(&stop);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: finishing calls in flight, starting no new ones");
            on_signal.store(true, Ordering::Relaxed);
        }
    });
    let summary = pwmail_server::bulk::run(
        pwmail_server::bulk::Job {
            server: args.server,
            token,
            emails,
            operation: args.operation,
            concurrency: args.concurrency,
            max_retries: args.max_retries,
            report: args.report,
            progress: !args.quiet,
        },
        stop,
    )
    .await?;
    summary.print();
    if summary.failed.is_empty() && summary.skipped.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} failed, {} not attempted",
            summary.failed.len(),
            summary.skipped.len()
        )
    }
}

fn show_time(at: Option<i64>) -> String {
    at.map(mail::format_utc).unwrap_or_else(|| "-".into())
}

async fn outbox(cmd: OutboxCommand, now: i64) -> anyhow::Result<()> {
    match cmd {
        OutboxCommand::List { state, limit, db } => {
            let store = db.open().await?;
            println!(
                "{:>8}  {:<9} {:>8}  {:<32} {:<24} {:<20} last error",
                "id", "state", "attempts", "recipient", "kind", "queued"
            );
            for m in store.list_outbox(state, limit).await? {
                println!(
                    "{:>8}  {:<9} {:>8}  {:<32} {:<24} {:<20} {}",
                    m.id,
                    m.state,
                    m.attempts,
                    m.recipient,
                    m.kind,
                    mail::format_utc(m.created_at),
                    m.last_error.as_deref().unwrap_or("-")
                );
            }
        }
        OutboxCommand::Show { id, db } => {
            let store = db.open().await?;
            let m = store
                .outbox_message(id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no outbox message {id}"))?;
            println!("id:           {}", m.id);
            println!("message-id:   <{}>", m.message_id);
            println!("kind:         {}", m.kind);
            println!("recipient:    {}", m.recipient);
            println!("state:        {}", m.state);
            println!("attempts:     {}", m.attempts);
            println!("queued:       {}", mail::format_utc(m.created_at));
            println!("next attempt: {}", show_time(m.next_attempt_at));
            println!("sent:         {}", show_time(m.sent_at));
            println!("last reply:   {}", m.last_reply.as_deref().unwrap_or("-"));
            println!("last error:   {}", m.last_error.as_deref().unwrap_or("-"));
            println!("request id:   {}", m.request_id.as_deref().unwrap_or("-"));
        }
        OutboxCommand::Retry { id, db } => {
            let store = db.open().await?;
            if store.requeue_dead(id, now).await? {
                println!("requeued outbox message {id}");
            } else {
                anyhow::bail!(
                    "outbox message {id} is not dead (only dead messages can be retried)"
                );
            }
        }
    }
    Ok(())
}

fn mail_command(cmd: MailCommand, now: i64) -> anyhow::Result<()> {
    match cmd {
        MailCommand::Preview {
            kind,
            to,
            product_name,
            support_contact,
            template_dir,
            mail_from,
            public_url,
            link_ttl_secs,
        } => {
            admin::check_email(&to)?;
            let renderer = mail::Renderer::new(
                &product_name,
                support_contact.as_deref(),
                template_dir.as_deref(),
            )?;
            let lifetime = std::time::Duration::from_secs(link_ttl_secs);
            let link = format!("{}/reset/EXAMPLE-TOKEN", public_url.trim_end_matches('/'));
            let rendered = match kind {
                PreviewKind::SendPasswordEmail | PreviewKind::ResetPasswordByAdmin => renderer
                    .render_link_email(&mail::LinkEmail {
                        purpose: match kind {
                            PreviewKind::SendPasswordEmail => {
                                pwmail_store::LinkPurpose::SendPasswordEmail
                            }
                            _ => pwmail_store::LinkPurpose::ResetPasswordByAdmin,
                        },
                        email: &to,
                        name: None,
                        link: &link,
                        lifetime,
                        expires_at: now + lifetime.as_millis() as i64,
                    })?,
                PreviewKind::PasswordChanged => renderer.render_password_changed(&to, None, now)?,
            };
            let message = pwmail_store::NewMessage {
                message_id: format!(
                    "preview@{}",
                    mail_from
                        .rsplit('@')
                        .next()
                        .unwrap_or("localhost")
                        .trim_end_matches('>')
                ),
                kind: format!("{kind:?}"),
                recipient: to,
                subject: rendered.subject,
                body_text: rendered.text,
                body_html: rendered.html,
            };
            let from = mail_from.parse()?;
            let mime = mail::build_message(&message, &from, now)?;
            println!("{}", String::from_utf8_lossy(&mime.formatted()));
            Ok(())
        }
    }
}
