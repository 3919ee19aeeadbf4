//! Storage for pwmail: users, API tokens, reset links, the outbox, the audit
//! log and rate-limit state. [`Store`] is one trait per aggregate, each in
//! its own module with both engines' implementations beside it: [`Users`]
//! (users and their API tokens), [`Limits`], [`Idempotency`], [`Links`]
//! and [`Outbox`].
//!
//! Every method is one transaction (or one atomic statement), so a failed
//! call leaves nothing half-written. Times are Unix milliseconds passed in by
//! the caller, which keeps the store free of clocks and easy to test.

mod audit;
mod events;
mod gcra;
mod idempotency;
mod limits;
mod links;
mod model;
mod outbox;
mod postgres;
mod retention;
mod rows;
pub mod space;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod users;

pub use audit::Audit;
pub use events::{Event, EventKind, EventSettlement, EventState, Events};
pub use idempotency::Idempotency;
pub use limits::Limits;
pub use links::Links;
pub use model::*;
pub use outbox::Outbox;
pub use postgres::PgStore;
pub use retention::Retention;
pub use space::SpaceWatch;
pub use sqlite::{SqliteStore, sqlite_file};
pub use users::Users;

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

impl StoreError {
    /// This error of reaching the database at `place` (host:port and
    /// database), said plainly: sqlx writes a server's error with the line
    /// of PostgreSQL's own source file (`… does not exist at line 948`), and
    /// a refused connection without saying where to.
    pub fn at(self, place: &str) -> StoreError {
        let plain = |e: &BoxError| match e.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Database(db)) => db.message().to_string(),
            _ => e.to_string(),
        };
        match self {
            StoreError::Unavailable(e) => {
                StoreError::Unavailable(format!("{place}: {}", plain(&e)).into())
            }
            StoreError::Database(e) => {
                StoreError::Database(format!("{place}: {}", plain(&e)).into())
            }
            other => other,
        }
    }
}

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

/// The whole store: each aggregate's trait (users and tokens, limits,
/// idempotency, links, outbox, audit; one module each), and what concerns
/// the database as a whole.
#[async_trait]
pub trait Store:
    Users + Limits + Idempotency + Links + Outbox + Events + Audit + Retention + Send + Sync + 'static
{
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
