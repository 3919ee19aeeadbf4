//! `pwmail outbox …`: inspect and requeue queued emails.

use clap::Subcommand;
use pwmail_store::OutboxState;

use crate::app::{AppError, users};
use crate::cli::args::DbArgs;
use crate::clock::format_utc;

#[derive(Subcommand, Debug)]
pub enum OutboxCommand {
    /// Recent messages and their delivery state.
    List {
        #[arg(long, value_parser = parse_state)]
        state: Option<OutboxState>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One message's delivery record.
    Show { id: i64 },
    /// Queue a dead message again, with a fresh attempt budget.
    Retry { id: i64 },
}

fn parse_state(text: &str) -> Result<OutboxState, String> {
    OutboxState::parse(text)
        .ok_or_else(|| "expected queued, sending, sent, retrying or dead".to_string())
}

fn show_time(at: Option<i64>) -> String {
    at.map(format_utc).unwrap_or_else(|| "-".into())
}

pub async fn outbox(cmd: &OutboxCommand, db: &DbArgs, now: i64) -> anyhow::Result<()> {
    let store = db.open().await?;
    match cmd {
        OutboxCommand::List { state, limit } => {
            println!(
                "{:>8}  {:<9} {:>8}  {:<32} {:<24} {:<20} last error",
                "id", "state", "attempts", "recipient", "kind", "queued"
            );
            for m in store.list_outbox(*state, *limit).await? {
                println!(
                    "{:>8}  {:<9} {:>8}  {:<32} {:<24} {:<20} {}",
                    m.id,
                    m.state,
                    m.attempts,
                    m.recipient,
                    m.kind,
                    format_utc(m.created_at),
                    m.last_error.as_deref().unwrap_or("-")
                );
            }
        }
        OutboxCommand::Show { id } => {
            let m = store
                .outbox_message(*id)
                .await?
                .ok_or(AppError::NoSuchMessage(*id))?;
            println!("id:           {}", m.id);
            println!("message-id:   <{}>", m.message_id);
            println!("kind:         {}", m.kind);
            println!("recipient:    {}", m.recipient);
            println!("state:        {}", m.state);
            println!("attempts:     {}", m.attempts);
            println!("queued:       {}", format_utc(m.created_at));
            println!("next attempt: {}", show_time(m.next_attempt_at));
            println!("sent:         {}", show_time(m.sent_at));
            println!("last reply:   {}", m.last_reply.as_deref().unwrap_or("-"));
            println!("last error:   {}", m.last_error.as_deref().unwrap_or("-"));
            println!("request id:   {}", m.request_id.as_deref().unwrap_or("-"));
        }
        OutboxCommand::Retry { id } => {
            users::retry_dead(&*store, *id, now).await?;
            println!("requeued outbox message {id}");
        }
    }
    Ok(())
}
