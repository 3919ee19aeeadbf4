//! `pwmail events …`: what waits to reach the events receiver, what was
//! given up, and sending given-up events again.

use clap::Subcommand;
use pwmail_store::{Event, EventState};

use crate::app::events;
use crate::cli::args::DbArgs;
use crate::cli::audit::rfc3339;
use crate::cli::out;
use crate::clock::format_utc;

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Events not yet delivered: pending, delivering and failed (delivered ones are forgotten).
    List {
        /// Only events in this state: pending, delivering or failed (repeatable).
        #[arg(long, value_parser = parse_state)]
        state: Vec<EventState>,
        /// At most this many of each state, oldest first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Send every failed event again, with a fresh attempt budget.
    Retry,
}

fn parse_state(text: &str) -> Result<EventState, String> {
    EventState::parse(text).ok_or_else(|| "expected pending, delivering or failed".to_string())
}

fn json(e: &Event) -> serde_json::Value {
    let mut object = serde_json::json!({
        "id": e.event_id,
        "type": e.kind.as_str(),
        "at": rfc3339(e.at),
        "state": e.state.as_str(),
        "attempts": e.attempts,
    });
    let fields = [
        ("user_id", e.user_id.map(|u| u.0.into())),
        ("email", e.email.clone().map(Into::into)),
        ("link_id", e.link_id.map(Into::into)),
        ("sequence", e.seq.map(Into::into)),
        ("message_id", e.message_id.clone().map(Into::into)),
        ("request_id", e.request_id.clone().map(Into::into)),
        ("reason", e.detail.clone().map(Into::into)),
        (
            "next_attempt_at",
            (e.state == EventState::Pending).then(|| rfc3339(e.next_attempt_at).into()),
        ),
        ("last_error", e.last_error.clone().map(Into::into)),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            object[name] = value;
        }
    }
    object
}

pub async fn run(cmd: &EventsCommand, db: &DbArgs, now: i64) -> anyhow::Result<()> {
    let store = db.open_existing().await?;
    match cmd {
        EventsCommand::List {
            state,
            limit,
            json: as_json,
        } => {
            let rows = events::list(&*store, state, *limit).await?;
            if *as_json {
                for e in &rows {
                    out!("{}", json(e))?;
                }
                return Ok(());
            }
            let kinds = events::kinds(&*store).await?;
            if kinds.is_empty() {
                out!("(events are off: no server was started with --events-url)")?;
            }
            let width = rows
                .iter()
                .map(|e| e.email.as_deref().unwrap_or("-").chars().count())
                .chain(["user".len()])
                .max()
                .unwrap_or_default();
            out!(
                "{:<36}  {:<17} {:<10} {:>8}  {:<20} {:<width$} last error",
                "id",
                "type",
                "state",
                "attempts",
                "at",
                "user"
            )?;
            for e in &rows {
                out!(
                    "{:<36}  {:<17} {:<10} {:>8}  {:<20} {:<width$} {}",
                    e.event_id,
                    e.kind,
                    e.state,
                    e.attempts,
                    format_utc(e.at),
                    e.email.as_deref().unwrap_or("-"),
                    e.last_error.as_deref().unwrap_or("-")
                )?;
            }
            let depth = events::depth(&*store).await?;
            let summary: Vec<String> = depth.iter().map(|(s, n)| format!("{n} {s}")).collect();
            out!("{}", summary.join(", "))?;
        }
        EventsCommand::Retry => {
            let n = events::retry_failed(&*store, now).await?;
            out!("{n} failed events queued again; a running server delivers them shortly")?;
        }
    }
    Ok(())
}
