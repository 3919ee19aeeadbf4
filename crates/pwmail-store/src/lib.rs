//! Storage for pwmail: users, API tokens, reset links, the outbox, the audit
//! log and rate-limit state, behind one [`Store`] trait.
//!
//! Every method is one transaction (or one atomic statement), so a failed
//! call leaves nothing half-written. Times are Unix milliseconds passed in by
//! the caller, which keeps the store free of clocks and easy to test.

mod gcra;
mod model;
mod postgres;
mod rows;
pub mod space;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use model::*;
pub use postgres::PgStore;
pub use space::SpaceWatch;
pub use sqlite::{SqliteStore, sqlite_file};

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
    Unavailable(#[source] BoxError),
    #[error("database error: {0}")]
    Database(#[source] BoxError),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Unsupported(String),
    /// The shared commit of a group of writes failed, so this write did not
    /// take effect either; `message` is the group's error.
    #[error("write not committed: {message}")]
    BatchFailed { retryable: bool, message: String },
    /// The database has no space left for the write (SQLite's
    /// SQLITE_FULL, PostgreSQL's disk_full 53100): nothing was written;
    /// worth retrying once space is freed.
    #[error("the database has no space left: {0}")]
    Full(String),
    /// The task that runs writes has stopped (the store is shutting down).
    #[error("the database writer has stopped")]
    WriterStopped,
}

impl StoreError {
    /// Whether the same call may succeed if tried again shortly.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::Full(_) => true,
            StoreError::BatchFailed { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// Whether the write failed for lack of space.
    pub fn is_out_of_space(&self) -> bool {
        matches!(self, StoreError::Full(_))
    }
}

/// A driver's error (sqlx for PostgreSQL, rusqlite for SQLite).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // The conversation with the database broke (refused, reset,
            // cut mid-handshake): worth retrying.
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(e)),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("already exists".to_string())
            }
            sqlx::Error::Database(db) => match db.code().and_then(|code| {
                let postgres = db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some();
                Passing::of(&code, postgres)
            }) {
                Some(Passing::NoSpace) => StoreError::Full(db.message().to_string()),
                Some(Passing::Unavailable) => StoreError::Unavailable(Box::new(e)),
                None => StoreError::Database(Box::new(e)),
            },
            _ => StoreError::Database(Box::new(e)),
        }
    }
}

/// A database error that says "not now" rather than "never".
#[derive(Debug, PartialEq, Eq)]
enum Passing {
    /// No space left: SQLite's SQLITE_FULL (13), PostgreSQL's disk_full
    /// (53100).
    NoSpace,
    /// SQLite's SQLITE_BUSY (5) and SQLITE_LOCKED (6), extended codes
    /// included (another writer held the lock past the busy timeout);
    /// PostgreSQL's connection exceptions (class 08), shutdowns
    /// (57P01..57P03) and too many connections (53300).
    Unavailable,
}

impl Passing {
    /// `code` is a SQLSTATE on PostgreSQL (five characters, often all
    /// digits: "08006" and "53100" are not numbers) and SQLite's extended
    /// result code in decimal otherwise.
    fn of(code: &str, postgres: bool) -> Option<Passing> {
        if postgres {
            return match code {
                "53100" => Some(Passing::NoSpace),
                "57P01" | "57P02" | "57P03" | "53300" => Some(Passing::Unavailable),
                _ if code.starts_with("08") => Some(Passing::Unavailable),
                _ => None,
            };
        }
        match code.parse::<i32>().ok()? & 0xff {
            13 => Some(Passing::NoSpace),
            5 | 6 => Some(Passing::Unavailable),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Passing;

    #[test]
    fn error_codes_are_read_as_their_engine_writes_them() {
        for (code, postgres, passing) in [
            ("53100", true, Some(Passing::NoSpace)),
            ("08006", true, Some(Passing::Unavailable)),
            ("08001", true, Some(Passing::Unavailable)),
            ("57P01", true, Some(Passing::Unavailable)),
            ("53300", true, Some(Passing::Unavailable)),
            ("23505", true, None),
            // A SQLSTATE that reads as SQLITE_FULL's number modulo 256.
            ("00013", true, None),
            ("13", false, Some(Passing::NoSpace)),
            ("5", false, Some(Passing::Unavailable)),
            ("517", false, Some(Passing::Unavailable)),
            ("6", false, Some(Passing::Unavailable)),
            ("2067", false, None),
        ] {
            assert_eq!(
                Passing::of(code, postgres),
                passing,
                "{code} postgres={postgres}"
            );
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// [`Store::issue_call`] as two calls: the lookup with the caller's
/// step, then the issue where mail can reach the user's stored address.
async fn issue_keyed_call<S: Store + ?Sized>(store: &S, call: &IssueCall) -> Result<CallOutcome> {
    let link = &call.link;
    let caller = RateKey::ApiToken(link.actor.token_id);
    let target = store
        .find_addressee(&call.email, &caller, &call.caller_rate, link.now)
        .await?;
    // A call that ends before the issue still takes its step of the
    // caller's rate, if the lookup left it pending.
    let charged = |charge| async move {
        Ok::<_, StoreError>(match charge {
            CallerCharge::Charged => Admission::Admitted,
            CallerCharge::Pending(rate) => store.rate_limit(&caller, &rate, link.now).await?,
        })
    };
    Ok(match target {
        Addressee::Throttled { retry_after_ms } => CallOutcome::Throttled { retry_after_ms },
        Addressee::Found { user, charge } if user.deliverable => {
            let outcome = store.issue_link(&link.issue_for(&user, charge)).await?;
            CallOutcome::Issued {
                user: user.id,
                outcome,
            }
        }
        Addressee::Found { user, charge } => match charged(charge).await? {
            Admission::Admitted => CallOutcome::Undeliverable { user: user.id },
            Admission::Refused { retry_after_ms } => CallOutcome::Throttled { retry_after_ms },
        },
        Addressee::Missing { charge } => match charged(charge).await? {
            Admission::Admitted => CallOutcome::NoSuchUser,
            Admission::Refused { retry_after_ms } => CallOutcome::Throttled { retry_after_ms },
        },
    })
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the database answers (for readiness checks).
    async fn ping(&self) -> Result<()>;
    /// A write that needs new space (inserted and removed in one
    /// transaction): whether the database can store anything again after
    /// a write failed with [`StoreError::Full`].
    async fn probe_space(&self, now: UnixMillis) -> Result<()>;

    /// What SQLite's writer thread has done; `None` for PostgreSQL, whose
    /// writes run on the pool's connections.
    fn writer_stats(&self) -> Option<WriterStats> {
        None
    }

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
    /// Records whether mail can be addressed to the user's stored address.
    async fn set_deliverable(&self, user: UserId, deliverable: bool) -> Result<()>;
    /// Users whose stored address was never checked: written before the
    /// column existed, or by an older replica.
    async fn unchecked_addresses(&self) -> Result<Vec<(UserId, String)>>;
    /// Checks the addresses [`unchecked_addresses`](Store::unchecked_addresses)
    /// lists with `deliverable` (the mail builder's check, which the store
    /// cannot make) and records each answer. Returns how many mail cannot
    /// reach. Run before the service issues links (`pwmail serve`, `pwmail
    /// migrate`); once every row is checked it reads nothing but the index.
    async fn check_addresses(
        &self,
        deliverable: &(dyn for<'e> Fn(&'e str) -> bool + Sync),
    ) -> Result<u64> {
        let mut unreachable = 0;
        for (user, email) in self.unchecked_addresses().await? {
            let checked = deliverable(&email);
            self.set_deliverable(user, checked).await?;
            unreachable += u64::from(!checked);
        }
        Ok(unreachable)
    }

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
    async fn rate_limit(&self, key: &RateKey, limit: &Rate, now: UnixMillis) -> Result<Admission>;

    /// Deletes the state of every key whose limit is full again (its
    /// theoretical arrival time has passed), which is the same as no state;
    /// returns how many keys were forgotten.
    async fn purge_rate_limits(&self, now: UnixMillis) -> Result<u64>;
    /// Cuts state of `kind`'s keys written under a slower rate than `rate`
    /// to what `rate` can leave (`gcra::ceiling`), so a refusal waits no
    /// longer than the rate it quotes; returns how many keys it cut.
    async fn fit_rate_state(&self, kind: RateKind, rate: &Rate, now: UnixMillis) -> Result<u64>;

    // --- idempotency keys ------------------------------------------------
    /// The stored outcome of `key` for this token and operation, unless it
    /// expired. `issue_link` checks again inside its transaction.
    async fn find_idempotency(
        &self,
        token_id: i64,
        operation: LinkPurpose,
        key: &str,
        now: UnixMillis,
    ) -> Result<Option<StoredOutcome>>;
    /// Deletes expired keys; returns how many.
    async fn purge_idempotency_keys(&self, now: UnixMillis) -> Result<u64>;

    // --- reset links -----------------------------------------------------
    /// The first step of an admin call that names a user: the user with
    /// this address, and the caller's rate (`caller`, `rate`) either charged
    /// here or left for [`issue_link`](Store::issue_link) to charge (see
    /// [`CallerCharge`]). This default only looks the user up.
    async fn find_addressee(
        &self,
        email: &str,
        caller: &RateKey,
        rate: &Rate,
        now: UnixMillis,
    ) -> Result<Addressee> {
        let _ = (caller, now);
        let charge = CallerCharge::Pending(*rate);
        Ok(match self.find_user_by_email(email).await? {
            Some(user) => Addressee::Found { user, charge },
            None => Addressee::Missing { charge },
        })
    }
    /// An admin call by address, whole: the caller's step of its rate, the
    /// user, and, where mail can reach the user's stored address, the issue;
    /// one typed outcome ([`CallOutcome`]). A call with an Idempotency-Key
    /// takes two steps (`find_addressee`, then `issue_link`), so that its
    /// stored outcome answers it before any charge; the others one
    /// ([`issue_unkeyed_call`](Store::issue_unkeyed_call)).
    async fn issue_call(&self, call: &IssueCall) -> Result<CallOutcome> {
        if call.link.idempotency.is_some() {
            return issue_keyed_call(self, call).await;
        }
        self.issue_unkeyed_call(call).await
    }
    /// [`issue_call`](Store::issue_call) for a call without an
    /// Idempotency-Key, in one round trip to the database or the writer.
    async fn issue_unkeyed_call(&self, call: &IssueCall) -> Result<CallOutcome>;
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

    // --- outbox ----------------------------------------------------------
    /// Leases up to `limit` due messages (queued, retrying whose time has
    /// come, or sending whose lease ran out) to `owner`.
    async fn claim_outbox(&self, claim: &Claim) -> Result<Vec<OutboxMessage>>;
    /// Settles a claimed message. Returns false if the lease was lost to
    /// another worker in the meantime (nothing is changed then).
    async fn settle_outbox(&self, id: i64, owner: &str, outcome: &Settlement) -> Result<bool>;
    /// Moves the end of `owner`'s lease on a message to `until`; false if
    /// the lease is no longer `owner`'s.
    async fn extend_lease(&self, id: i64, owner: &str, until: UnixMillis) -> Result<bool>;
    /// Ends every lease now, so messages left `sending` are claimed at once;
    /// returns how many. Only for a process that holds the database alone
    /// (SQLite under the server lock), where a lease can only be one a dead
    /// process left.
    async fn end_leases(&self, now: UnixMillis) -> Result<u64>;
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
    /// How many messages are in each state.
    async fn outbox_depth(&self) -> Result<Vec<(OutboxState, u64)>>;
    /// [`Store::outbox_depth`] without the sent ones, whose count grows
    /// with the table: what can be counted often at any size.
    async fn outbox_unsent_depth(&self) -> Result<Vec<(OutboxState, u64)>>;
    /// The earliest time a queued or retrying message becomes due.
    async fn next_outbox_due(&self) -> Result<Option<UnixMillis>>;
}

/// Opens the store a database URL names: `sqlite://…` (the embedded
/// default) or `postgres://…`, running migrations.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    open_with(url, PoolOptions::default()).await
}

/// Where the database of `url` is, for an operator to read: the SQLite
/// file, or the PostgreSQL URL without its password.
pub fn describe(url: &str) -> String {
    if let Some(file) = sqlite_file(url) {
        return file.display().to_string();
    }
    // scheme://user:password@host… → scheme://user:***@host…
    let masked = url.split_once("://").and_then(|(scheme, rest)| {
        let (userinfo, host) = rest.split_once('@')?;
        let (user, _password) = userinfo.split_once(':')?;
        Some(format!("{scheme}://{user}:***@{host}"))
    });
    masked.unwrap_or_else(|| url.to_string())
}

fn unsupported(url: &str) -> StoreError {
    StoreError::Unsupported(format!(
        "unsupported database URL scheme {:?}; use sqlite://PATH or postgres://…",
        url.split(':').next().unwrap_or_default()
    ))
}

/// Whether `url` names a database that `open` has set up before: the SQLite
/// file exists, or PostgreSQL holds the schema. Creates nothing.
pub async fn exists(url: &str) -> Result<bool> {
    if url.starts_with("sqlite:") {
        return Ok(sqlite_file(url).is_some_and(|file| file.exists()));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return PgStore::has_schema(url).await;
    }
    Err(unsupported(url))
}

/// How a PostgreSQL pool is sized and waited for (SQLite keeps its own
/// writer and a small read pool).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// Longest wait for a connection before a request fails as unavailable.
    pub acquire_timeout: std::time::Duration,
    /// Connections per process.
    pub max_connections: u32,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            acquire_timeout: std::time::Duration::from_secs(2),
            max_connections: 16,
        }
    }
}

/// As [`open`], with the pool sized and bounded by `pool`.
pub async fn open_with(url: &str, pool: PoolOptions) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        return Ok(std::sync::Arc::new(SqliteStore::open(url).await?));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return Ok(std::sync::Arc::new(PgStore::open(url, pool).await?));
    }
    Err(unsupported(url))
}
