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
