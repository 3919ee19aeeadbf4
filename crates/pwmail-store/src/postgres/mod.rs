//! PostgreSQL, for several pwmail processes sharing one database.
//!
//! The same behaviour as SQLite (one shared test suite checks both); what
//! differs is how concurrency is handled: outbox claims use
//! `FOR UPDATE SKIP LOCKED`, and rate limits and link consumption are single
//! statements whose row locks serialize competing replicas.

mod addressed;
mod functions;
mod group;
mod issue;
mod pool;
mod record;
mod settle;
mod target;

use std::str::FromStr;
use std::sync::{Arc, LazyLock, OnceLock};

use async_trait::async_trait;
use sqlx::Connection as _;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};

use crate::gcra;
use crate::rows::{self, Columns as _};
use crate::sql::{self, POSTGRES};
use crate::*;

pub struct PgStore {
    pool: Arc<pool::Pool>,
    /// Started with the first settle, on the runtime that settles.
    sent: OnceLock<group::Groups<settle::SentSettles>>,
    /// Started with the first issue, on the runtime that issues.
    issues: OnceLock<group::Groups<issue::Issues>>,
    /// Started with the first admin call, on the runtime that serves it.
    targets: OnceLock<group::Groups<target::Targets>>,
    /// Started with the first admin call, on the runtime that serves it.
    by_address: OnceLock<group::Groups<addressed::ByAddress>>,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and brings the schema up to date.
    /// Migrations run under PostgreSQL's advisory lock, so replicas that
    /// start together do not race. A request waits at most `acquire_timeout`
    /// for a connection, so an unreachable database means a quick 503.
    pub async fn open(url: &str, pool: crate::PoolOptions) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = Arc::new(pool::Pool::new(options, pool));
        let mut conn = pool.acquire().await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&mut *conn)
            .await?;
        let applied = functions::apply(&mut conn).await?;
        if !applied.is_empty() {
            tracing::info!(functions = ?applied, "PostgreSQL functions brought up to date");
        }
        conn.release();
        Ok(PgStore {
            pool,
            sent: OnceLock::new(),
            issues: OnceLock::new(),
            targets: OnceLock::new(),
            by_address: OnceLock::new(),
        })
    }

    /// Connections this store has opened so far.
    #[cfg(feature = "testing")]
    pub fn connections_opened(&self) -> u64 {
        self.pool.opened()
    }

    /// Whether the database at `url` holds pwmail's schema, without creating it.
    pub async fn has_schema(url: &str) -> Result<bool> {
        let options = PgConnectOptions::from_str(url)?;
        let mut conn = PgConnection::connect_with(&options).await?;
        let found: bool = sqlx::query_scalar("SELECT to_regclass('users') IS NOT NULL")
            .fetch_one(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok(found)
    }

    // One statement on a pooled connection each; the connection goes back
    // to the pool only when the statement succeeded.

    async fn optional(&self, query: PgQuery<'_>) -> Result<Option<PgRow>> {
        let mut conn = self.pool.acquire().await?;
        let row = query.fetch_optional(&mut *conn).await?;
        conn.release();
        Ok(row)
    }

    async fn one(&self, query: PgQuery<'_>) -> Result<PgRow> {
        let mut conn = self.pool.acquire().await?;
        let row = query.fetch_one(&mut *conn).await?;
        conn.release();
        Ok(row)
    }

    async fn all(&self, query: PgQuery<'_>) -> Result<Vec<PgRow>> {
        let mut conn = self.pool.acquire().await?;
        let rows = query.fetch_all(&mut *conn).await?;
        conn.release();
        Ok(rows)
    }

    /// Rows changed.
    async fn execute(&self, query: PgQuery<'_>) -> Result<u64> {
        let mut conn = self.pool.acquire().await?;
        let done = query.execute(&mut *conn).await?;
        conn.release();
        Ok(done.rows_affected())
    }

    /// Messages per state by `sql` ([`sql::OUTBOX_DEPTH`] or [`sql::OUTBOX_UNSENT`]).
    async fn depth(&self, sql: &'static str) -> Result<Vec<(OutboxState, u64)>> {
        let counts = self
            .all(sqlx::query(sql))
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<Vec<(String, i64)>>>()?;
        Ok(rows::outbox_depth(counts))
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// A sqlx row, read by column name.
impl rows::Columns for PgRow {
    fn int(&self, column: &str) -> Result<i64> {
        Ok(self.try_get(column)?)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        Ok(self.try_get(column)?)
    }
    fn text(&self, column: &str) -> Result<String> {
        Ok(self.try_get(column)?)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        Ok(self.try_get(column)?)
    }
    fn flag(&self, column: &str) -> Result<bool> {
        Ok(self.try_get(column)?)
    }
}

/// One GCRA step in one round trip, committed without waiting for the WAL
/// flush: rate-limit state is not worth an fsync (after a crash the last
/// few calls are forgotten, which only errs towards admitting), and waiting
/// for it while holding the hot per-token row lock made every API call
/// queue behind one fsync at a time. `before` is the state the refusal
/// reads (the statement's snapshot, which the upsert does not change when
/// it refuses). Built once; a statement text lives for the process.
static RATE_LIMIT: LazyLock<&'static str> = LazyLock::new(|| {
    format!(
        "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS setting),
              admit AS ({} RETURNING tat)
         SELECT (SELECT tat FROM admit) AS admitted,
                (SELECT tat FROM rate_limits WHERE key = $1) AS before,
                (SELECT setting FROM relaxed) AS setting",
        sql::gcra_admit(POSTGRES)
    )
    .leak()
});

static CLAIM_OUTBOX: LazyLock<&'static str> = LazyLock::new(|| sql::claim_outbox_locked().leak());

/// What a row of [`RATE_LIMIT`] says.
fn admission(row: &PgRow, tau: i64, now: UnixMillis) -> Result<Admission> {
    let (admitted, before): (Option<i64>, Option<i64>) =
        (row.try_get("admitted")?, row.try_get("before")?);
    Ok(match admitted {
        Some(_) => Admission::Admitted,
        None => gcra::refused(before.unwrap_or(now), tau, now),
    })
}

/// Queues a message (inside the caller's transaction); returns its outbox id.
async fn insert_message(
    conn: &mut PgConnection,
    m: &NewMessage,
    now: UnixMillis,
    request_id: &str,
    user: UserId,
) -> Result<i64> {
    let content = rows::ContentColumns::of(&m.content);
    let row = sqlx::query(sql::OUTBOX_INSERT_RETURNING_ID)
        .bind(&m.message_id)
        .bind(m.kind.as_str())
        .bind(&m.recipient)
        .bind(content.subject)
        .bind(content.body_text)
        .bind(content.body_html)
        .bind(content.link)
        .bind(content.link_name)
        .bind(content.link_expires_at)
        .bind(now)
        .bind(request_id)
        .bind(user.0)
        .bind(content.options)
        .fetch_one(conn)
        .await?;
    row.int("id")
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<()> {
        self.execute(sqlx::query("SELECT 1")).await?;
        Ok(())
    }

    async fn probe_space(&self, now: UnixMillis) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(sql::SPACE_PROBE_INSERT)
            .bind(now)
            .bind(vec![0u8; sql::SPACE_PROBE_BYTES])
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::SPACE_PROBE_DELETE)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        conn.release();
        Ok(())
    }

    async fn create_user(&self, user: &NewUser, now: UnixMillis) -> Result<User> {
        let insert = sqlx::query(sql::USER_INSERT)
            .bind(user.email.trim())
            .bind(email_key(&user.email))
            .bind(&user.name)
            .bind(user.is_admin)
            .bind(now)
            .bind(user.deliverable);
        let row = self.one(insert).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("a user with email {} already exists", user.email))
            }
            other => other,
        })?;
        rows::user(&row)
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let found = self.all(sqlx::query(sql::USERS_ALL)).await?;
        found.iter().map(rows::user).collect()
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        let row = self
            .optional(sqlx::query(sql::USER_BY_ID).bind(id.0))
            .await?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = self
            .optional(sqlx::query(sql::USER_BY_EMAIL_KEY).bind(email_key(email)))
            .await?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn count_admins(&self) -> Result<u64> {
        let n: i64 = self.one(sqlx::query(sql::COUNT_ADMINS)).await?.try_get(0)?;
        Ok(n.max(0) as u64)
    }

    async fn disable_user(&self, email: &str, now: UnixMillis) -> Result<User> {
        // Dropped on an error before its commit, the connection goes and
        // the transaction with it.
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let row = sqlx::query(sql::USER_DISABLE)
            .bind(email_key(email))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no user with email {email}")))?;
        let user = rows::user(&row)?;
        for revoke in [sql::TOKENS_REVOKE_OF_USER, sql::LINKS_REVOKE_OPEN] {
            sqlx::query(revoke)
                .bind(user.id.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        conn.release();
        Ok(user)
    }

    async fn password_hash(&self, user: UserId) -> Result<Option<String>> {
        let row = self
            .optional(sqlx::query(sql::PASSWORD_HASH).bind(user.0))
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.flatten())
    }

    async fn unchecked_addresses(&self) -> Result<Vec<(UserId, String)>> {
        let found = self.all(sqlx::query(sql::USERS_UNCHECKED)).await?;
        found
            .iter()
            .map(|row| Ok((UserId(row.int("id")?), row.text("email")?)))
            .collect()
    }

    async fn set_deliverable(&self, user: UserId, deliverable: bool) -> Result<()> {
        self.execute(
            sqlx::query(sql::USER_SET_DELIVERABLE)
                .bind(user.0)
                .bind(deliverable),
        )
        .await
        .map(drop)
    }

    async fn create_api_token(
        &self,
        user: UserId,
        hash: &TokenHash,
        label: &str,
        now: UnixMillis,
    ) -> Result<ApiTokenInfo> {
        let row = self
            .one(
                sqlx::query(sql::TOKEN_INSERT)
                    .bind(user.0)
                    .bind(&hash.0[..])
                    .bind(label)
                    .bind(now),
            )
            .await?;
        rows::token(&row)
    }

    async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenInfo>> {
        let found = self
            .all(sqlx::query(sql::TOKENS_OF_USER).bind(user.0))
            .await?;
        found.iter().map(rows::token).collect()
    }

    async fn revoke_api_token(&self, id: i64, now: UnixMillis) -> Result<bool> {
        let done = self
            .execute(sqlx::query(sql::TOKEN_REVOKE).bind(id).bind(now))
            .await?;
        Ok(done == 1)
    }

    async fn authenticate(&self, hash: &TokenHash) -> Result<Option<Authenticated>> {
        let row = self
            .optional(sqlx::query(sql::AUTHENTICATE).bind(&hash.0[..]))
            .await?;
        row.as_ref().map(rows::authenticated).transpose()
    }

    async fn rate_limit(&self, key: &RateKey, limit: &Rate, now: UnixMillis) -> Result<Admission> {
        let (period, tau) = gcra::params(limit);
        let step = sqlx::query(*RATE_LIMIT)
            .bind(key.to_string())
            .bind(now)
            .bind(period)
            .bind(tau);
        admission(&self.one(step).await?, tau, now)
    }

    async fn find_addressee(
        &self,
        email: &str,
        caller: &RateKey,
        rate: &Rate,
        now: UnixMillis,
    ) -> Result<Addressee> {
        let targets = self
            .targets
            .get_or_init(|| group::Groups::start(Arc::clone(&self.pool)));
        targets
            .call(target::Target {
                caller: caller.to_string(),
                rate: *rate,
                email_key: email_key(email),
                now,
            })
            .await
    }

    async fn issue_unkeyed_call(&self, call: &IssueCall) -> Result<CallOutcome> {
        let groups = self
            .by_address
            .get_or_init(|| group::Groups::start(Arc::clone(&self.pool)));
        groups.call(addressed::call(call)).await
    }

    async fn purge_rate_limits(&self, now: UnixMillis) -> Result<u64> {
        let done = self.execute(sqlx::query(sql::RATE_PURGE).bind(now)).await?;
        Ok(done)
    }

    async fn find_idempotency(
        &self,
        token_id: i64,
        operation: LinkPurpose,
        key: &str,
        now: UnixMillis,
    ) -> Result<Option<StoredOutcome>> {
        let row = self
            .optional(
                sqlx::query(sql::IDEMPOTENCY_FIND)
                    .bind(token_id)
                    .bind(operation.as_str())
                    .bind(key)
                    .bind(now),
            )
            .await?;
        row.as_ref().map(rows::stored_outcome).transpose()
    }

    async fn purge_idempotency_keys(&self, now: UnixMillis) -> Result<u64> {
        let done = self
            .execute(sqlx::query(sql::IDEMPOTENCY_PURGE).bind(now))
            .await?;
        Ok(done)
    }

    async fn complete_reset(&self, reset: &CompleteReset) -> Result<ResetOutcome> {
        // Dropped on an error before its commit, the connection goes and
        // the transaction with it.
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let consumed: Option<i64> = sqlx::query_scalar(sql::LINK_CONSUME_USER)
            .bind(&reset.link_hash.0[..])
            .bind(reset.now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(user) = consumed.map(UserId) else {
            tx.rollback().await?;
            conn.release();
            return Ok(ResetOutcome::LinkUnusable);
        };
        let updated = sqlx::query(sql::PASSWORD_SET)
            .bind(user.0)
            .bind(&reset.password_phc)
            .bind(reset.now)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() != 1 {
            tx.rollback().await?;
            conn.release();
            return Ok(ResetOutcome::LinkUnusable);
        }
        sqlx::query(sql::LINKS_REVOKE_OPEN)
            .bind(user.0)
            .bind(reset.now)
            .execute(&mut *tx)
            .await?;
        let outbox_id =
            insert_message(&mut tx, &reset.notice, reset.now, &reset.request_id, user).await?;
        sqlx::query(sql::AUDIT_PASSWORD_CHANGED)
            .bind(reset.now)
            .bind(user.0)
            .bind(&reset.request_id)
            .bind(outbox_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        conn.release();
        Ok(ResetOutcome::Changed { user, outbox_id })
    }

    async fn issue_link(&self, issue: &IssueLink) -> Result<IssueOutcome> {
        // The caller's rate first, on its own, committed without an fsync
        // (see RATE_LIMIT): inside the issue transaction its hot row would
        // stay locked through that transaction's fsync.
        if let CallerCharge::Pending(rate) = &issue.caller {
            let caller = RateKey::ApiToken(issue.actor.token_id);
            if let Admission::Refused { retry_after_ms } =
                self.rate_limit(&caller, rate, issue.now).await?
            {
                return Ok(IssueOutcome::Throttled { retry_after_ms });
            }
        }
        // Then one round trip, with the other calls waiting (see `issue`);
        // a call with an Idempotency-Key on its own, the key's lock and row
        // around the same rules (`pwmail_issue_link`, migration 0007).
        let Some(idem) = issue.idempotency.as_ref() else {
            let issues = self
                .issues
                .get_or_init(|| group::Groups::start(Arc::clone(&self.pool)));
            return issues.call(issue.clone()).await;
        };
        let (period, tau) = gcra::params(&issue.cooldown);
        let mut conn = self.pool.acquire().await?;
        let call = record::json(&record::Issue::of(1, issue))?;
        let row = sqlx::query(
            "SELECT outcome, link_id, outbox_id, retry_after_ms, stored_fingerprint,
                    stored_request_id
             FROM pwmail_issue_link(CAST($1 AS JSONB), $2, $3)",
        )
        .bind(call)
        .bind(period)
        .bind(tau)
        .fetch_one(&mut *conn)
        .await;
        let row = match row {
            Ok(row) => {
                conn.release();
                row
            }
            // Raised after the writes if a live row held the key: all rolled back.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("PWM01") => {
                return Ok(IssueOutcome::KeyInFlight);
            }
            Err(e) => return Err(e.into()),
        };
        match issue::Outcome::of(&row)? {
            issue::Outcome::KeyInFlight => Ok(IssueOutcome::KeyInFlight),
            issue::Outcome::Stored => {
                let stored = StoredOutcome {
                    fingerprint: row.try_get("stored_fingerprint")?,
                    outbox_id: row.try_get("outbox_id")?,
                    request_id: row.try_get("stored_request_id")?,
                };
                Ok(stored.outcome_for(idem))
            }
            _ => issue::outcome(&row, issue.target),
        }
    }

    async fn find_link(&self, hash: &TokenHash) -> Result<Option<ResetLink>> {
        let row = self
            .optional(sqlx::query(sql::LINK_BY_HASH).bind(&hash.0[..]))
            .await?;
        row.as_ref().map(rows::link).transpose()
    }

    async fn claim_outbox(&self, claim: &Claim) -> Result<Vec<OutboxMessage>> {
        let found = self
            .all(
                sqlx::query(*CLAIM_OUTBOX)
                    .bind(&claim.owner)
                    .bind(claim.now)
                    .bind(claim.lease_ms)
                    .bind(i64::from(claim.limit)),
            )
            .await?;
        let mut claimed = found
            .iter()
            .map(rows::outbox_message)
            .collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    async fn settle_outbox(&self, id: i64, owner: &str, outcome: &Settlement) -> Result<bool> {
        let query = match outcome {
            Settlement::Sent { reply, at } => {
                let sent = self
                    .sent
                    .get_or_init(|| group::Groups::start(Arc::clone(&self.pool)));
                return sent
                    .call(settle::Sent {
                        id,
                        owner: owner.to_string(),
                        reply: reply.to_string(),
                        at: *at,
                    })
                    .await;
            }
            Settlement::Retry {
                error,
                at,
                next_attempt_at,
            } => sqlx::query(sql::SETTLE_RETRY)
                .bind(id)
                .bind(owner)
                .bind(error)
                .bind(*at)
                .bind(*next_attempt_at),
            Settlement::Dead { error, at } => sqlx::query(sql::SETTLE_DEAD)
                .bind(id)
                .bind(owner)
                .bind(error)
                .bind(*at),
        };
        Ok(self.execute(query).await? == 1)
    }

    async fn fit_rate_state(&self, kind: RateKind, rate: &Rate, now: UnixMillis) -> Result<u64> {
        self.execute(
            sqlx::query(sql::RATE_FIT)
                .bind(kind.prefix())
                .bind(gcra::ceiling(rate, now)),
        )
        .await
    }

    async fn extend_lease(&self, id: i64, owner: &str, until: UnixMillis) -> Result<bool> {
        let done = self
            .execute(
                sqlx::query(sql::LEASE_EXTEND)
                    .bind(id)
                    .bind(owner)
                    .bind(until),
            )
            .await?;
        Ok(done == 1)
    }

    async fn end_leases(&self, _now: UnixMillis) -> Result<u64> {
        Err(StoreError::Unsupported(
            "on PostgreSQL other processes may hold leases; they end on their own".into(),
        ))
    }

    async fn requeue_dead(&self, id: i64, now: UnixMillis) -> Result<bool> {
        let done = self
            .execute(sqlx::query(sql::REQUEUE_DEAD).bind(id).bind(now))
            .await?;
        Ok(done == 1)
    }

    async fn outbox_message(&self, id: i64) -> Result<Option<OutboxStatus>> {
        let row = self
            .optional(sqlx::query(sql::OUTBOX_STATUS).bind(id))
            .await?;
        row.as_ref().map(rows::outbox_status).transpose()
    }

    async fn list_outbox(
        &self,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>> {
        let found = self
            .all(
                sqlx::query(sql::OUTBOX_LIST)
                    .bind(state.map(OutboxState::as_str))
                    .bind(i64::from(limit)),
            )
            .await?;
        found.iter().map(rows::outbox_status).collect()
    }

    async fn outbox_for(
        &self,
        user: Option<UserId>,
        request_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>> {
        let found = self
            .all(
                sqlx::query(sql::OUTBOX_FOR)
                    .bind(user.map(|u| u.0))
                    .bind(request_id)
                    .bind(i64::from(limit)),
            )
            .await?;
        found.iter().map(rows::outbox_status).collect()
    }

    async fn outbox_depth(&self) -> Result<Vec<(OutboxState, u64)>> {
        self.depth(sql::OUTBOX_DEPTH).await
    }

    async fn outbox_unsent_depth(&self) -> Result<Vec<(OutboxState, u64)>> {
        self.depth(sql::OUTBOX_UNSENT).await
    }

    async fn next_outbox_due(&self) -> Result<Option<UnixMillis>> {
        let row = self.one(sqlx::query(sql::OUTBOX_NEXT_DUE)).await?;
        Ok(row.try_get(0)?)
    }
}

#[cfg(feature = "testing")]
impl PgStore {
    /// Runs test statements in order, on one connection, in one transaction.
    async fn run_all(&self, statements: Vec<String>) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        for statement in &statements {
            // Test statements built from this crate's constants only.
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        conn.release();
        Ok(())
    }
}

/// Test-only access; see [`crate::testing`].
#[cfg(feature = "testing")]
#[async_trait]
impl crate::testing::StoreTestExt for PgStore {
    async fn hold_size(&self, hold: bool) -> Result<()> {
        let tables = crate::testing::PG_FULL_TABLES;
        let statements: Vec<String> = if hold {
            std::iter::once(crate::testing::PG_NO_SPACE_FUNCTION.to_string())
                .chain(tables.iter().map(|t| {
                    format!(
                        "CREATE TRIGGER pwmail_test_no_space BEFORE INSERT ON {t} \
                         FOR EACH ROW EXECUTE FUNCTION pwmail_test_no_space()"
                    )
                }))
                .chain(std::iter::once(
                    "CREATE TRIGGER pwmail_test_no_space_state BEFORE UPDATE ON outbox \
                     FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) \
                     EXECUTE FUNCTION pwmail_test_no_space()"
                        .to_string(),
                ))
                .collect()
        } else {
            tables
                .iter()
                .map(|t| format!("DROP TRIGGER IF EXISTS pwmail_test_no_space ON {t}"))
                .chain(std::iter::once(
                    "DROP TRIGGER IF EXISTS pwmail_test_no_space_state ON outbox".to_string(),
                ))
                .collect()
        };
        self.run_all(statements).await
    }

    async fn fail_settles(&self, fail: bool) -> Result<()> {
        let statements = if fail {
            vec![
                crate::testing::PG_NO_SPACE_FUNCTION.to_string(),
                "CREATE TRIGGER pwmail_test_no_settle BEFORE UPDATE ON outbox FOR EACH ROW \
                 WHEN (OLD.state = 'sending' AND NEW.state <> 'sending') \
                 EXECUTE FUNCTION pwmail_test_no_space()"
                    .to_string(),
            ]
        } else {
            vec!["DROP TRIGGER IF EXISTS pwmail_test_no_settle ON outbox".to_string()]
        };
        self.run_all(statements).await
    }

    async fn set_password_hash(&self, user: UserId, phc: &str, now: UnixMillis) -> Result<()> {
        let done = self
            .execute(
                sqlx::query(crate::testing::PASSWORD_SET_ANY)
                    .bind(user.0)
                    .bind(phc)
                    .bind(now),
            )
            .await?;
        if done == 0 {
            return Err(StoreError::NotFound(format!("no user {user}")));
        }
        Ok(())
    }

    async fn audit_entries(&self, target: UserId) -> Result<Vec<AuditEntry>> {
        let found = self
            .all(sqlx::query(sql::AUDIT_OF_USER).bind(target.0))
            .await?;
        found.iter().map(rows::audit).collect()
    }

    async fn forget_address_checks(&self) -> Result<()> {
        self.execute(sqlx::query(crate::testing::FORGET_ADDRESS_CHECKS))
            .await
            .map(drop)
    }

    async fn links(&self) -> Result<Vec<ResetLink>> {
        let found = self.all(sqlx::query(sql::LINKS_ALL)).await?;
        found.iter().map(rows::link).collect()
    }

    async fn clear(&self) -> Result<()> {
        // DELETE, not TRUNCATE: a few rows go faster than new files.
        self.run_all(crate::testing::clear_statements()).await
    }

    async fn outbox_held(&self, id: i64) -> Result<String> {
        let found = self
            .all(sqlx::query(crate::testing::OUTBOX_HELD).bind(id))
            .await?;
        match found.first() {
            Some(row) => row.text("held"),
            None => Err(StoreError::NotFound(format!("no outbox row {id}"))),
        }
    }
}
