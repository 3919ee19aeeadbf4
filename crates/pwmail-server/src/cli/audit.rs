//! `pwmail audit …`: read the audit log.

use clap::Subcommand;
use pwmail_store::{AuditOutcome, AuditRecord, OutcomeFilter, UnixMillis};

use crate::app::audit::{self, AuditQuery};
use crate::cli::args::DbArgs;
use crate::cli::out;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Recent audit rows, newest first: who did what to which user, when.
    List {
        /// Only rows where this user acted or was acted on (by email).
        #[arg(long)]
        user: Option<String>,
        /// Only the rows of one API call (its x-request-id).
        #[arg(long)]
        request_id: Option<String>,
        /// From this time on: RFC 3339, e.g. 2026-12-07T08:00:00Z.
        #[arg(long, value_parser = parse_time)]
        since: Option<UnixMillis>,
        /// Before this time: RFC 3339.
        #[arg(long, value_parser = parse_time)]
        until: Option<UnixMillis>,
        /// Only rows with this outcome: ok, refused (every refusal), or one
        /// refusal: not_admin, cannot_reveal_links, no_such_user, disabled,
        /// undeliverable, link_revealed, key_in_flight, key_reused.
        #[arg(long, value_parser = parse_outcome)]
        outcome: Option<OutcomeFilter>,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn parse_time(text: &str) -> Result<UnixMillis, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-12-07T08:00:00Z: {e}"))
}

fn parse_outcome(text: &str) -> Result<OutcomeFilter, String> {
    if text == "refused" {
        return Ok(OutcomeFilter::Refused);
    }
    AuditOutcome::parse(text)
        .map(OutcomeFilter::Is)
        .ok_or_else(|| {
            let names: Vec<&str> = AuditOutcome::ALL.iter().map(|o| o.as_str()).collect();
            format!("expected refused or one of {}", names.join(", "))
        })
}

/// RFC 3339 in UTC, to the millisecond.
pub(super) fn rfc3339(at: UnixMillis) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| at.to_string())
}

fn json(row: &AuditRecord) -> serde_json::Value {
    let mut object = serde_json::json!({
        "id": row.id,
        "at": rfc3339(row.at),
        "operation": row.operation,
        "request_id": row.request_id,
        "outcome": row.outcome.as_str(),
        "link_revealed": row.link_revealed,
    });
    // Absent values are left out rather than written as null.
    let optional = [
        ("actor_user_id", row.actor_user.map(|u| u.0.into())),
        ("actor_email", row.actor_email.clone().map(Into::into)),
        ("actor_token_id", row.actor_token.map(Into::into)),
        ("target_user_id", row.target_user.map(|u| u.0.into())),
        ("target_email", row.target_email.clone().map(Into::into)),
        ("outbox_id", row.outbox_id.map(Into::into)),
        (
            "idempotency_key",
            row.idempotency_key.clone().map(Into::into),
        ),
    ];
    for (key, value) in optional {
        if let (Some(value), Some(map)) = (value, object.as_object_mut()) {
            map.insert(key.to_string(), value);
        }
    }
    object
}

pub async fn audit(cmd: &AuditCommand, db: &DbArgs) -> anyhow::Result<()> {
    let store = db.open_existing().await?;
    match cmd {
        AuditCommand::List {
            user,
            request_id,
            since,
            until,
            outcome,
            limit,
            json: as_json,
        } => {
            let rows = audit::list(
                &*store,
                &AuditQuery {
                    user: user.clone(),
                    request_id: request_id.clone(),
                    since: *since,
                    until: *until,
                    outcome: *outcome,
                    limit: *limit,
                },
            )
            .await?;
            if *as_json {
                for row in &rows {
                    out!("{}", json(row))?;
                }
                return Ok(());
            }
            out!(
                "{:<24}  {:<24} {:<19} {:<28} {:<28} {:<38} note",
                "at",
                "operation",
                "outcome",
                "actor",
                "user",
                "request id"
            )?;
            for row in &rows {
                let actor = match (&row.actor_email, row.actor_token) {
                    (Some(email), Some(token)) => format!("{email} (token {token})"),
                    (Some(email), None) => email.clone(),
                    (None, Some(token)) => format!("token {token}"),
                    // The reset page: the user themselves.
                    (None, None) => "-".to_string(),
                };
                let user = match (&row.target_email, row.target_user) {
                    (Some(email), _) => email.clone(),
                    (None, Some(id)) => format!("user {id}"),
                    (None, None) => "-".to_string(),
                };
                let mut note = Vec::new();
                if row.link_revealed {
                    note.push("link revealed".to_string());
                }
                if let Some(key) = &row.idempotency_key {
                    note.push(format!("key {key:?}"));
                }
                if let Some(id) = row.outbox_id {
                    note.push(format!("outbox {id}"));
                }
                out!(
                    "{:<24}  {:<24} {:<19} {:<28} {:<28} {:<38} {}",
                    rfc3339(row.at),
                    row.operation,
                    row.outcome.as_str(),
                    actor,
                    user,
                    row.request_id,
                    note.join(", ")
                )?;
            }
        }
    }
    Ok(())
}
