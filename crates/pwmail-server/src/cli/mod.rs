//! The `pwmail` command line: clap arguments, one module per command
//! family, each a thin adapter over `app`. Every flag has a `PWMAIL_*`
//! environment twin; `--config FILE` supplies defaults for them.

pub mod args;
pub mod audit;
pub mod emails_csv;
pub mod events;
pub mod mail;
pub mod outbox;
pub mod retention;
pub mod send;
pub mod serve;
pub mod settings_file;
pub mod users;

use std::path::PathBuf;
use std::process::ExitCode;

/// `println!` that returns the write's error instead of panicking, so that
/// `pwmail user list | head -1` ends quietly when the reader goes away.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(crate) use out;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use crate::cli::args::{DbArgs, WithDb};
use crate::clock::{Clock, SystemClock};

#[derive(Parser, Debug)]
#[command(
    name = "pwmail",
    version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("PWMAIL_GIT_REV"), ")"),
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
    Serve(Box<serve::ServeArgs>),
    /// Run only the mail dispatcher (scale sending apart from the API).
    Dispatch(Box<serve::DispatchArgs>),
    /// Send password emails through a pwmail server (one address or a CSV file).
    Send(Box<send::SendArgs>),
    /// Inspect and requeue queued emails.
    Outbox(WithDb<outbox::OutboxCommand>),
    /// Events waiting for the --events-url receiver, and failed ones sent again.
    Events(WithDb<events::EventsCommand>),
    /// Email templates.
    #[command(subcommand)]
    Mail(Box<mail::MailCommand>),
    /// Bring the database schema up to date (serve and dispatch do it too, under a lock).
    Migrate(DbArgs),
    /// Manage users.
    User(WithDb<users::UserCommand>),
    /// Manage API tokens.
    Token(WithDb<users::TokenCommand>),
    /// Read the audit log.
    Audit(WithDb<audit::AuditCommand>),
    /// Delete what has aged out now (`serve` does it every minute); --dry-run counts it.
    Purge(retention::PurgeArgs),
}

/// A command's "no" that is an answer, not an error (`check-password`).
#[derive(Debug, thiserror::Error)]
pub enum Failed {
    #[error("{0}")]
    Answer(String),
    /// An admin or read-only command pointed at a database that `serve`,
    /// `dispatch` or `migrate` never created (exit status 2).
    #[error(
        "no pwmail database at {0}: run `pwmail serve` or `pwmail migrate` there first, \
         or point --data-dir / --database-url at the existing one"
    )]
    NoDatabase(String),
}

impl Command {
    /// The exit status of an error: commands whose "no" is status 1 report
    /// errors as 2.
    fn error_status(&self) -> u8 {
        match self {
            Command::User(WithDb {
                command: users::UserCommand::CheckPassword { .. },
                ..
            }) => 2,
            _ => 1,
        }
    }
}

/// Parses the arguments (after applying `--config`), runs the command, and
/// says how the process exits.
pub fn main() -> ExitCode {
    crate::files::private_umask();
    // Raw arguments: one that is not UTF-8 is clap's usage error, not a panic.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let applied = match settings_file::apply(&args) {
        Ok(applied) => applied,
        Err(e) => {
            eprintln!("pwmail: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        // A value from the file that the flag refuses: say where it is.
        Err(e) => {
            let said = e.to_string();
            match applied.locate(said.trim_start_matches("error: ")) {
                Some(located) => {
                    eprint!("pwmail: {located}");
                    return ExitCode::from(2);
                }
                None => e.exit(),
            }
        }
    };
    // Traces only for the long-running commands; a variable set wrong
    // stops them before they start.
    let traces = match &cli.command {
        Command::Serve(_) | Command::Dispatch(_) => {
            match crate::observe::traces::Traces::from_env() {
                Ok(traces) => traces,
                Err(e) => {
                    eprintln!("pwmail: {e:#}");
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => None,
    };
    init_logging(cli.log_format, traces.as_ref());
    // `send` waits on the network almost all the time: one thread does it
    // without handing its calls between two (each hand-off a wakeup; its
    // CPU is taken from a server often on the same machine).
    let runtime = match &cli.command {
        Command::Send(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Runtime::new(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pwmail: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(&cli));
    drop(runtime);
    if let Some(traces) = traces {
        traces.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout went away (`| head`): it has what it wanted.
        Err(e) if closed_stdout(&e) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<Failed>() {
            Some(Failed::Answer(no)) => {
                eprintln!("pwmail: {no}");
                ExitCode::from(1)
            }
            Some(Failed::NoDatabase(_)) => {
                let said = format!("{e:#}");
                eprintln!("pwmail: {}", applied.locate(&said).unwrap_or(said));
                ExitCode::from(2)
            }
            None => {
                let said = format!("{e:#}");
                eprintln!("pwmail: {}", applied.locate(&said).unwrap_or(said));
                ExitCode::from(cli.command.error_status())
            }
        },
    }
}

fn closed_stdout(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(format: LogFormat, traces: Option<&crate::observe::traces::Traces>) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter =
        EnvFilter::try_from_env("PWMAIL_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let otel = traces.map(|t| tracing_opentelemetry::layer().with_tracer(t.tracer()));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => registry
            .with(lines.json().flatten_event(true).with_current_span(true))
            .init(),
        LogFormat::Text => registry.with(lines).init(),
    }
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match &cli.command {
        Command::Serve(args) => serve::serve(args, &args.mail.db).await,
        Command::Dispatch(args) => serve::dispatch_only(args, &args.db).await,
        Command::Send(args) => send::send(args).await,
        Command::Migrate(db) => serve::migrate(db).await,
        Command::User(with) => users::user(&with.command, &with.db, now).await,
        Command::Token(with) => users::token(&with.command, &with.db, now).await,
        Command::Audit(with) => audit::audit(&with.command, &with.db).await,
        Command::Purge(args) => retention::purge(args, &args.db, now).await,
        Command::Outbox(with) => outbox::outbox(&with.command, &with.db, now).await,
        Command::Events(with) => events::run(&with.command, &with.db, now).await,
        Command::Mail(cmd) => mail::mail(cmd, now).await,
    }
}
