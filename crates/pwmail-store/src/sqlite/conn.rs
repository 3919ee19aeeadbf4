//! rusqlite plumbing: opening connections, running `sql.rs`'s statements
//! (prepared once per connection and cached), reading their rows, and the
//! read-only connections reads use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, OnceLock, RwLock};
use std::time::Duration;

use rusqlite::{CachedStatement, Connection, OpenFlags, Params};

use crate::rows::Columns;
use crate::{Result, StoreError};

/// Longest wait for a lock another process holds before a call fails as
/// unavailable (503).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// More than the number of statements in `sql.rs`, so none is ever evicted
/// and prepared again.
const STATEMENT_CACHE: usize = 96;
/// Idle read connections kept open.
const IDLE_READERS: usize = 8;

/// Bytes of a write's savepoint journal SQLite keeps in memory, in one
/// piece, before it spills to a temporary file: the largest piece SQLite
/// can spill. It writes the piece to the file in one call, and its unix
/// file layer writes at most 0x1ffff bytes a call (`seekAndWriteFd` masks
/// the length), so a larger piece spilled short and every write whose
/// journal outgrew it failed with SQLITE_FULL, "database or disk is full"
/// (1 MiB did: a purge window of 500 emails, `tests/sqlite_large_write.rs`).
const JOURNAL_IN_MEMORY: i32 = 0x1ffff;

/// Whether this process's SQLite took [`JOURNAL_IN_MEMORY`].
static JOURNAL_CONFIGURED: OnceLock<bool> = OnceLock::new();

/// Gives each write's savepoint journal one 128 KiB piece of memory. With
/// `temp_store = MEMORY` SQLite keeps that journal in 1 KiB pieces, each a
/// malloc and a free: about 77 of each per API call, 7 % of a call's
/// instructions under callgrind. SQLite takes the setting only before its
/// first use in the process (`SqliteStore::open` asks first thing); where
/// it came too late the writer keeps `temp_store = MEMORY`.
pub fn configure_journal() -> bool {
    *JOURNAL_CONFIGURED.get_or_init(|| {
        // SAFETY: SQLITE_CONFIG_STMTJRNL_SPILL takes one int. Once SQLite
        // has started, sqlite3_config changes nothing and says
        // SQLITE_MISUSE; before, it only stores the int.
        let done = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_STMTJRNL_SPILL,
                JOURNAL_IN_MEMORY,
            )
        };
        done == rusqlite::ffi::SQLITE_OK
    })
}

/// Whether [`configure_journal`] ran in time: read, never set, here.
pub fn journal_configured() -> bool {
    JOURNAL_CONFIGURED.get() == Some(&true)
}

/// Opens the writing connection: WAL, foreign keys, and `synchronous=OFF`
/// because the writer's sync thread fsyncs the WAL after each commit
/// before anyone is answered (`writer.rs`): a 200 still means the email is
/// queued even across power loss. Every setting is made before the first
/// statement is prepared: changing one later would expire every prepared
/// statement.
pub fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Checkpoints run on their own thread (`checkpoint.rs`), not in a
    // COMMIT; a WAL started over is trimmed back to 64 MiB. Each write's
    // savepoint journal stays in memory (past SQLite's default of 64 KiB it
    // would spill to a temporary file, two `pwrite` calls per page from
    // then on): up to 128 KiB in one piece (`configure_journal`), or in
    // temporary storage kept in memory.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;",
    )?;
    if !journal_configured() {
        conn.execute_batch("PRAGMA temp_store = MEMORY;")?;
    }
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Read-only connections. WAL readers never wait for the writer, so a read
/// by index runs on the calling task without a hand-off; `SqliteStore`
/// sends reads whose cost grows with a table to tokio's blocking threads.
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub fn new(path: PathBuf) -> Readers {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn read<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = work(&conn);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_READERS
        {
            idle.push(conn);
        }
        result
    }
}

/// `sql.rs` writes parameters `$n`; SQLite binds `?n` by number (it numbers
/// `$n` by first appearance instead). Converted once per text.
fn sqlite_text(sql: &'static str) -> &'static str {
    static CONVERTED: LazyLock<RwLock<HashMap<(usize, usize), &'static str>>> =
        LazyLock::new(Default::default);
    let key = (sql.as_ptr() as usize, sql.len());
    if let Some(text) = CONVERTED.read().ok().and_then(|m| m.get(&key).copied()) {
        return text;
    }
    let text: &'static str = sql.replace('$', "?").leak();
    if let Ok(mut map) = CONVERTED.write() {
        map.insert(key, text);
    }
    text
}

/// `sql` prepared on `conn`, from its cache after the first time.
pub fn stmt<'c>(conn: &'c Connection, sql: &'static str) -> Result<CachedStatement<'c>> {
    Ok(conn.prepare_cached(sqlite_text(sql))?)
}

/// Runs a statement; returns the rows it changed.
pub fn exec(conn: &Connection, sql: &'static str, params: impl Params) -> Result<usize> {
    Ok(stmt(conn, sql)?.execute(params)?)
}

/// The first row, read with `map`.
pub fn one<T>(
    conn: &Connection,
    sql: &'static str,
    params: impl Params,
    map: impl FnOnce(&Row<'_, '_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut stmt = stmt(conn, sql)?;
    let mut rows = stmt.query(params)?;
    match rows.next()? {
        Some(row) => map(&Row(row)).map(Some),
        None => Ok(None),
    }
}

/// Every row, read with `map`.
pub fn all<T>(
    conn: &Connection,
    sql: &'static str,
    params: impl Params,
    map: impl Fn(&Row<'_, '_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = stmt(conn, sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(&Row(row))?);
    }
    Ok(out)
}

/// The first column of the first row.
pub fn scalar<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &'static str,
    params: impl Params,
) -> Result<Option<T>> {
    one(conn, sql, params, |row| Ok(row.0.get(0)?))
}

/// A rusqlite row, read by column name.
pub struct Row<'s, 'r>(pub &'r rusqlite::Row<'s>);

impl Columns for Row<'_, '_> {
    fn int(&self, column: &str) -> Result<i64> {
        Ok(self.0.get(column)?)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        Ok(self.0.get(column)?)
    }
    fn text(&self, column: &str) -> Result<String> {
        Ok(self.0.get(column)?)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        Ok(self.0.get(column)?)
    }
    fn flag(&self, column: &str) -> Result<bool> {
        Ok(self.0.get::<_, i64>(column)? != 0)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match &e {
            rusqlite::Error::SqliteFailure(f, _) => match f.code {
                // Another process held the lock past the busy timeout.
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                    StoreError::Unavailable(Box::new(e))
                }
                ErrorCode::DiskFull => StoreError::Full(e.to_string()),
                // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
                ErrorCode::ConstraintViolation if matches!(f.extended_code, 2067 | 1555) => {
                    StoreError::Conflict("already exists".to_string())
                }
                _ => StoreError::Database(Box::new(e)),
            },
            _ => StoreError::Database(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{self, SQLITE};

    /// An in-memory database with every migration (in a database file
    /// sqlx runs them, with foreign keys off).
    fn migrated() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        // The migrator's own list, so a new migration is in it.
        for migration in sqlx::migrate!("./migrations/sqlite").iter() {
            conn.execute_batch(migration.sql.as_str()).unwrap();
        }
        conn
    }

    /// The opcodes of `sql`'s own program (a trigger's program, listed after
    /// it, only runs when the trigger fires).
    fn opcodes(conn: &Connection, sql: &'static str) -> Vec<String> {
        let mut explain = conn
            .prepare(&format!("EXPLAIN {}", sqlite_text(sql)))
            .unwrap();
        let nulls = vec![rusqlite::types::Null; explain.parameter_count()];
        let mut rows = explain.query(rusqlite::params_from_iter(nulls)).unwrap();
        let (mut ops, mut last) = (Vec::new(), -1i64);
        while let Some(row) = rows.next().unwrap() {
            let addr: i64 = row.get(0).unwrap();
            if addr <= last {
                break;
            }
            last = addr;
            ops.push(row.get::<_, String>(1).unwrap());
        }
        ops
    }

    /// What `EXPLAIN QUERY PLAN` says of `sql`, one step a line.
    fn query_plan(conn: &Connection, sql: &'static str) -> Vec<String> {
        let mut explain = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", sqlite_text(sql)))
            .unwrap();
        let nulls = vec![rusqlite::types::Null; explain.parameter_count()];
        explain
            .query_map(rusqlite::params_from_iter(nulls), |row| row.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// SQLite's temporary files (the prefix is SQLite's own), open in this
    /// process.
    fn sqlite_temp_files() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.to_string_lossy().contains("etilqs_"))
            .count()
    }

    /// Each write runs in a savepoint, whose journal of the pages it
    /// changes spills to a temporary file past 64 KiB unless temporary
    /// storage is in memory; once spilled, every later write of the batch
    /// was two more `pwrite` calls per page (under load, 27 of the 40
    /// `pwrite` calls an API call cost).
    #[test]
    fn a_large_write_in_a_savepoint_journals_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Connection::open(&path).unwrap());
        let conn = open_writer(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE pages (id INTEGER PRIMARY KEY, body BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64)
             INSERT INTO pages SELECT i, zeroblob(3000) FROM n;",
        )
        .unwrap();
        let before = sqlite_temp_files();
        // A spilled journal is closed (and gone) at COMMIT: look before.
        conn.execute_batch(
            "BEGIN; SAVEPOINT w; UPDATE pages SET body = zeroblob(3001); RELEASE w;",
        )
        .unwrap();
        let during = sqlite_temp_files();
        conn.execute_batch("COMMIT").unwrap();
        assert_eq!(during, before);
    }

    /// SQLite as `.cargo/config.toml` builds it: each connection's pages
    /// in a cache of its own and allocations not counted, so the writer
    /// and the readers take no global lock per page or per allocation
    /// (libsqlite3-sys's bundled build has both; under load they cost
    /// about 4 % of the CPU per API call).
    #[test]
    fn sqlite_is_built_without_global_locks_on_pages_and_allocations() {
        let conn = Connection::open_in_memory().unwrap();
        let options: Vec<String> = conn
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
    }

    /// The backlog watcher counts every 250 ms; sent rows are never purged,
    /// so that count must read only the partial indexes of the states a
    /// message is in before it is sent.
    #[test]
    fn the_frequent_outbox_count_reads_only_the_unsent_partial_indexes() {
        let conn = migrated();
        let plan = query_plan(&conn, sql::OUTBOX_UNSENT);
        let reads: Vec<&String> = plan.iter().filter(|step| step.contains("outbox")).collect();
        assert_eq!(reads.len(), 3, "{plan:#?}");
        for step in reads {
            assert!(
                ["outbox_due", "outbox_leased", "outbox_dead"]
                    .iter()
                    .any(|index| step.ends_with(&format!("INDEX {index}"))),
                "{step} in {plan:#?}"
            );
        }
    }

    /// SQLite builds a temporary table for a `RETURNING`, an `IN` list of
    /// more than two values, or an UPDATE that changes the index it scans:
    /// measured at about as many instructions as the rest of an insert. The
    /// statements every API call and every sent email run build none.
    #[test]
    fn the_statements_of_a_call_and_a_send_build_no_temporary_table() {
        let conn = migrated();
        let hot: Vec<(&str, &'static str)> = vec![
            ("AUTHENTICATE", sql::AUTHENTICATE),
            ("USER_BY_EMAIL_KEY", sql::USER_BY_EMAIL_KEY),
            ("gcra_admit", sql::gcra_admit(SQLITE).leak()),
            ("USER_DISABLED_AT", sql::USER_DISABLED_AT),
            ("LINKS_OPEN", sql::LINKS_OPEN),
            ("LINK_REVOKE", sql::LINK_REVOKE),
            ("LINK_INSERT", sql::LINK_INSERT),
            ("PASSWORD_INVALIDATE", sql::PASSWORD_INVALIDATE),
            ("OUTBOX_INSERT", sql::OUTBOX_INSERT),
            ("IDEMPOTENCY_STORE", sql::IDEMPOTENCY_STORE),
            ("AUDIT_ISSUE", sql::AUDIT_ISSUE),
            ("CLAIM_DUE", sql::CLAIM_DUE),
            ("CLAIM_EXPIRED", sql::CLAIM_EXPIRED),
            ("CLAIM_ONE", sql::CLAIM_ONE),
            ("CLAIMED", sql::CLAIMED),
            ("SETTLE_SENT", sql::SETTLE_SENT),
            ("SETTLE_RETRY", sql::SETTLE_RETRY),
        ];
        let building: Vec<&str> = hot
            .iter()
            .filter(|(_, text)| {
                opcodes(&conn, text)
                    .iter()
                    .any(|op| op == "OpenEphemeral" || op == "OpenAutoindex")
            })
            .map(|(name, _)| *name)
            .collect();
        assert!(building.is_empty(), "temporary tables in {building:?}");
        // The check can see one: the outbox insert with a RETURNING.
        assert!(
            opcodes(&conn, sql::OUTBOX_INSERT_RETURNING_ID)
                .iter()
                .any(|op| op == "OpenEphemeral")
        );
    }

    /// A statement SQLite prepares again on every new parameter value costs
    /// more than all the rest of a call (a bare `LIMIT ?` did that: SQLite
    /// plans with the bound value and marks the statement stale when it is
    /// bound anew). Every statement of `sql.rs` stays prepared.
    #[test]
    fn no_statement_is_prepared_again_when_its_parameters_change() {
        let conn = migrated();
        let statements: Vec<(&str, &'static str)> = vec![
            ("CLAIM_DUE", sql::CLAIM_DUE),
            ("CLAIM_EXPIRED", sql::CLAIM_EXPIRED),
            ("CLAIM_ONE", sql::CLAIM_ONE),
            ("CLAIMED", sql::CLAIMED),
            ("gcra_admit", sql::gcra_admit(SQLITE).leak()),
            ("USER_INSERT", sql::USER_INSERT),
            ("USERS_ALL", sql::USERS_ALL),
            ("USER_BY_ID", sql::USER_BY_ID),
            ("USER_BY_EMAIL_KEY", sql::USER_BY_EMAIL_KEY),
            ("COUNT_ADMINS", sql::COUNT_ADMINS),
            ("USER_DISABLE", sql::USER_DISABLE),
            ("USER_DISABLED_AT", sql::USER_DISABLED_AT),
            ("PASSWORD_HASH", sql::PASSWORD_HASH),
            ("PASSWORD_SET", sql::PASSWORD_SET),
            ("PASSWORD_INVALIDATE", sql::PASSWORD_INVALIDATE),
            ("TOKEN_INSERT", sql::TOKEN_INSERT),
            ("TOKENS_OF_USER", sql::TOKENS_OF_USER),
            ("TOKEN_REVOKE", sql::TOKEN_REVOKE),
            ("TOKENS_REVOKE_OF_USER", sql::TOKENS_REVOKE_OF_USER),
            ("AUTHENTICATE", sql::AUTHENTICATE),
            ("GCRA_TAT", sql::GCRA_TAT),
            ("RATE_PURGE", sql::RATE_PURGE),
            ("IDEMPOTENCY_FIND", sql::IDEMPOTENCY_FIND),
            ("IDEMPOTENCY_STORE", sql::IDEMPOTENCY_STORE),
            ("IDEMPOTENCY_PURGE", sql::IDEMPOTENCY_PURGE),
            ("LINKS_REVOKE_OPEN", sql::LINKS_REVOKE_OPEN),
            ("LINKS_OPEN", sql::LINKS_OPEN),
            ("LINK_REVOKE", sql::LINK_REVOKE),
            ("LINK_INSERT", sql::LINK_INSERT),
            ("LINK_CONSUME_USER", sql::LINK_CONSUME_USER),
            ("LINK_BY_HASH", sql::LINK_BY_HASH),
            ("AUDIT_ISSUE", sql::AUDIT_ISSUE),
            ("AUDIT_PASSWORD_CHANGED", sql::AUDIT_PASSWORD_CHANGED),
            ("AUDIT_LIST", sql::AUDIT_LIST),
            ("AUDIT_REFUSAL", sql::AUDIT_REFUSAL),
            ("USER_SUPPRESS", sql::USER_SUPPRESS),
            ("AUDIT_SUPPRESSED", sql::AUDIT_SUPPRESSED),
            ("USER_UNSUPPRESS", sql::USER_UNSUPPRESS),
            ("AUDIT_UNSUPPRESSED", sql::AUDIT_UNSUPPRESSED),
            ("USER_UPDATE", sql::USER_UPDATE),
            ("AUDIT_USER_CHANGE", sql::AUDIT_USER_CHANGE),
            ("USER_DELETE_KEYS", sql::USER_DELETE_KEYS),
            ("USER_DELETE_UNSENT", sql::USER_DELETE_UNSENT),
            ("USER_DETACH_SETTLED", sql::USER_DETACH_SETTLED),
            ("USER_DELETE_LINKS", sql::USER_DELETE_LINKS),
            ("USER_DELETE_TOKENS", sql::USER_DELETE_TOKENS),
            ("AUDIT_KEEP_TARGET_ADDRESS", sql::AUDIT_KEEP_TARGET_ADDRESS),
            ("AUDIT_KEEP_ACTOR_ADDRESS", sql::AUDIT_KEEP_ACTOR_ADDRESS),
            ("USER_DELETE", sql::USER_DELETE),
            ("AUDIT_USER_DELETED", sql::AUDIT_USER_DELETED),
            ("EVENT_KINDS_CLEAR", sql::EVENT_KINDS_CLEAR),
            ("EVENT_KIND_ADD", sql::EVENT_KIND_ADD),
            ("EVENT_KINDS", sql::EVENT_KINDS),
            ("LINK_OPENED", sql::LINK_OPENED),
            ("EVENTS_CLAIM_DUE", sql::EVENTS_CLAIM_DUE),
            ("EVENTS_CLAIM_EXPIRED", sql::EVENTS_CLAIM_EXPIRED),
            ("EVENT_CLAIM_ONE", sql::EVENT_CLAIM_ONE),
            ("EVENT_CLAIMED", sql::EVENT_CLAIMED),
            ("EVENT_DELIVERED", sql::EVENT_DELIVERED),
            ("EVENT_RETRY", sql::EVENT_RETRY),
            ("EVENT_FAILED", sql::EVENT_FAILED),
            ("EVENTS_RETRY_FAILED", sql::EVENTS_RETRY_FAILED),
            ("EVENT_LEASES_END", sql::EVENT_LEASES_END),
            ("EVENTS_LIST", sql::EVENTS_LIST),
            ("EVENTS_DEPTH", sql::EVENTS_DEPTH),
            ("EVENTS_NEXT_DUE", sql::EVENTS_NEXT_DUE),
            (
                "purge(Emails).window",
                sql::purge(crate::Aging::Emails).window,
            ),
            (
                "purge(Emails).delete",
                sql::purge(crate::Aging::Emails).delete,
            ),
            (
                "purge(Emails).count",
                sql::purge(crate::Aging::Emails).count,
            ),
            (
                "purge(Links).window",
                sql::purge(crate::Aging::Links).window,
            ),
            (
                "purge(Links).delete",
                sql::purge(crate::Aging::Links).delete,
            ),
            ("purge(Links).count", sql::purge(crate::Aging::Links).count),
            (
                "purge(Audit).window",
                sql::purge(crate::Aging::Audit).window,
            ),
            (
                "purge(Audit).delete",
                sql::purge(crate::Aging::Audit).delete,
            ),
            ("purge(Audit).count", sql::purge(crate::Aging::Audit).count),
            ("OUTBOX_INSERT", sql::OUTBOX_INSERT),
            ("SETTLE_SENT", sql::SETTLE_SENT),
            ("SETTLE_RETRY", sql::SETTLE_RETRY),
            ("SETTLE_DEAD", sql::SETTLE_DEAD),
            ("REQUEUE_DEAD", sql::REQUEUE_DEAD),
            ("OUTBOX_STATUS", sql::OUTBOX_STATUS),
            ("OUTBOX_LIST", sql::OUTBOX_LIST),
            ("OUTBOX_FOR", sql::OUTBOX_FOR),
            ("OUTBOX_DEPTH", sql::OUTBOX_DEPTH),
            ("OUTBOX_UNSENT", sql::OUTBOX_UNSENT),
            ("OUTBOX_NEXT_DUE", sql::OUTBOX_NEXT_DUE),
        ];
        let mut stale = Vec::new();
        for (name, text) in statements {
            let mut statement = stmt(&conn, text).unwrap();
            let count = statement.parameter_count() as i64;
            for round in 0..4 {
                // Different values each round; the types don't matter here,
                // nor does a value a constraint refuses.
                let values: Vec<i64> = (0..count).map(|k| 1 + k + round * 100).collect();
                let refused = |e: &rusqlite::Error| {
                    e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
                };
                let mut rows = statement
                    .query(rusqlite::params_from_iter(values.iter()))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                loop {
                    match rows.next() {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(e) if refused(&e) => break,
                        Err(e) => panic!("{name}: {e}"),
                    }
                }
            }
            let again = statement.get_status(rusqlite::StatementStatus::RePrepare);
            if again > 0 {
                stale.push(format!("{name} prepared again {again} times"));
            }
        }
        assert!(stale.is_empty(), "{stale:#?}");
    }
}
