//! The bulk sender behind `pwmail send`: an HTTP client of pwmail's own API
//! (the generated client), not an adapter of `app` — it calls nothing of
//! the service but its API, as any other client would. Password emails for
//! many users with bounded concurrency, retries that honour `Retry-After`,
//! an Idempotency-Key per row (so a re-run never emails anyone twice), a
//! progress bar and a report of what failed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use pwmail_client::CallError;
use pwmail_client::types::{
    CreateResetLinkRequest, ResetPasswordByAdminRequest, SendPasswordEmailRequest,
};
use sha2::Digest as _;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Operation {
    /// SendPasswordEmail: the current password keeps working.
    Send,
    /// ResetPasswordByAdmin: the current password stops working at once.
    Reset,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Send => "send_password_email",
            Operation::Reset => "reset_password_by_admin",
        }
    }
}

/// What every link of a run should be beyond the F5 operations' defaults;
/// asking anything makes the run call pwmail's own operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkAsk {
    pub ttl_secs: Option<u64>,
    pub return_to: Option<pwmail_client::types::CreateResetLinkRequestReturnTo>,
    /// The run's language, over each user's own.
    pub locale: Option<pwmail_client::types::CreateResetLinkRequestLocale>,
}

impl LinkAsk {
    fn is_default(&self) -> bool {
        *self == LinkAsk::default()
    }
}

/// What names one run in its Idempotency-Keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunId(pub String);

impl RunId {
    /// The digest a run id is made of when none is given: the operation,
    /// what the links should be (when asked; runs that ask nothing keep
    /// the ids they had), then every byte of the input ([`RunId::choose`]).
    pub fn input_digest(operation: Operation, link: &LinkAsk) -> sha2::Sha256 {
        let mut digest = sha2::Sha256::new();
        digest.update(operation.name());
        digest.update([0]);
        if let Some(ttl) = link.ttl_secs {
            digest.update(format!("ttl_secs={ttl}"));
            digest.update([0]);
        }
        if let Some(return_to) = &link.return_to {
            digest.update(format!("return_to={}", return_to.as_str()));
            digest.update([0]);
        }
        if let Some(locale) = &link.locale {
            digest.update(format!("locale={}", locale.as_str()));
            digest.update([0]);
        }
        digest
    }

    /// `--run-id`: given, `new` (random), or `input` (see
    /// [`RunId::input_digest`]), so the same command names the same run.
    pub fn choose(given: Option<&str>, input: sha2::Sha256) -> anyhow::Result<RunId> {
        match given {
            Some("new") => {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("random run id: {e}"))?;
                Ok(RunId(hex(&bytes)))
            }
            Some(id) => {
                if id.is_empty()
                    || id.len() > 64
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                {
                    anyhow::bail!(
                        "--run-id must be 1 to 64 letters, digits, '-', '_' or '.', or `new`"
                    );
                }
                Ok(RunId(id.to_string()))
            }
            None => Ok(RunId(hex(&input.finalize()[..8]))),
        }
    }

    /// The Idempotency-Key of one address in this run: the same address in
    /// the same run always has the same key.
    pub fn key_for(&self, email: &str) -> String {
        let digest = sha2::Sha256::digest(pwmail_store::email_key(email));
        format!("pwmail-send:{}:{}", self.0, hex(&digest[..12]))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One address to email, with its CSV line (for messages).
#[derive(Clone, Debug)]
pub struct Row {
    pub line: Option<u64>,
    pub email: String,
}

/// Ctrl-C, twice over: the first stops new calls and ends every wait at
/// once; the second also abandons the calls in flight.
#[derive(Clone, Default)]
pub struct Stop {
    /// No new call, no more waiting.
    pub soft: CancellationToken,
    /// Calls in flight are abandoned (their outcome is unknown).
    pub hard: CancellationToken,
}

impl Stop {
    pub fn on_ctrl_c(&self) {
        let stop = self.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            eprintln!(
                "interrupted: finishing the calls in flight, starting no new ones \
                 (Ctrl-C again to abandon them)"
            );
            stop.soft.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted again: abandoning the calls in flight");
                stop.hard.cancel();
            }
        });
    }
}

pub struct Job {
    pub server: String,
    pub ca_file: Option<PathBuf>,
    pub token: String,
    pub rows: Vec<Row>,
    pub operation: Operation,
    pub link: LinkAsk,
    pub run_id: RunId,
    pub concurrency: usize,
    pub max_retries: u32,
    pub report: Option<PathBuf>,
    pub progress: bool,
    /// A line on stderr per Retry-After wait (no terminal for the bar to
    /// show it on).
    pub wait_lines: bool,
}

/// Why one address was not emailed by this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The address is not one the API accepts (CSV line, if any).
    Invalid { line: Option<u64>, reason: String },
    /// The server refused the call.
    Refused {
        status: u16,
        code: i32,
        message: String,
    },
    /// No answer (connection, TLS, timeout).
    NoAnswer(String),
    /// An answer outside the API document.
    Unexpected(String),
}

/// What became of one address that was not emailed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    pub email: String,
    /// HTTP status, or 0 when no answer came (or none was asked).
    pub status: u16,
    pub code: Option<i32>,
    pub message: String,
}

impl Failure {
    fn new(email: &str, reason: &Reason) -> Failure {
        let (status, code, message) = match reason {
            Reason::Invalid { line, reason } => (
                0,
                None,
                match line {
                    Some(line) => format!("invalid input (line {line}): {reason}"),
                    None => format!("invalid input: {reason}"),
                },
            ),
            Reason::Refused {
                status,
                code,
                message,
            } => (*status, Some(*code), message.clone()),
            Reason::NoAnswer(why) => (0, None, format!("no answer: {why}")),
            Reason::Unexpected(why) => (0, None, why.clone()),
        };
        Failure {
            email: email.to_string(),
            status,
            code,
            message,
        }
    }
}

#[derive(Debug, Default)]
pub struct Summary {
    /// Emailed by this run.
    pub sent: usize,
    /// Emailed by an earlier run with the same run id (the server replayed).
    pub already: usize,
    /// Rows whose address came earlier in the input (not sent again).
    pub duplicates: usize,
    pub failed: Vec<(Failure, Reason)>,
    /// Not attempted because the run was interrupted.
    pub skipped: Vec<String>,
    /// Abandoned in flight by a second Ctrl-C: the server may have queued
    /// them. Running the same command again settles them.
    pub unknown: Vec<String>,
    pub retries: usize,
}

enum Attempt {
    Sent,
    Replayed,
    /// Refused for now; try again after this long.
    Later(Duration, Reason),
    Failed(Reason),
}

fn reason_of(error: CallError) -> Reason {
    match error {
        CallError::Api {
            status,
            code,
            message,
            ..
        } => Reason::Refused {
            status,
            code,
            message,
        },
        CallError::Transport(why) => Reason::NoAnswer(why),
        CallError::Request(why) => Reason::Invalid {
            line: None,
            reason: why,
        },
        other @ CallError::Unexpected { .. } => Reason::Unexpected(other.to_string()),
    }
}

async fn attempt(
    client: &pwmail_client::Client,
    operation: Operation,
    link: &LinkAsk,
    email: &str,
    key: &str,
) -> Attempt {
    // An address or key the document refuses comes back as
    // `CallError::Request` before anything is sent.
    let result = match operation {
        _ if !link.is_default() => client
            .create_reset_link()
            .idempotency_key(key)
            .body(
                CreateResetLinkRequest::builder()
                    .email(email)
                    .invalidate_password(matches!(operation, Operation::Reset))
                    .ttl_secs(link.ttl_secs.map(|t| i64::try_from(t).unwrap_or(i64::MAX)))
                    .return_to(link.return_to.clone())
                    .locale(link.locale.clone()),
            )
            .send()
            .await
            .map(|rv| replayed(rv.headers())),
        Operation::Send => client
            .send_password_email_system()
            .idempotency_key(key)
            .body(SendPasswordEmailRequest::builder().email(email))
            .send()
            .await
            .map(|rv| replayed(rv.headers())),
        Operation::Reset => client
            .reset_password_by_admin()
            .idempotency_key(key)
            .body(ResetPasswordByAdminRequest::builder().email(email))
            .send()
            .await
            .map(|rv| replayed(rv.headers())),
    };
    match result {
        Ok(false) => Attempt::Sent,
        Ok(true) => Attempt::Replayed,
        // 409 with gRPC Aborted: the same key is being worked on (a copy of
        // this run elsewhere); 429/503 carry Retry-After.
        Err(
            e @ CallError::Api {
                status: 429 | 503, ..
            },
        )
        | Err(
            e @ CallError::Api {
                status: 409,
                code: 10,
                ..
            },
        ) => {
            let wait = e.retry_after().unwrap_or(Duration::from_secs(1));
            Attempt::Later(
                wait.clamp(Duration::from_secs(1), Duration::from_secs(300)),
                reason_of(e),
            )
        }
        Err(e) => Attempt::Failed(reason_of(e)),
    }
}

fn replayed(headers: &pwmail_client::reqwest::header::HeaderMap) -> bool {
    headers
        .get("idempotent-replayed")
        .is_some_and(|v| v.as_bytes() == b"true")
}

/// The address as the API takes it, or why not (checked before any call,
/// so an invalid row is "invalid input" with its line, not "no answer").
fn check_address(row: &Row) -> Result<(), Reason> {
    pwmail_client::types::ResetPasswordByAdminRequestEmail::try_from(row.email.as_str())
        .map(|_| ())
        .map_err(|e| Reason::Invalid {
            line: row.line,
            reason: format!("{:?}: {e}", row.email),
        })
}

/// How one row ended.
enum Outcome {
    Sent,
    Replayed,
    Failed(Reason),
    /// Given up by Ctrl-C while waiting to retry: not done.
    Stopped,
    /// Abandoned in flight by a second Ctrl-C.
    Unknown,
}

/// Runs the job until done or stopped; see [`Stop`].
pub async fn run(job: Job, stop: Stop) -> anyhow::Result<Summary> {
    let mut builder = pwmail_client::Builder::new(&job.server).api_token(&job.token);
    if let Some(ca) = &job.ca_file {
        builder = builder.ca_file(ca);
    }
    let client = Arc::new(builder.build()?);
    let bar = if job.progress {
        let bar = ProgressBar::new(job.rows.len() as u64);
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
    let mut pending = job.rows.into_iter();
    let mut seen = std::collections::HashSet::new();
    let wait_lines = job.wait_lines;
    for row in pending.by_ref() {
        // The same address twice in one input: emailed once.
        if !seen.insert(row.email.trim().to_lowercase()) {
            summary.duplicates += 1;
            bar.inc(1);
            continue;
        }
        if let Err(reason) = check_address(&row) {
            summary
                .failed
                .push((Failure::new(&row.email, &reason), reason));
            bar.inc(1);
            continue;
        }
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit?,
            () = stop.soft.cancelled() => {
                summary.skipped.push(row.email);
                break;
            }
        };
        if stop.soft.is_cancelled() {
            summary.skipped.push(row.email);
            break;
        }
        let (client, stop, bar) = (Arc::clone(&client), stop.clone(), bar.clone());
        let (operation, max_retries) = (job.operation, job.max_retries);
        let link = job.link.clone();
        let key = job.run_id.key_for(&row.email);
        tasks.spawn(async move {
            let _permit = permit;
            let mut retries = 0usize;
            let outcome = loop {
                let call = attempt(&client, operation, &link, &row.email, &key);
                let answer = tokio::select! {
                    answer = call => answer,
                    () = stop.hard.cancelled() => break Outcome::Unknown,
                };
                match answer {
                    Attempt::Sent => break Outcome::Sent,
                    Attempt::Replayed => break Outcome::Replayed,
                    Attempt::Failed(reason) => break Outcome::Failed(reason),
                    Attempt::Later(_, reason) if retries >= max_retries as usize => {
                        break Outcome::Failed(reason);
                    }
                    Attempt::Later(wait, reason) => {
                        retries += 1;
                        let why = match &reason {
                            Reason::Refused { message, .. } => message.clone(),
                            other => format!("{other:?}"),
                        };
                        bar.set_message(format!("waiting {} s: {why}", wait.as_secs()));
                        // Without a terminal there is no bar: a line says
                        // why nothing seems to happen.
                        if wait_lines {
                            eprintln!(
                                "pwmail send: waiting {} s before trying {} again: {why}",
                                wait.as_secs(),
                                row.email
                            );
                        }
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            () = stop.soft.cancelled() => break Outcome::Stopped,
                        }
                    }
                }
            };
            // The bar counts rows that got an answer; a stopped one is
            // "not attempted" in the summary, and not counted here.
            if !matches!(outcome, Outcome::Stopped | Outcome::Unknown) {
                bar.inc(1);
            }
            (row.email, outcome, retries)
        });
        // Collect what finished, so memory stays bounded on huge lists.
        while let Some(done) = tasks.try_join_next() {
            record(&mut summary, done);
        }
    }
    summary.skipped.extend(pending.map(|row| row.email));
    while let Some(done) = tasks.join_next().await {
        record(&mut summary, done);
    }
    bar.finish_and_clear();
    if let Some(path) = &job.report {
        write_report(path, &summary)?;
    }
    Ok(summary)
}

fn record(summary: &mut Summary, done: Result<(String, Outcome, usize), tokio::task::JoinError>) {
    match done {
        Ok((email, outcome, retries)) => {
            summary.retries += retries;
            match outcome {
                Outcome::Sent => summary.sent += 1,
                Outcome::Replayed => summary.already += 1,
                Outcome::Failed(reason) => {
                    summary.failed.push((Failure::new(&email, &reason), reason))
                }
                Outcome::Stopped => summary.skipped.push(email),
                Outcome::Unknown => summary.unknown.push(email),
            }
        }
        Err(e) => {
            let reason = Reason::Unexpected(format!("task failed: {e}"));
            summary.failed.push((Failure::new("", &reason), reason));
        }
    }
}

/// A CSV cell a spreadsheet will not run as a formula (OWASP "CSV
/// injection"): one starting with `=`, `+`, `-`, `@`, a tab or a CR gets a
/// leading `'`. Report cells hold what the input file said, which anyone
/// may have written.
fn spreadsheet_safe(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// What was not done (failed, not attempted, unknown) as JSON, or CSV for
/// `.csv` paths.
fn write_report(path: &Path, summary: &Summary) -> anyhow::Result<()> {
    let plain = |email: &String, message: &str| Failure {
        email: email.clone(),
        status: 0,
        code: None,
        message: message.into(),
    };
    let rows: Vec<Failure> = summary
        .failed
        .iter()
        .map(|(f, _)| f.clone())
        .chain(
            summary
                .skipped
                .iter()
                .map(|e| plain(e, "not attempted (interrupted)")),
        )
        .chain(summary.unknown.iter().map(|e| {
            plain(
                e,
                "unknown: abandoned in flight; run the same command again to settle it",
            )
        }))
        .collect();
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        let mut writer = csv::Writer::from_path(path)?;
        for row in &rows {
            writer.serialize(Failure {
                email: spreadsheet_safe(&row.email),
                message: spreadsheet_safe(&row.message),
                ..row.clone()
            })?;
        }
        writer.flush()?;
    } else {
        let json = serde_json::json!({
            "sent": summary.sent,
            "already_sent": summary.already,
            "duplicates": summary.duplicates,
            "failed": summary.failed.len(),
            "not_attempted": summary.skipped.len(),
            "unknown": summary.unknown.len(),
            "failures": rows,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cells that a spreadsheet would run as formulas are written with a
    /// leading `'`; the file is read back by a CSV reader, not by the code
    /// that wrote it.
    #[test]
    fn a_csv_report_holds_no_formula() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("failures.csv");
        let hostile = [
            "=HYPERLINK(\"http://evil.example\",\"x\")",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\tcmd",
            "\rcmd",
            "plain@example.com",
        ];
        let summary = Summary {
            failed: hostile
                .iter()
                .map(|e| {
                    let reason = Reason::Invalid {
                        line: Some(2),
                        reason: format!("{e} is not an address"),
                    };
                    (Failure::new(e, &reason), reason)
                })
                .collect(),
            ..Summary::default()
        };
        write_report(&path, &summary).unwrap();
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let emails: Vec<String> = reader
            .records()
            .map(|r| r.unwrap().get(0).unwrap().to_string())
            .collect();
        assert_eq!(emails.len(), hostile.len());
        for (written, original) in emails.iter().zip(hostile) {
            if original == "plain@example.com" {
                assert_eq!(written, original);
            } else {
                assert_eq!(written, &format!("'{original}"));
            }
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(",=HYPERLINK"), "{text}");
        assert!(text.contains("'=HYPERLINK"), "{text}");
    }

    #[test]
    fn a_run_id_names_the_input_and_each_address_has_a_stable_key() {
        let id = |given: Option<&str>, operation, input: &[u8]| {
            let mut digest = RunId::input_digest(operation, &LinkAsk::default());
            digest.update(input);
            RunId::choose(given, digest)
        };
        let a = id(None, Operation::Reset, b"email\na@example.com\n").unwrap();
        let b = id(None, Operation::Reset, b"email\na@example.com\n").unwrap();
        let c = id(None, Operation::Send, b"email\na@example.com\n").unwrap();
        assert_eq!(a, b, "the same command, the same run");
        assert_ne!(a, c, "another operation, another run");
        let asking = |link: LinkAsk| {
            let mut digest = RunId::input_digest(Operation::Reset, &link);
            digest.update(b"email\na@example.com\n");
            RunId::choose(None, digest).unwrap()
        };
        assert_eq!(asking(LinkAsk::default()), a, "asking nothing keeps the id");
        let ttl = asking(LinkAsk {
            ttl_secs: Some(600),
            ..LinkAsk::default()
        });
        let back = asking(LinkAsk {
            return_to: Some("https://app.example.com/".try_into().unwrap()),
            ..LinkAsk::default()
        });
        let german = asking(LinkAsk {
            locale: Some("de".try_into().unwrap()),
            ..LinkAsk::default()
        });
        let ids = [a.clone(), ttl, back, german];
        for (i, x) in ids.iter().enumerate() {
            for y in &ids[i + 1..] {
                assert_ne!(x, y, "other links, another run");
            }
        }
        // The id of this input before the digest was streamed: runs started
        // by an older pwmail are still the same runs.
        assert_eq!(a.0, "aa5f19875a7186a3");
        let fresh = id(Some("new"), Operation::Reset, b"").unwrap();
        assert_ne!(fresh, id(Some("new"), Operation::Reset, b"").unwrap());
        assert!(id(Some("bad id!"), Operation::Reset, b"").is_err());
        assert_eq!(a.key_for("A@Example.com"), a.key_for("a@example.com"));
        assert_ne!(a.key_for("a@example.com"), a.key_for("b@example.com"));
        assert!(a.key_for(&"x".repeat(1000)).len() <= 255);
    }
}
