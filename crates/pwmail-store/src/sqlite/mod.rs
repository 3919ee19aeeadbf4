//! The embedded default: one SQLite file in WAL mode, written by one thread
//! ([`writer`]) and read through read-only connections ([`conn::Readers`]).

mod checkpoint;
mod conn;
mod writer;

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

/// The issue transaction, statement by statement (PostgreSQL runs the same
/// statements in one call of `pwmail_issue_link`). Refusals come before
/// any write but the caller's rate charge.
/// The calling API token's step of its rate.
fn charge_caller(c: &Connection, token_id: i64, rate: &Rate, now: UnixMillis) -> Result<Admission> {
    gcra(c, &RateKey::ApiToken(token_id).to_string(), rate, now)
}

/// An admin call by address, whole, on the writer: the user is read in the
/// write's own transaction, for less than a read connection's lookup
/// costs (its lock, its read transaction, its statement).
fn address_in(sp: &Savepoint<'_>, call: &IssueCall) -> Result<CallOutcome> {
    let c: &Connection = sp;
    let key = email_key(&call.email);
    let user = one(c, sql::USER_BY_EMAIL_KEY, [key], |row| rows::user(row))?;
    let link = &call.link;
    let stopped = |admitted| {
        Ok(
            match charge_caller(c, link.actor.token_id, &call.caller_rate, link.now)? {
                Admission::Admitted => admitted,
                Admission::Refused { retry_after_ms } => CallOutcome::Throttled { retry_after_ms },
            },
        )
    };
    match user {
        // Charged in the issue, after the idempotency check.
        Some(user) if user.deliverable => Ok(CallOutcome::Issued {
            outcome: issue_in(
                sp,
                &link.issue_for(&user, CallerCharge::Pending(call.caller_rate)),
            )?,
            user: user.id,
        }),
        Some(user) => stopped(CallOutcome::Undeliverable { user: user.id }),
        None => stopped(CallOutcome::NoSuchUser),
    }
}

fn issue_in(sp: &Savepoint<'_>, issue: &IssueLink) -> Result<IssueOutcome> {
    let c: &Connection = sp;
    if let Some(idem) = &issue.idempotency {
        // One writer runs one write at a time: an earlier call with this key
        // has committed, or has not started.
        let stored = find_key(c, issue.actor.token_id, issue.purpose, &idem.key, issue.now)?;
        if let Some(stored) = stored {
            return Ok(stored.outcome_for(idem));
        }
    }
    // In the call's transaction: SQLite's one writer serialises the
    // token's calls anyway, and one round trip to the writer is half the
    // wait for group commits of two.
    if let CallerCharge::Pending(rate) = &issue.caller
        && let Admission::Refused { retry_after_ms } =
            charge_caller(c, issue.actor.token_id, rate, issue.now)?
    {
        return Ok(IssueOutcome::Throttled { retry_after_ms });
    }
    let disabled: Option<Option<i64>> = scalar(c, sql::USER_DISABLED_AT, params![issue.target.0])?;
    match disabled {
        None => return Err(StoreError::NotFound(format!("no user {}", issue.target))),
        Some(Some(_)) => return Ok(IssueOutcome::Disabled),
        Some(None) => {}
    }
    let key = RateKey::User(issue.target).to_string();
    if let Admission::Refused { retry_after_ms } = gcra(c, &key, &issue.cooldown, issue.now)? {
        return Ok(IssueOutcome::CoolingDown { retry_after_ms });
    }
    revoke_open_links(c, issue.target, issue.now)?;
    exec(
        c,
        sql::LINK_INSERT,
        params![
            issue.target.0,
            &issue.link_hash.0[..],
            issue.purpose.as_str(),
            issue.now,
            issue.expires_at,
            issue.request_id,
            rows::ContentColumns::of(&issue.message.content).options
        ],
    )?;
    let link_id = c.last_insert_rowid();
    if issue.purpose.invalidates_password() {
        exec(
            c,
            sql::PASSWORD_INVALIDATE,
            params![issue.target.0, issue.now],
        )?;
    }
    let outbox_id = insert_message(
        c,
        &issue.message,
        issue.now,
        &issue.request_id,
        issue.target,
    )?;
    if let Some(idem) = &issue.idempotency {
        let stored = exec(
            c,
            sql::IDEMPOTENCY_STORE,
            params![
                issue.actor.token_id,
                issue.purpose.as_str(),
                idem.key,
                idem.fingerprint,
                outbox_id,
                issue.request_id,
                issue.now,
                idem.expires_at
            ],
        )?;
        if stored != 1 {
            sp.undo()?;
            return Ok(IssueOutcome::KeyInFlight);
        }
    }
    exec(
        c,
        sql::AUDIT_ISSUE,
        params![
            issue.now,
            issue.actor.user.0,
            issue.actor.token_id,
            issue.target.0,
            issue.purpose.as_str(),
            issue.request_id,
            outbox_id,
            issue.idempotency.as_ref().map(|i| i.key.as_str())
        ],
    )?;
    Ok(IssueOutcome::Issued { link_id, outbox_id })
}

/// The reset page's transaction.
fn complete_reset_in(sp: &Savepoint<'_>, reset: &CompleteReset) -> Result<ResetOutcome> {
    let c: &Connection = sp;
    let consumed: Option<i64> = scalar(
        c,
        sql::LINK_CONSUME_USER,
        params![&reset.link_hash.0[..], reset.now],
    )?;
    let Some(user) = consumed.map(UserId) else {
        return Ok(ResetOutcome::LinkUnusable);
    };
    let updated = exec(
        c,
        sql::PASSWORD_SET,
        params![user.0, reset.password_phc, reset.now],
    )?;
    if updated != 1 {
        // The owner was disabled: the link stays as it was.
        sp.undo()?;
        return Ok(ResetOutcome::LinkUnusable);
    }
    revoke_open_links(c, user, reset.now)?;
    let outbox_id = insert_message(c, &reset.notice, reset.now, &reset.request_id, user)?;
    exec(
        c,
        sql::AUDIT_PASSWORD_CHANGED,
        params![reset.now, user.0, reset.request_id, outbox_id],
    )?;
    Ok(ResetOutcome::Changed { user, outbox_id })
}

/// The claim policy of `sql.rs`, step by step (see `sql::CLAIM_ONE`).
fn claim_in(c: &Connection, claim: &Claim) -> Result<Vec<OutboxMessage>> {
    let scan = params![claim.owner, claim.now, claim.lease_ms, claim.limit];
    let due_row = |row: &conn::Row<'_, '_>| Ok((row.int("due")?, row.int("id")?));
    let mut picked = all(c, sql::CLAIM_DUE, scan, due_row)?;
    picked.extend(all(c, sql::CLAIM_EXPIRED, scan, due_row)?);
    picked.sort_unstable();
    picked.truncate(claim.limit as usize);
    let mut claimed = Vec::with_capacity(picked.len());
    for (_, id) in picked {
        let lease = params![claim.owner, claim.now, claim.lease_ms, id];
        if exec(c, sql::CLAIM_ONE, lease)? == 1 {
            claimed.extend(one(c, sql::CLAIMED, params![id], |row| {
                rows::outbox_message(row)
            })?);
        }
    }
    claimed.sort_by_key(|m| m.id);
    Ok(claimed)
}

fn disable_in(c: &Connection, email: &str, now: UnixMillis) -> Result<User> {
    let user = one(
        c,
        sql::USER_DISABLE,
        params![email_key(email), now],
        |row| rows::user(row),
    )?
    .ok_or_else(|| StoreError::NotFound(format!("no user with email {email}")))?;
    exec(c, sql::TOKENS_REVOKE_OF_USER, params![user.id.0, now])?;
    revoke_open_links(c, user.id, now)?;
    Ok(user)
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

    async fn create_user(&self, user: &NewUser, now: UnixMillis) -> Result<User> {
        let user = user.clone();
        self.writer
            .write_statement(move |c| {
                let row = one(
                    c,
                    sql::USER_INSERT,
                    params![
                        user.email.trim(),
                        email_key(&user.email),
                        user.name,
                        user.is_admin,
                        now,
                        user.deliverable
                    ],
                    |row| rows::user(row),
                );
                match row {
                    Ok(row) => row.ok_or_else(|| StoreError::Corrupt("no user row".into())),
                    Err(StoreError::Conflict(_)) => Err(StoreError::Conflict(format!(
                        "a user with email {} already exists",
                        user.email
                    ))),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.scan(|c| all(c, sql::USERS_ALL, [], |row| rows::user(row)))
            .await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        self.read(|c| one(c, sql::USER_BY_ID, [id.0], |row| rows::user(row)))
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        let key = email_key(email);
        self.read(|c| one(c, sql::USER_BY_EMAIL_KEY, [key], |row| rows::user(row)))
    }

    async fn count_admins(&self) -> Result<u64> {
        let n: Option<i64> = self.scan(|c| scalar(c, sql::COUNT_ADMINS, [])).await?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    async fn disable_user(&self, email: &str, now: UnixMillis) -> Result<User> {
        let email = email.to_string();
        self.writer
            .write(move |sp| disable_in(sp, &email, now))
            .await
    }

    async fn password_hash(&self, user: UserId) -> Result<Option<String>> {
        let hash: Option<Option<String>> =
            self.read(|c| scalar(c, sql::PASSWORD_HASH, [user.0]))?;
        Ok(hash.flatten())
    }

    async fn unchecked_addresses(&self) -> Result<Vec<(UserId, String)>> {
        self.read(|c| {
            all(c, sql::USERS_UNCHECKED, [], |row| {
                Ok((UserId(row.int("id")?), row.text("email")?))
            })
        })
    }

    async fn set_deliverable(&self, user: UserId, deliverable: bool) -> Result<()> {
        self.writer
            .write_statement(move |c| {
                exec(c, sql::USER_SET_DELIVERABLE, params![user.0, deliverable]).map(drop)
            })
            .await
    }

    async fn create_api_token(
        &self,
        user: UserId,
        hash: &TokenHash,
        label: &str,
        now: UnixMillis,
    ) -> Result<ApiTokenInfo> {
        let (hash, label) = (hash.0, label.to_string());
        self.writer
            .write_statement(move |c| {
                one(
                    c,
                    sql::TOKEN_INSERT,
                    params![user.0, &hash[..], label, now],
                    |row| rows::token(row),
                )?
                .ok_or_else(|| StoreError::Corrupt("no token row".into()))
            })
            .await
    }

    async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenInfo>> {
        self.read(|c| all(c, sql::TOKENS_OF_USER, [user.0], |row| rows::token(row)))
    }

    async fn revoke_api_token(&self, id: i64, now: UnixMillis) -> Result<bool> {
        self.writer
            .write_statement(move |c| Ok(exec(c, sql::TOKEN_REVOKE, params![id, now])? == 1))
            .await
    }

    async fn authenticate(&self, hash: &TokenHash) -> Result<Option<Authenticated>> {
        self.read(|c| {
            one(c, sql::AUTHENTICATE, [&hash.0[..]], |row| {
                rows::authenticated(row)
            })
        })
    }

    async fn rate_limit(&self, key: &RateKey, limit: &Rate, now: UnixMillis) -> Result<Admission> {
        let (key, limit) = (key.to_string(), *limit);
        // One upsert (and, when refused, a read): no savepoint needed.
        self.writer
            .write_statement(move |c| gcra(c, &key, &limit, now))
            .await
    }

    async fn purge_rate_limits(&self, now: UnixMillis) -> Result<u64> {
        self.writer
            .write_statement(move |c| Ok(exec(c, sql::RATE_PURGE, [now])? as u64))
            .await
    }

    async fn find_idempotency(
        &self,
        token_id: i64,
        operation: LinkPurpose,
        key: &str,
        now: UnixMillis,
    ) -> Result<Option<StoredOutcome>> {
        self.read(|c| find_key(c, token_id, operation, key, now))
    }

    async fn purge_idempotency_keys(&self, now: UnixMillis) -> Result<u64> {
        self.writer
            .write_statement(move |c| Ok(exec(c, sql::IDEMPOTENCY_PURGE, [now])? as u64))
            .await
    }

    async fn complete_reset(&self, reset: &CompleteReset) -> Result<ResetOutcome> {
        let reset = reset.clone();
        self.writer
            .write(move |sp| complete_reset_in(sp, &reset))
            .await
    }

    async fn issue_unkeyed_call(&self, call: &IssueCall) -> Result<CallOutcome> {
        let call = call.clone();
        self.writer.write(move |sp| address_in(sp, &call)).await
    }

    async fn issue_link(&self, issue: &IssueLink) -> Result<IssueOutcome> {
        let issue = issue.clone();
        self.writer.write(move |sp| issue_in(sp, &issue)).await
    }

    async fn find_link(&self, hash: &TokenHash) -> Result<Option<ResetLink>> {
        self.read(|c| one(c, sql::LINK_BY_HASH, [&hash.0[..]], |row| rows::link(row)))
    }

    async fn claim_outbox(&self, claim: &Claim) -> Result<Vec<OutboxMessage>> {
        let claim = claim.clone();
        self.writer.write(move |sp| claim_in(sp, &claim)).await
    }

    async fn settle_outbox(&self, id: i64, owner: &str, outcome: &Settlement) -> Result<bool> {
        let (owner, outcome) = (owner.to_string(), outcome.clone());
        // One UPDATE (its trigger's writes undo with it): no savepoint needed.
        self.writer
            .write_statement(move |c| {
                let done = match &outcome {
                    Settlement::Sent { reply, at } => {
                        exec(c, sql::SETTLE_SENT, params![id, owner, reply, at])?
                    }
                    Settlement::Retry {
                        error,
                        at,
                        next_attempt_at,
                    } => exec(
                        c,
                        sql::SETTLE_RETRY,
                        params![id, owner, error, at, next_attempt_at],
                    )?,
                    Settlement::Dead { error, at } => {
                        exec(c, sql::SETTLE_DEAD, params![id, owner, error, at])?
                    }
                };
                Ok(done == 1)
            })
            .await
    }

    async fn fit_rate_state(&self, kind: RateKind, rate: &Rate, now: UnixMillis) -> Result<u64> {
        let ceiling = gcra::ceiling(rate, now);
        let done = self
            .writer
            .write_statement(move |c| exec(c, sql::RATE_FIT, params![kind.prefix(), ceiling]))
            .await?;
        Ok(done as u64)
    }

    async fn extend_lease(&self, id: i64, owner: &str, until: UnixMillis) -> Result<bool> {
        let owner = owner.to_string();
        let done = self
            .writer
            .write_statement(move |c| exec(c, sql::LEASE_EXTEND, params![id, owner, until]))
            .await?;
        Ok(done == 1)
    }

    async fn end_leases(&self, now: UnixMillis) -> Result<u64> {
        let done = self
            .writer
            .write_statement(move |c| exec(c, sql::LEASES_END, params![now]))
            .await?;
        Ok(done as u64)
    }

    async fn requeue_dead(&self, id: i64, now: UnixMillis) -> Result<bool> {
        self.writer
            .write_statement(move |c| Ok(exec(c, sql::REQUEUE_DEAD, params![id, now])? == 1))
            .await
    }

    async fn outbox_message(&self, id: i64) -> Result<Option<OutboxStatus>> {
        self.read(|c| one(c, sql::OUTBOX_STATUS, [id], |row| rows::outbox_status(row)))
    }

    async fn list_outbox(
        &self,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>> {
        self.scan(move |c| {
            all(
                c,
                sql::OUTBOX_LIST,
                params![state.map(OutboxState::as_str), limit],
                |row| rows::outbox_status(row),
            )
        })
        .await
    }

    async fn outbox_for(
        &self,
        user: Option<UserId>,
        request_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>> {
        // By index (user or request id), bounded: on the calling task.
        self.read(|c| {
            all(
                c,
                sql::OUTBOX_FOR,
                params![user.map(|u| u.0), request_id, limit],
                |row| rows::outbox_status(row),
            )
        })
    }

    async fn outbox_depth(&self) -> Result<Vec<(OutboxState, u64)>> {
        self.depth(sql::OUTBOX_DEPTH).await
    }

    async fn outbox_unsent_depth(&self) -> Result<Vec<(OutboxState, u64)>> {
        self.depth(sql::OUTBOX_UNSENT).await
    }

    async fn next_outbox_due(&self) -> Result<Option<UnixMillis>> {
        let due: Option<Option<i64>> = self.read(|c| scalar(c, sql::OUTBOX_NEXT_DUE, []))?;
        Ok(due.flatten())
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

    async fn audit_entries(&self, target: UserId) -> Result<Vec<AuditEntry>> {
        self.read(|c| all(c, sql::AUDIT_OF_USER, [target.0], |row| rows::audit(row)))
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
