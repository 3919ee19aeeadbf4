//! Statements both engines run as written (`$n` parameters work in SQLite
//! and PostgreSQL alike): one text per fact, so the engines cannot drift.

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

use crate::{Result, StoredOutcome};

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
/// key is live: a replay, or a key reused for another request). A macro
/// because the two engines' transactions are different types.
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
