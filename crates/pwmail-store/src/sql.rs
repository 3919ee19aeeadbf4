//! Statements both engines run (`$n` parameters work in SQLite and
//! PostgreSQL alike): one text per fact, so the engines cannot drift. Where
//! the dialects differ, the text takes the difference as an argument
//! ([`Dialect`]) and each engine builds its statement once.

/// What differs between the engines' SQL.
#[derive(Clone, Copy, Debug)]
pub struct Dialect {
    /// The larger of two values: `MAX` (SQLite) or `GREATEST` (PostgreSQL).
    pub greatest: &'static str,
    /// Row locks for a claim: none (SQLite's one writer) or `FOR UPDATE SKIP
    /// LOCKED` (PostgreSQL's many dispatchers).
    pub claim_lock: &'static str,
}

pub const SQLITE: Dialect = Dialect {
    greatest: "MAX",
    claim_lock: "",
};

pub const POSTGRES: Dialect = Dialect {
    greatest: "GREATEST",
    claim_lock: "FOR UPDATE SKIP LOCKED",
};

/// One GCRA step (see `gcra.rs`) as one atomic statement: $1 key, $2 now,
/// $3 period, $4 tau. Returns a row when admitted; none when refused (and
/// then nothing changed).
pub fn gcra_admit(d: Dialect) -> String {
    let g = d.greatest;
    format!(
        "INSERT INTO rate_limits (key, tat) VALUES ($1, $2 + $3)
         ON CONFLICT (key) DO UPDATE SET tat = {g}(rate_limits.tat, $2) + $3
             WHERE {g}(rate_limits.tat, $2) - $2 <= $4
         RETURNING tat"
    )
}

/// The state of a refused key: $1 key.
pub const GCRA_TAT: &str = "SELECT tat FROM rate_limits WHERE key = $1";

/// Leases up to $4 due messages, earliest due first, to $1 until $2 + $3
/// ($2 is now): queued or retrying rows whose time has come, and sending
/// rows whose lease ran out. Two bounded index range scans (an `OR` over
/// both would scan the table on every claim); one claim policy for both
/// engines.
pub fn claim_outbox(d: Dialect) -> String {
    let lock = d.claim_lock;
    format!(
        "WITH due AS (
             SELECT id, next_attempt_at AS due FROM outbox
             WHERE state IN ('queued', 'retrying') AND next_attempt_at <= $2
             ORDER BY next_attempt_at LIMIT $4 {lock}),
         expired AS (
             SELECT id, lease_until AS due FROM outbox
             WHERE state = 'sending' AND lease_until <= $2
             ORDER BY lease_until LIMIT $4 {lock}),
         picked AS (
             SELECT id FROM (SELECT id, due FROM due UNION ALL SELECT id, due FROM expired) AS d
             ORDER BY due, id LIMIT $4)
         UPDATE outbox
         SET state = 'sending', lease_owner = $1, lease_until = $2 + $3, attempts = attempts + 1
         WHERE id IN (SELECT id FROM picked)
         RETURNING id, message_id, kind, recipient, subject, body_text, body_html,
                   CAST(attempts AS BIGINT) AS attempts, created_at, queued_at, request_id"
    )
}

/// The stored outcome of a live key: $1 token, $2 operation, $3 key, $4 now.
pub const IDEMPOTENCY_FIND: &str = "SELECT fingerprint, outbox_id, request_id FROM idempotency_keys
     WHERE token_id = $1 AND operation = $2 AND key = $3 AND expires_at > $4";

/// Stores a key's outcome, taking over an expired row of the same key; a
/// live one is left alone (no row affected). $1 token, $2 operation, $3 key,
/// $4 fingerprint, $5 outbox id, $6 request id, $7 now, $8 expires at.
pub const IDEMPOTENCY_STORE: &str = "INSERT INTO idempotency_keys
        (token_id, operation, key, fingerprint, outbox_id, request_id, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (token_id, operation, key) DO UPDATE SET
        fingerprint = excluded.fingerprint, outbox_id = excluded.outbox_id,
        request_id = excluded.request_id, created_at = excluded.created_at,
        expires_at = excluded.expires_at
     WHERE idempotency_keys.expires_at <= excluded.created_at";

/// Forgets expired keys: $1 now.
pub const IDEMPOTENCY_PURGE: &str = "DELETE FROM idempotency_keys WHERE expires_at <= $1";

/// The audit row of an admin operation: $1 at, $2 actor user, $3 actor
/// token, $4 target user, $5 operation, $6 request id, $7 outbox id,
/// $8 Idempotency-Key.
pub const AUDIT_ISSUE: &str = "INSERT INTO audit_log (at, actor_user_id, actor_token_id,
        target_user_id, operation, request_id, outbox_id, idempotency_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

use crate::{MessageKind, NewMessage, OutboxMessage, Result, StoredOutcome};

/// A row of [`IDEMPOTENCY_FIND`], from either engine.
pub fn stored_outcome_from_row<'r, R>(row: &'r R) -> Result<StoredOutcome>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(StoredOutcome {
        fingerprint: row.try_get("fingerprint")?,
        outbox_id: row.try_get("outbox_id")?,
        request_id: row.try_get("request_id")?,
    })
}

/// The stored outcome of the call's key, looked up inside the issue
/// transaction (`$tx`): evaluates to `Option<IssueOutcome>` (`Some` when the
/// key is live: a replay, or a key reused for another request). SQLite runs
/// the issue transaction statement by statement with these two macros;
/// PostgreSQL runs the same statements in one call of `pwmail_issue_link`
/// (`migrations/postgres/0004_issue_link_function.sql`).
macro_rules! issue_key_outcome {
    ($tx:expr, $issue:expr, $idem:expr) => {{
        let row = sqlx::query($crate::sql::IDEMPOTENCY_FIND)
            .bind($issue.actor.token_id)
            .bind($issue.purpose.as_str())
            .bind(&$idem.key)
            .bind($issue.now)
            .fetch_optional(&mut *$tx)
            .await?;
        match row {
            Some(row) => Some($crate::sql::stored_outcome_from_row(&row)?.outcome_for($idem)),
            None => None,
        }
    }};
}
pub(crate) use issue_key_outcome;

/// The end of the issue transaction (`$tx`): the key's outcome, when the
/// call carried a key, and the audit row. Evaluates to `false` when a live
/// row already holds the key (the caller answers `KeyInFlight`, and the
/// transaction is dropped, so nothing is written).
macro_rules! finish_issue {
    ($tx:expr, $issue:expr, $outbox_id:expr) => {{
        let mut stored = true;
        if let Some(idem) = &$issue.idempotency {
            let done = sqlx::query($crate::sql::IDEMPOTENCY_STORE)
                .bind($issue.actor.token_id)
                .bind($issue.purpose.as_str())
                .bind(&idem.key)
                .bind(&idem.fingerprint)
                .bind($outbox_id)
                .bind(&$issue.request_id)
                .bind($issue.now)
                .bind(idem.expires_at)
                .execute(&mut *$tx)
                .await?;
            stored = done.rows_affected() == 1;
        }
        if stored {
            sqlx::query($crate::sql::AUDIT_ISSUE)
                .bind($issue.now)
                .bind($issue.actor.user.0)
                .bind($issue.actor.token_id)
                .bind($issue.target.0)
                .bind($issue.purpose.as_str())
                .bind(&$issue.request_id)
                .bind($outbox_id)
                .bind($issue.idempotency.as_ref().map(|i| i.key.as_str()))
                .execute(&mut *$tx)
                .await?;
        }
        stored
    }};
}
pub(crate) use finish_issue;

/// A row of [`claim_outbox`], from either engine.
pub fn outbox_message_from_row<'r, R>(row: &'r R) -> Result<OutboxMessage>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(OutboxMessage {
        id: row.try_get("id")?,
        message: NewMessage {
            message_id: row.try_get("message_id")?,
            kind: MessageKind::from_column(row.try_get("kind")?)?,
            recipient: row.try_get("recipient")?,
            subject: row.try_get("subject")?,
            body_text: row
                .try_get::<Option<String>, _>("body_text")?
                .unwrap_or_default(),
            body_html: row
                .try_get::<Option<String>, _>("body_html")?
                .unwrap_or_default(),
        },
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0),
        created_at: row.try_get("created_at")?,
        queued_at: row.try_get("queued_at")?,
        request_id: row.try_get("request_id")?,
    })
}
