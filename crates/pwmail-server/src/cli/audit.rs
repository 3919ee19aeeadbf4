//! `pwmail audit …`: read the audit log.

use clap::Subcommand;
use pwmail_store::{AuditRecord, UnixMillis};

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

/// RFC 3339 in UTC, to the millisecond.
fn rfc3339(at: UnixMillis) -> String {
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
        "target_user_id": row.target_user.0,
        "link_revealed": row.link_revealed,
    });
    // Absent values are left out rather than written as null.
    let optional = [
        ("actor_user_id", row.actor_user.map(|u| u.0.into())),
        ("actor_email", row.actor_email.clone().map(Into::into)),
        ("actor_token_id", row.actor_token.map(Into::into)),
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
                "{:<24}  {:<24} {:<28} {:<28} {:<38} note",
                "at",
                "operation",
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
                let user = row
                    .target_email
                    .clone()
                    .unwrap_or_else(|| format!("user {}", row.target_user));
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
                    "{:<24}  {:<24} {:<28} {:<28} {:<38} {}",
                    rfc3339(row.at),
                    row.operation,
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
