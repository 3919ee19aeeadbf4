//! `pwmail send`: its arguments, and what it prints; the sending is the
//! bulk sender's (`crate::bulk`), a client of the API.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use sha2::Digest as _;

use crate::bulk::{Job, LinkAsk, Operation, Reason, Row, RunId, Stop, Summary, run};
use crate::cli::{emails_csv, out};

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
    /// How long each link works, in seconds (within the server's --link-ttl-min-secs..--link-ttl-max-secs); uses pwmail's own operation.
    #[arg(long)]
    pub ttl_secs: Option<u64>,
    /// The page the done page links back to (under one of the server's --return-to-origin); uses pwmail's own operation.
    #[arg(long)]
    pub return_to: Option<String>,
    /// The emails' and pages' language for this run (BCP 47), over each user's own; uses pwmail's own operation.
    #[arg(long)]
    pub locale: Option<String>,
    /// Names this run in every call's Idempotency-Key, so running the same command again
    /// (after a crash, a lost network, Ctrl-C) emails nobody twice within the server's
    /// idempotency TTL [default: a digest of the input, the operation and the link options]; `new` for a fresh send.
    #[arg(long)]
    pub run_id: Option<String>,
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
    /// Write what was not done here: CSV for *.csv, else JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `pwmail send`: fails when any email failed, was not attempted, or has
/// an unknown outcome.
pub async fn send(args: &SendArgs) -> anyhow::Result<()> {
    let token = match (&args.token_file, &args.token) {
        (Some(file), _) => crate::files::read_small_text(file)
            .with_context(|| format!("reading --token-file {}", file.display()))?
            .trim()
            .to_string(),
        (None, Some(token)) => token.clone(),
        (None, None) => anyhow::bail!("no API token: set PWMAIL_TOKEN or pass --token-file"),
    };
    // Before the run id is printed: a server without a scheme would
    // otherwise be refused once per row.
    pwmail_client::Builder::new(&args.server)
        .check_base_url()
        .context("--server")?;
    let link = LinkAsk {
        ttl_secs: args.ttl_secs,
        return_to: args
            .return_to
            .as_deref()
            .map(|url| url.try_into().context("--return-to"))
            .transpose()?,
        locale: args
            .locale
            .as_deref()
            .map(|tag| {
                // Checked before the run id is printed: a malformed tag
                // would otherwise be refused once per row.
                crate::app::validate::locale(tag)?;
                tag.try_into().context("--locale")
            })
            .transpose()?,
    };
    let mut input = RunId::input_digest(args.operation, &link);
    let rows = match (&args.email, &args.from_csv) {
        (Some(email), _) => {
            input.update(email.as_bytes());
            vec![Row {
                line: None,
                email: email.clone(),
            }]
        }
        // Read once: the rows and the run id's digest come from the same bytes.
        (None, Some(csv)) => emails_csv::read_watching(csv, |bytes| input.update(bytes))?
            .into_iter()
            .map(|row| Row {
                line: Some(row.line),
                email: row.email,
            })
            .collect(),
        (None, None) => anyhow::bail!("give --email or --from-csv"),
    };
    let run_id = RunId::choose(args.run_id.as_deref(), input)?;
    // A fresh id repeats only with itself: say how to run it again.
    if args.run_id.as_deref() == Some("new") {
        out!(
            "run id: {0} (a fresh one; to finish this run without emailing anyone twice, \
             run it again with --run-id {0})",
            run_id.0
        )?;
    } else {
        out!(
            "run id: {} (the same command again emails nobody twice; --run-id new sends afresh)",
            run_id.0
        )?;
    }

    let stop = Stop::default();
    stop.on_ctrl_c();
    let summary = run(
        Job {
            server: args.server.clone(),
            ca_file: args.ca_file.clone(),
            token,
            rows,
            operation: args.operation,
            link,
            run_id,
            concurrency: args.concurrency,
            max_retries: args.max_retries,
            report: args.report.clone(),
            progress: !args.quiet,
            wait_lines: !args.quiet && {
                use std::io::IsTerminal as _;
                !std::io::stderr().is_terminal()
            },
        },
        stop,
    )
    .await?;
    summary.print(&args.server)?;
    let undone = summary.failed.len() + summary.skipped.len() + summary.unknown.len();
    if undone == 0 {
        Ok(())
    } else {
        anyhow::bail!(
            "{} failed, {} not attempted, {} unknown",
            summary.failed.len(),
            summary.skipped.len(),
            summary.unknown.len()
        )
    }
}

impl Summary {
    /// Counts by outcome; failures grouped by what went wrong, each group
    /// with its reason (the server's message, "connection refused to …",
    /// the CSV lines of invalid addresses).
    pub fn print(&self, server: &str) -> std::io::Result<()> {
        out!("sent: {}", self.sent)?;
        if self.already > 0 {
            out!("already sent by this run id before: {}", self.already)?;
        }
        if self.duplicates > 0 {
            out!(
                "duplicate rows (the address came earlier in the input; emailed once): {}",
                self.duplicates
            )?;
        }
        out!("failed: {}", self.failed.len())?;
        let mut groups: BTreeMap<String, Vec<&Reason>> = BTreeMap::new();
        for (_, reason) in &self.failed {
            let label = match reason {
                Reason::Invalid { .. } => "invalid input".to_string(),
                Reason::Refused {
                    status, message, ..
                } => match status {
                    // One user's "no such user" names the user; the group
                    // says what they share.
                    404 => "HTTP 404 no such user".to_string(),
                    _ => format!("HTTP {status} {message}"),
                },
                Reason::NoAnswer(why) => no_answer_label(why, server),
                Reason::Unexpected(why) => why.clone(),
            };
            groups.entry(label).or_default().push(reason);
        }
        for (label, reasons) in groups {
            let lines: Vec<String> = reasons
                .iter()
                .filter_map(|r| match r {
                    Reason::Invalid { line: Some(l), .. } => Some(l.to_string()),
                    _ => None,
                })
                .collect();
            if lines.is_empty() {
                out!("  {label}: {}", reasons.len())?;
            } else {
                out!("  {label}: {} (lines {})", reasons.len(), lines.join(", "))?;
            }
        }
        if !self.skipped.is_empty() {
            out!("not attempted (interrupted): {}", self.skipped.len())?;
        }
        if !self.unknown.is_empty() {
            out!(
                "unknown (abandoned in flight; run the same command again to settle them): {}",
                self.unknown.len()
            )?;
        }
        out!("retries after 429/503: {}", self.retries)?;
        Ok(())
    }
}

/// A transport failure in a few words: "connection refused to HOST", "timed
/// out", or the first line of the cause.
fn no_answer_label(why: &str, server: &str) -> String {
    let host = server
        .split_once("://")
        .map_or(server, |(_, rest)| rest)
        .trim_end_matches('/');
    let lower = why.to_ascii_lowercase();
    if lower.contains("connection refused") {
        format!("connection refused to {host}")
    } else if lower.contains("timed out") || lower.contains("timeout") {
        format!("timed out talking to {host}")
    } else if lower.contains("certificate") {
        format!("TLS certificate of {host} not trusted ({why})")
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        format!("cannot resolve {host}")
    } else {
        format!("no answer from {host}: {why}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_answer_reasons_read_as_a_person_would_say_them() {
        assert_eq!(
            no_answer_label(
                "error sending request: tcp connect error: Connection refused (os error 111)",
                "http://127.0.0.1:8080/"
            ),
            "connection refused to 127.0.0.1:8080"
        );
    }
}
