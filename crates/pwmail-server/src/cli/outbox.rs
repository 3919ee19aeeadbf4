//! `pwmail outbox …`: inspect and requeue queued emails.

use crate::cli::out;
use clap::Subcommand;
use pwmail_store::OutboxState;

use crate::app::users;
use crate::cli::args::DbArgs;
use crate::clock::format_utc;

#[derive(Subcommand, Debug)]
pub enum OutboxCommand {
    /// Recent messages and their delivery state.
    List {
        /// Only messages in this state: queued, sending, sent, retrying or dead.
        #[arg(long, value_parser = parse_state)]
        state: Option<OutboxState>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One message's delivery record.
    Show {
        /// The message's id, from `pwmail outbox list`.
        id: i64,
    },
    /// Queue a dead message again, with a fresh attempt budget.
    Retry {
        /// The dead message's id, from `pwmail outbox list --state dead`.
        id: i64,
    },
}

fn parse_state(text: &str) -> Result<OutboxState, String> {
    OutboxState::parse(text)
        .ok_or_else(|| "expected queued, sending, sent, retrying or dead".to_string())
}

fn show_time(at: Option<i64>) -> String {
    at.map(format_utc).unwrap_or_else(|| "-".into())
}

pub async fn outbox(cmd: &OutboxCommand, db: &DbArgs, now: i64) -> anyhow::Result<()> {
    let store = db.open_existing().await?;
    match cmd {
        OutboxCommand::List { state, limit } => {
            let rows = users::outbox(&*store, *state, *limit).await?;
            // Columns as wide as their longest value, so long addresses and
            // kinds do not push the rest out of line.
            let width = |header: &str, values: &mut dyn Iterator<Item = usize>| {
                values.chain([header.len()]).max().unwrap_or_default()
            };
            let to = width(
                "recipient",
                &mut rows.iter().map(|m| m.recipient.chars().count()),
            );
            let kind = width("kind", &mut rows.iter().map(|m| m.kind.as_str().len()));
            out!(
                "{:>8}  {:<9} {:>8}  {:<to$} {:<kind$} {:<20} last error",
                "id",
                "state",
                "attempts",
                "recipient",
                "kind",
                "queued"
            )?;
            for m in rows {
                out!(
                    "{:>8}  {:<9} {:>8}  {:<to$} {:<kind$} {:<20} {}",
                    m.id,
                    m.state,
                    m.attempts,
                    m.recipient,
                    m.kind,
                    format_utc(m.created_at),
                    m.last_error.as_deref().unwrap_or("-")
                )?;
            }
        }
        OutboxCommand::Show { id } => {
            let m = users::outbox_message(&*store, *id).await?;
            out!("id:           {}", m.id)?;
            out!("message-id:   <{}>", m.message_id)?;
            out!("kind:         {}", m.kind)?;
            out!("recipient:    {}", m.recipient)?;
            out!("state:        {}", m.state)?;
            out!("attempts:     {}", m.attempts)?;
            out!("queued:       {}", format_utc(m.created_at))?;
            out!("next attempt: {}", show_time(m.next_attempt_at))?;
            out!("sent:         {}", show_time(m.sent_at))?;
            out!("last reply:   {}", m.last_reply.as_deref().unwrap_or("-"))?;
            out!("last error:   {}", m.last_error.as_deref().unwrap_or("-"))?;
            out!("request id:   {}", m.request_id.as_deref().unwrap_or("-"))?;
        }
        OutboxCommand::Retry { id } => {
            users::retry_dead(&*store, *id, now).await?;
            out!("requeued outbox message {id}")?;
        }
    }
    Ok(())
}
