//! Storage for pwmail: users, API tokens, reset links, the outbox, the audit
//! log and rate-limit state, behind one [`Store`] trait.
//!
//! Every method is one transaction (or one atomic statement), so a failed
//! call leaves nothing half-written. Times are Unix milliseconds passed in by
//! the caller, which keeps the store free of clocks and easy to test.

mod model;
mod sqlite;

pub use model::*;
pub use sqlite::SqliteStore;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated, e.g. the email is already taken.
    #[error("{0}")]
    Conflict(String),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The database could not be reached in time; worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Unsupported(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("already exists".to_string())
            }
            // SQLite's SQLITE_BUSY (5) and SQLITE_LOCKED (6), extended codes
            // included: another writer held the lock past the busy timeout.
            sqlx::Error::Database(db)
                if db
                    .code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .is_some_and(|c| matches!(c & 0xff, 5 | 6)) =>
            {
                StoreError::Unavailable(e)
            }
            _ => StoreError::Database(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- users -----------------------------------------------------------
    async fn create_user(&self, user: &NewUser, now: UnixMillis) -> Result<User>;
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>>;
    /// Case-insensitive lookup.
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>>;
    /// Admins ever created, disabled ones included.
    async fn count_admins(&self) -> Result<u64>;
    /// Disables the user and revokes their API tokens and open links.
    async fn disable_user(&self, email: &str, now: UnixMillis) -> Result<User>;
    /// The stored password hash (PHC string), if the user has a valid one.
    async fn password_hash(&self, user: UserId) -> Result<Option<String>>;
    /// Sets a password hash directly (operator action; the reset page
    /// consumes a link instead).
    async fn set_password_hash(&self, user: UserId, phc: &str, now: UnixMillis) -> Result<()>;

    // --- API tokens ------------------------------------------------------
    async fn create_api_token(
        &self,
        user: UserId,
        hash: &TokenHash,
        label: &str,
        now: UnixMillis,
    ) -> Result<ApiTokenInfo>;
    async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenInfo>>;
    /// Returns whether a live token was revoked.
    async fn revoke_api_token(&self, id: i64, now: UnixMillis) -> Result<bool>;
    /// The live token with this hash and its enabled owner.
    async fn authenticate(&self, hash: &TokenHash) -> Result<Option<Authenticated>>;

    // --- rate limits -----------------------------------------------------
    /// One GCRA step for `key`: admits the call and records it, or says when
    /// the limit will admit one.
    async fn rate_limit(&self, key: &str, limit: &Rate, now: UnixMillis) -> Result<Admission>;

    /// Whether `key` would be admitted now, without recording a call.
    async fn rate_peek(&self, key: &str, limit: &Rate, now: UnixMillis) -> Result<Admission>;

    // --- reset links -----------------------------------------------------
    /// The admin operations' one transaction: per-user cooldown, revoke the
    /// user's open links, store the new link, (for ResetPasswordByAdmin)
    /// invalidate the password, queue the email, write the audit row.
    async fn issue_link(&self, issue: &IssueLink) -> Result<IssueOutcome>;
    /// The reset page's one transaction: consume the link (atomically: open,
    /// unexpired, unused), set the password hash, revoke the user's other
    /// links, queue the "password changed" notice, write the audit row.
    async fn complete_reset(&self, reset: &CompleteReset) -> Result<ResetOutcome>;
    /// The link with this hash, whatever its state; for the reset page and tests.
    async fn find_link(&self, hash: &TokenHash) -> Result<Option<ResetLink>>;
    async fn audit_entries(&self, target: UserId) -> Result<Vec<AuditEntry>>;

    // --- outbox ----------------------------------------------------------
    /// Leases up to `limit` due messages (queued, retrying whose time has
    /// come, or sending whose lease ran out) to `owner`.
    async fn claim_outbox(&self, claim: &Claim) -> Result<Vec<OutboxMessage>>;
    /// Settles a claimed message. Returns false if the lease was lost to
    /// another worker in the meantime (nothing is changed then).
    async fn settle_outbox(&self, id: i64, owner: &str, outcome: &Settlement) -> Result<bool>;
    /// Queues a dead message again with a fresh attempt budget; false if the
    /// message is not dead.
    async fn requeue_dead(&self, id: i64, now: UnixMillis) -> Result<bool>;
    async fn outbox_message(&self, id: i64) -> Result<Option<OutboxStatus>>;
    async fn list_outbox(
        &self,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>>;
    /// Messages to one user and/or queued by one API call, newest first.
    async fn outbox_for(
        &self,
        user: Option<UserId>,
        request_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>>;
    /// How many messages wait in each state.
    async fn outbox_depth(&self) -> Result<Vec<(OutboxState, u64)>>;
    /// The earliest time a queued or retrying message becomes due.
    async fn next_outbox_due(&self) -> Result<Option<UnixMillis>>;
}

/// Opens the store a database URL names: `sqlite://…` (the embedded
/// default) or `postgres://…`.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        return Ok(std::sync::Arc::new(SqliteStore::open(url).await?));
    }
    Err(StoreError::Unsupported(format!(
        "unsupported database URL scheme in {:?}; use sqlite://PATH",
        url.split(':').next().unwrap_or_default()
    )))
}
