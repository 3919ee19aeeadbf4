//! `pwmail send`: password emails for many users through the generated
//! client, with bounded concurrency, retries that honour `Retry-After`, a
//! progress bar, a summary and a report of what failed.

use crate::cli::out;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use pwmail_client::CallError;
use pwmail_client::types::{ResetPasswordByAdminRequest, SendPasswordEmailRequest};
use tokio::sync::Semaphore;

use crate::cli::emails_csv;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("recipients").required(true).args(["email", "from_csv"])))]
pub struct SendArgs {
    /// Base URL of the pwmail API.
    #[arg(long, env = "PWMAIL_SERVER")]
    pub server: String,
    /// PEM file of a CA to trust for an https server, besides the system's roots.
    #[arg(long, env = "PWMAIL_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// One user's email (or --from-csv).
    #[arg(long)]
    pub email: Option<String>,
    /// A CSV file with an `email` column (or --email).
    #[arg(long)]
    pub from_csv: Option<PathBuf>,
    /// `send` (SendPasswordEmail) or `reset` (ResetPasswordByAdmin).
    #[arg(long, value_enum, default_value_t = Operation::Send)]
    pub operation: Operation,
    /// File holding the API token (else PWMAIL_TOKEN).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// API token (prefer --token-file or the variable: a flag shows in `ps`).
    #[arg(long = "token", env = "PWMAIL_TOKEN", hide_env_values = true)]
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

/// `pwmail send`: fails when any email failed or was not attempted.
pub async fn send(args: &SendArgs) -> anyhow::Result<()> {
    let token = match (&args.token_file, &args.token) {
        (Some(file), _) => std::fs::read_to_string(file)
            .with_context(|| format!("reading --token-file {}", file.display()))?
            .trim()
            .to_string(),
        (None, Some(token)) => token.clone(),
        (None, None) => anyhow::bail!("no API token: set PWMAIL_TOKEN or pass --token-file"),
    };
    let emails = match (&args.email, &args.from_csv) {
        (Some(email), _) => vec![email.clone()],
        (None, Some(csv)) => emails_csv::read_emails(csv)?,
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
    let summary = run(
        Job {
            server: args.server.clone(),
            ca_file: args.ca_file.clone(),
            token,
            emails,
            operation: args.operation,
            concurrency: args.concurrency,
            max_retries: args.max_retries,
            report: args.report.clone(),
            progress: !args.quiet,
        },
        stop,
    )
    .await?;
    summary.print()?;
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

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Operation {
    /// SendPasswordEmail: the current password keeps working.
    Send,
    /// ResetPasswordByAdmin: the current password stops working at once.
    Reset,
}

pub struct Job {
    pub server: String,
    pub ca_file: Option<PathBuf>,
    pub token: String,
    pub emails: Vec<String>,
    pub operation: Operation,
    pub concurrency: usize,
    pub max_retries: u32,
    pub report: Option<PathBuf>,
    pub progress: bool,
}

/// What became of one email.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    pub email: String,
    /// HTTP status, or 0 when no answer came.
    pub status: u16,
    pub code: Option<i32>,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub sent: usize,
    pub failed: Vec<Failure>,
    /// Not attempted because the run was interrupted.
    pub skipped: Vec<String>,
    pub retries: usize,
}

impl Summary {
    /// Counts by outcome, each with the first failure's reason, so "HTTP 401"
    /// or "no answer" comes with why (a revoked token, connection refused).
    pub fn print(&self) -> std::io::Result<()> {
        out!("sent: {}", self.sent)?;
        let mut groups: BTreeMap<(u16, &str), (usize, &str)> = BTreeMap::new();
        for f in &self.failed {
            let what = match f.status {
                0 if f.message.starts_with("invalid ") => "invalid input",
                0 => "no answer",
                _ => "HTTP",
            };
            groups.entry((f.status, what)).or_insert((0, &f.message)).0 += 1;
        }
        out!("failed: {}", self.failed.len())?;
        for ((status, what), (n, reason)) in groups {
            match what {
                "HTTP" => out!("  HTTP {status}: {n} ({reason})")?,
                _ => out!("  {what}: {n} ({reason})")?,
            }
        }
        if !self.skipped.is_empty() {
            out!("not attempted (interrupted): {}", self.skipped.len())?;
        }
        out!("retries after 429/503: {}", self.retries)?;
        Ok(())
    }
}

enum Attempt {
    Sent,
    /// Refused for now; try again after this long.
    Later(Duration, Failure),
    Failed(Failure),
}

async fn attempt(client: &pwmail_client::Client, operation: Operation, email: &str) -> Attempt {
    let failed = |status, code, message: String| Failure {
        email: email.to_string(),
        status,
        code,
        message,
    };
    let result = match operation {
        Operation::Send => {
            let body = match send_body(email) {
                Ok(body) => body,
                Err(e) => return Attempt::Failed(failed(0, None, format!("invalid email: {e}"))),
            };
            client.send_password_email_system(&body).await.map(|_| ())
        }
        Operation::Reset => {
            let body = match email.try_into() {
                Ok(email) => ResetPasswordByAdminRequest { email },
                Err(e) => return Attempt::Failed(failed(0, None, format!("invalid email: {e}"))),
            };
            client
                .reset_password_by_admin(&body)
                .await
                .map(|_| ())
                .map_err(CallError::from)
        }
    };
    match result {
        Ok(()) => Attempt::Sent,
        Err(
            e @ CallError::Api {
                status: status @ (429 | 503),
                code,
                ..
            },
        ) => {
            let wait = e.retry_after().unwrap_or(Duration::from_secs(1));
            let failure = failed(status, Some(code), message_of(&e));
            Attempt::Later(
                wait.clamp(Duration::from_secs(1), Duration::from_secs(300)),
                failure,
            )
        }
        Err(CallError::Api {
            status,
            code,
            message,
            ..
        }) => Attempt::Failed(failed(status, Some(code), message)),
        Err(e) => Attempt::Failed(failed(e.status().unwrap_or(0), None, e.to_string())),
    }
}

fn message_of(e: &CallError) -> String {
    match e {
        CallError::Api { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn send_body(email: &str) -> Result<SendPasswordEmailRequest, String> {
    Ok(SendPasswordEmailRequest {
        email: email.try_into().map_err(|e| format!("{e}"))?,
        namespace: Some("system".try_into().map_err(|e| format!("{e}"))?),
    })
}

/// Runs the job until done or until `stop` turns true (in-flight calls finish).
pub async fn run(job: Job, stop: Arc<AtomicBool>) -> anyhow::Result<Summary> {
    let mut builder = pwmail_client::Builder::new(&job.server).api_token(&job.token);
    if let Some(ca) = &job.ca_file {
        builder = builder.ca_file(ca);
    }
    let client = Arc::new(builder.build()?);
    let bar = if job.progress {
        let bar = ProgressBar::new(job.emails.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} [{elapsed_precise}] {per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let permits = Arc::new(Semaphore::new(job.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut summary = Summary::default();
    let mut pending = job.emails.into_iter();
    for email in pending.by_ref() {
        if stop.load(Ordering::Relaxed) {
            summary.skipped.push(email);
            break;
        }
        let permit = Arc::clone(&permits).acquire_owned().await?;
        let (client, stop, bar) = (Arc::clone(&client), Arc::clone(&stop), bar.clone());
        let (operation, max_retries) = (job.operation, job.max_retries);
        tasks.spawn(async move {
            let _permit = permit;
            let mut retries = 0usize;
            let outcome = loop {
                match attempt(&client, operation, &email).await {
                    Attempt::Sent => break Ok(()),
                    Attempt::Failed(f) => break Err(f),
                    Attempt::Later(_, f)
                        if retries >= max_retries as usize || stop.load(Ordering::Relaxed) =>
                    {
                        break Err(f);
                    }
                    Attempt::Later(wait, f) => {
                        retries += 1;
                        bar.set_message(format!("waiting {} s: {}", wait.as_secs(), f.message));
                        tokio::time::sleep(wait).await;
                    }
                }
            };
            bar.inc(1);
            (outcome, retries)
        });
        // Collect what finished, so memory stays bounded on huge lists.
        while let Some(done) = tasks.try_join_next() {
            record(&mut summary, done);
        }
    }
    summary.skipped.extend(pending);
    while let Some(done) = tasks.join_next().await {
        record(&mut summary, done);
    }
    bar.finish_and_clear();
    if let Some(path) = &job.report {
        write_report(path, &summary)?;
    }
    Ok(summary)
}

fn record(
    summary: &mut Summary,
    done: Result<(Result<(), Failure>, usize), tokio::task::JoinError>,
) {
    match done {
        Ok((Ok(()), retries)) => {
            summary.sent += 1;
            summary.retries += retries;
        }
        Ok((Err(f), retries)) => {
            summary.failed.push(f);
            summary.retries += retries;
        }
        Err(e) => summary.failed.push(Failure {
            email: String::new(),
            status: 0,
            code: None,
            message: format!("task failed: {e}"),
        }),
    }
}

/// Failures (and what was not attempted) as JSON, or CSV for `.csv` paths.
fn write_report(path: &Path, summary: &Summary) -> anyhow::Result<()> {
    let skipped = summary.skipped.iter().map(|email| Failure {
        email: email.clone(),
        status: 0,
        code: None,
        message: "not attempted (interrupted)".into(),
    });
    let rows: Vec<Failure> = summary.failed.iter().cloned().chain(skipped).collect();
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        let mut writer = csv::Writer::from_path(path)?;
        for row in &rows {
            writer.serialize(row)?;
        }
        writer.flush()?;
    } else {
        let json = serde_json::json!({
            "sent": summary.sent,
            "failed": summary.failed.len(),
            "not_attempted": summary.skipped.len(),
            "failures": rows,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)?;
    }
    Ok(())
}
