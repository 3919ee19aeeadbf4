//! What tests need beyond the production [`Store`]: setting a password
//! hash directly and reading the audit log. Behind the `testing` feature, so
//! the service itself cannot call them.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{AuditEntry, PgStore, Result, SqliteStore, Store, StoreError, UnixMillis, UserId};

/// $1 user, $2 PHC string, $3 now; any user, disabled or not.
pub(crate) const PASSWORD_SET_ANY: &str =
    "UPDATE users SET password_hash = $2, password_changed_at = $3, password_invalidated_at = NULL
     WHERE id = $1";

/// $1 outbox id: what the row still holds of its message's words and link,
/// all run together ('' when nothing).
pub(crate) const OUTBOX_HELD: &str = "SELECT COALESCE(link, '') || COALESCE(link_name, '')
        || COALESCE(body_text, '') || COALESCE(body_html, '') AS held
     FROM outbox WHERE id = $1";

#[async_trait]
pub trait StoreTestExt: Store {
    /// Sets a password hash directly, as if the user had set it.
    async fn set_password_hash(&self, user: UserId, phc: &str, now: UnixMillis) -> Result<()>;
    /// The audit rows about one user, oldest first.
    async fn audit_entries(&self, target: UserId) -> Result<Vec<AuditEntry>>;
    /// What an outbox row still holds of its link, the user's name and its
    /// bodies, run together: '' once it has let go of them all.
    async fn outbox_held(&self, id: i64) -> Result<String>;
    /// SQLite: the database file may not grow beyond its size now (`true`)
    /// or may again (`false`), so that writes needing space fail as on a
    /// full disk (`PRAGMA max_page_count` on the writer's connection).
    async fn hold_size(&self, hold: bool) -> Result<()>;
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
