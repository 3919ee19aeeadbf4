//! What tests need beyond the production [`Store`]: setting a password
//! hash directly and reading the audit log. Behind the `testing` feature, so
//! the service itself cannot call them.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    AuditFilter, AuditRecord, PgStore, ResetLink, Result, SqliteStore, Store, StoreError,
    UnixMillis, UserId,
};

/// $1 user, $2 PHC string, $3 now; any user, disabled or not.
pub(crate) const PASSWORD_SET_ANY: &str =
    "UPDATE users SET password_hash = $2, password_changed_at = $3, password_invalidated_at = NULL
     WHERE id = $1";

/// $1 outbox id: what the row still holds of its message's words and link,
/// all run together ('' when nothing).
pub(crate) const OUTBOX_HELD: &str = "SELECT COALESCE(link, '') || COALESCE(link_name, '')
        || COALESCE(body_text, '') || COALESCE(body_html, '') AS held
     FROM outbox WHERE id = $1";

/// Every user's address unchecked again, as a version before migration
/// 0012 left them.
pub(crate) const FORGET_ADDRESS_CHECKS: &str = "UPDATE users SET deliverable = NULL";

/// What `clear` runs, in one transaction: empties the tables that hold
/// what the service wrote (those that refer to others first), leaving the
/// schema as migrated.
pub(crate) fn clear_statements() -> Vec<String> {
    DATA_TABLES
        .iter()
        .map(|table| format!("DELETE FROM {table}"))
        .collect()
}

const DATA_TABLES: &[&str] = &[
    "audit_log",
    "idempotency_keys",
    "outbox",
    "reset_links",
    "api_tokens",
    "users",
    "rate_limits",
    "space_probe",
];

/// The trigger function of the PostgreSQL `hold_size` and `fail_settles`.
pub(crate) const PG_NO_SPACE_FUNCTION: &str =
    "CREATE OR REPLACE FUNCTION pwmail_test_no_space() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         RAISE EXCEPTION 'could not extend file: No space left on device (test)'
             USING ERRCODE = '53100';
     END $$";

/// The tables whose new rows fail under PostgreSQL's `hold_size`.
pub(crate) const PG_FULL_TABLES: &[&str] = &[
    "reset_links",
    "outbox",
    "audit_log",
    "idempotency_keys",
    "rate_limits",
    "space_probe",
];

#[async_trait]
pub trait StoreTestExt: Store {
    /// Sets a password hash directly, as if the user had set it.
    async fn set_password_hash(&self, user: UserId, phc: &str, now: UnixMillis) -> Result<()>;
    /// The audit rows about one user (its target), oldest first: the
    /// operator's listing, narrowed.
    async fn audit_entries(&self, target: UserId) -> Result<Vec<AuditRecord>> {
        let mut rows = self
            .list_audit(&AuditFilter {
                user: Some(target),
                limit: u32::MAX,
                ..Default::default()
            })
            .await?;
        rows.retain(|r| r.target_user == Some(target));
        rows.reverse();
        Ok(rows)
    }
    /// What an outbox row still holds of its link, the user's name and its
    /// bodies, run together: '' once it has let go of them all.
    async fn outbox_held(&self, id: i64) -> Result<String>;
    /// Every link, oldest first.
    async fn links(&self) -> Result<Vec<ResetLink>>;
    /// Forgets every user's address check, as a database written before
    /// the check existed holds them (`Users::check_addresses` checks them).
    async fn forget_address_checks(&self) -> Result<()>;
    /// Empties every table the service writes, in one transaction: a fresh
    /// database without running the migrations again (the rules' property
    /// test starts each sequence so).
    async fn clear(&self) -> Result<()>;
    /// Writes that need space fail as on a full disk (`true`), or stop
    /// failing (`false`). SQLite: the file may not grow beyond its size now
    /// (`PRAGMA max_page_count` on the writer's connection). PostgreSQL:
    /// triggers raise `disk_full` (53100) on every new row of the tables a
    /// call or a probe writes and on every change of an outbox row's
    /// state; an update that only moves a lease's end goes through, as an
    /// update in place can on a full disk.
    async fn hold_size(&self, hold: bool) -> Result<()>;
    /// PostgreSQL: recording a send's result fails with `disk_full`
    /// (`true`) or stops failing (`false`); claims and lease extensions
    /// go through. SQLite: unsupported (a trigger cannot raise SQLITE_FULL).
    async fn fail_settles(&self, fail: bool) -> Result<()>;
}

/// Opens a store with its test extension, as [`crate::open`] does.
pub async fn open(url: &str) -> Result<Arc<dyn StoreTestExt>> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(SqliteStore::open(url).await?));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return Ok(Arc::new(
            PgStore::open(url, crate::PoolOptions::default()).await?,
        ));
    }
    Err(StoreError::Unsupported(format!(
        "unsupported database URL {url:?}"
    )))
}

/// Waits until no message is queued, retrying or being sent: every outbox
/// row is sent or dead, so nothing more can reach the relay (a row is
/// settled only after the relay accepted it). Panics after `limit`.
pub async fn wait_until_quiet(store: &dyn Store, limit: std::time::Duration) {
    use crate::OutboxState;
    let deadline = std::time::Instant::now() + limit;
    loop {
        let depth = store.outbox_depth().await.expect("outbox depth");
        let busy: u64 = depth
            .iter()
            .filter(|(state, _)| {
                matches!(
                    state,
                    OutboxState::Queued | OutboxState::Retrying | OutboxState::Sending
                )
            })
            .map(|(_, n)| n)
            .sum();
        if busy == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{busy} messages still waiting: {depth:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
