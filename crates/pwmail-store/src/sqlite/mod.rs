//! The embedded default: one SQLite file in WAL mode, written by one thread
//! ([`writer`]) and read through read-only connections ([`conn::Readers`]).

mod checkpoint;
mod conn;
mod writer;
// Each aggregate's implementation on this engine, kept beside its trait.
#[path = "../audit/sqlite.rs"]
mod audit_impl;
#[path = "../events/sqlite.rs"]
mod events_impl;
#[path = "../idempotency/sqlite.rs"]
mod idempotency_impl;
#[path = "../limits/sqlite.rs"]
mod limits_impl;
#[path = "../links/sqlite.rs"]
mod links_impl;
#[path = "../outbox/sqlite.rs"]
mod outbox_impl;
#[path = "../retention/sqlite.rs"]
mod retention_impl;
#[path = "../users/sqlite.rs"]
mod users_impl;

use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use rusqlite::{Connection, params};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use self::conn::{Readers, all, exec, one, scalar};
use self::writer::{Savepoint, Writer};
use crate::rows::{self, Columns as _};
use crate::sql::{self, SQLITE};
use crate::*;

/// Built once; a statement text lives for the process.
static GCRA_ADMIT: LazyLock<&'static str> = LazyLock::new(|| sql::gcra_admit(SQLITE).leak());

#[derive(Clone)]
pub struct SqliteStore {
    readers: Arc<Readers>,
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path`)
    /// and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        // Before anything in the process starts SQLite (the migrations do).
        conn::configure_journal();
        let file = sqlite_file(url).ok_or_else(|| {
            StoreError::Unsupported(format!(
                "{url:?} names no file; pwmail keeps its SQLite database in a file \
                 (sqlite://PATH) that the server and the admin commands share"
            ))
        })?;
        create_private(&file)?;
        migrate(url).await?;
        let writer = Writer::start(conn::open_writer(&file)?, file.clone())?;
        Ok(SqliteStore {
            readers: Arc::new(Readers::new(file)),
            writer,
        })
    }

    /// Whether this process's writes keep their savepoint journal in one
    /// piece of memory (`conn::configure_journal`) rather than in SQLite's
    /// 1 KiB pieces: true once a store opened before anything else in the
    /// process started SQLite.
    pub fn journal_in_one_piece() -> bool {
        conn::journal_configured()
    }

    /// A read of a few rows by index, on the calling task.
    fn read<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.readers.read(work)
    }

    /// A read whose cost grows with a table (counts, listings): on tokio's
    /// blocking threads, so it never holds up a worker that serves requests.
    async fn scan<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.read(work))
            .await
            .map_err(|e| StoreError::Database(Box::new(e)))?
    }

    /// Messages per state by `sql` ([`sql::OUTBOX_DEPTH`] or [`sql::OUTBOX_UNSENT`]).
    async fn depth(&self, sql: &'static str) -> Result<Vec<(OutboxState, u64)>> {
        self.scan(move |c| {
            let counts = all(c, sql, [], |row| Ok((row.text("state")?, row.int("n")?)))?;
            Ok(rows::outbox_depth(counts))
        })
        .await
    }
}

/// A claim step by step, for the one writer (nothing else runs between
/// the steps): the due rows and the expired leases (`scans`, each `(id,
/// due)`), merged by due time (ties by id) up to the limit, each leased
/// with `lease` (row `$4` to `$1` until `$2 + $3`) and read with `read`
/// (`$1` the id). The outbox's claim and the events' (`sql::CLAIM_ONE`).
fn claim_steps<T>(
    c: &Connection,
    claim: &Claim,
    scans: [&'static str; 2],
    lease: &'static str,
    read: &'static str,
    row: impl Fn(&conn::Row<'_, '_>) -> Result<T>,
) -> Result<Vec<(i64, T)>> {
    let scan = params![claim.owner, claim.now, claim.lease_ms, claim.limit];
    let due_row = |r: &conn::Row<'_, '_>| Ok((r.int("due")?, r.int("id")?));
    let mut picked = Vec::new();
    for text in scans {
        picked.extend(all(c, text, scan, due_row)?);
    }
    picked.sort_unstable();
    picked.truncate(claim.limit as usize);
    let mut claimed = Vec::with_capacity(picked.len());
    for (_, id) in picked {
        let leased = params![claim.owner, claim.now, claim.lease_ms, id];
        if exec(c, lease, leased)? == 1 {
            claimed.extend(one(c, read, params![id], &row)?.map(|t| (id, t)));
        }
    }
    claimed.sort_by_key(|(id, _)| *id);
    Ok(claimed)
}

/// Brings the schema up to date with sqlx's migrator (it keeps the
/// applied migrations in `_sqlx_migrations`, as every pwmail database
/// has), on a connection of its own that is closed afterwards. Foreign
/// keys are off there: a migration that rebuilds a table (0005) drops the
/// old one while other tables' rows point at its ids.
async fn migrate(url: &str) -> Result<()> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Database(Box::new(e)))?
        .foreign_keys(false)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let migrated = sqlx::migrate!("./migrations/sqlite").run(&pool).await;
    pool.close().await;
    Ok(migrated?)
}

/// The file of a `sqlite://` URL, as SQLite will open it; `None` for other
/// URLs and in-memory databases.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (!path.as_os_str().is_empty() && path != std::path::Path::new(":memory:"))
        .then(|| path.to_path_buf())
}

/// Creates an empty database file readable by its owner only, unless it
/// exists: it holds queued emails with live links. SQLite gives the `-wal`
/// and `-shm` files it creates later the database file's permissions.
fn create_private(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        // Not a passing outage: the path cannot hold a database.
        Err(e) => Err(StoreError::Database(Box::new(e))),
    }
}

/// Queues a message; returns its outbox id.
fn insert_message(
    c: &Connection,
    m: &NewMessage,
    now: UnixMillis,
    request_id: &str,
    user: UserId,
) -> Result<i64> {
    let content = rows::ContentColumns::of(&m.content);
    exec(
        c,
        sql::OUTBOX_INSERT,
        params![
            m.message_id,
            m.kind.as_str(),
            m.recipient,
            content.subject,
            content.body_text,
            content.body_html,
            content.link,
            content.link_name,
            content.link_expires_at,
            now,
            request_id,
            user.0,
            content.options
        ],
    )?;
    Ok(c.last_insert_rowid())
}

/// Revokes `user`'s open links, one by one (`sql::LINKS_OPEN` says why).
fn revoke_open_links(c: &Connection, user: UserId, now: UnixMillis) -> Result<()> {
    for link in all(c, sql::LINKS_OPEN, params![user.0], |row| row.int("id"))? {
        exec(c, sql::LINK_REVOKE, params![link, now])?;
    }
    Ok(())
}

/// One GCRA step (`sql::gcra_admit`).
fn gcra(c: &Connection, key: &str, rate: &Rate, now: UnixMillis) -> Result<Admission> {
    let (period, tau) = gcra::params(rate);
    if exec(c, *GCRA_ADMIT, params![key, now, period, tau])? == 1 {
        return Ok(Admission::Admitted);
    }
    let tat: Option<i64> = scalar(c, sql::GCRA_TAT, params![key])?;
    Ok(gcra::refused(tat.unwrap_or(now), tau, now))
}

/// The stored outcome of a live Idempotency-Key (`sql::IDEMPOTENCY_FIND`).
fn find_key(
    c: &Connection,
    token_id: i64,
    operation: LinkPurpose,
    key: &str,
    now: UnixMillis,
) -> Result<Option<StoredOutcome>> {
    one(
        c,
        sql::IDEMPOTENCY_FIND,
        params![token_id, operation.as_str(), key, now],
        |row| rows::stored_outcome(row),
    )
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        self.read(|c| scalar::<i64>(c, "SELECT 1", []).map(drop))
    }

    async fn probe_space(&self, now: UnixMillis) -> Result<()> {
        self.writer
            .write(move |c| {
                let pad = vec![0u8; sql::SPACE_PROBE_BYTES];
                exec(c, sql::SPACE_PROBE_INSERT, params![now, pad])?;
                exec(c, sql::SPACE_PROBE_DELETE, [])?;
                Ok(())
            })
            .await
    }

    fn writer_stats(&self) -> Option<WriterStats> {
        Some(self.writer.stats())
    }
}

/// Test-only access; see [`crate::testing`].
#[cfg(feature = "testing")]
#[async_trait]
impl crate::testing::StoreTestExt for SqliteStore {
    async fn set_password_hash(&self, user: UserId, phc: &str, now: UnixMillis) -> Result<()> {
        let phc = phc.to_string();
        let done = self
            .writer
            .write_statement(move |c| {
                exec(
                    c,
                    crate::testing::PASSWORD_SET_ANY,
                    params![user.0, phc, now],
                )
            })
            .await?;
        if done == 0 {
            return Err(StoreError::NotFound(format!("no user {user}")));
        }
        Ok(())
    }

    async fn outbox_held(&self, id: i64) -> Result<String> {
        self.read(|c| one(c, crate::testing::OUTBOX_HELD, [id], |row| row.text("held")))?
            .ok_or_else(|| StoreError::NotFound(format!("no outbox row {id}")))
    }

    async fn links(&self) -> Result<Vec<ResetLink>> {
        self.read(|c| all(c, sql::LINKS_ALL, [], |row| rows::link(row)))
    }

    async fn forget_address_checks(&self) -> Result<()> {
        self.writer
            .write_statement(|c| exec(c, crate::testing::FORGET_ADDRESS_CHECKS, []).map(drop))
            .await
    }

    async fn clear(&self) -> Result<()> {
        self.writer
            .write(move |c| {
                for statement in crate::testing::clear_statements() {
                    c.execute(&statement, []).map_err(StoreError::from)?;
                }
                Ok(())
            })
            .await
    }

    async fn fail_settles(&self, _fail: bool) -> Result<()> {
        Err(StoreError::Unsupported(
            "a SQLite trigger cannot fail with SQLITE_FULL".into(),
        ))
    }

    async fn hold_size(&self, hold: bool) -> Result<()> {
        // SQLite sets max_page_count to at least the pages in use.
        let pages: i64 = if hold { 1 } else { 1 << 30 };
        self.writer
            .write_statement(move |c| {
                c.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                    .map_err(StoreError::from)?;
                Ok(0)
            })
            .await?;
        Ok(())
    }
}
