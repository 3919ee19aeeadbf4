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
// Each aggregate's implementation on this engine, kept beside its trait.
#[path = "../audit/postgres.rs"]
mod audit_impl;
#[path = "../events/postgres.rs"]
mod events_impl;
#[path = "../idempotency/postgres.rs"]
mod idempotency_impl;
#[path = "../limits/postgres.rs"]
mod limits_impl;
#[path = "../links/postgres.rs"]
mod links_impl;
#[path = "../outbox/postgres.rs"]
mod outbox_impl;
#[path = "../retention/postgres.rs"]
mod retention_impl;
#[path = "../users/postgres.rs"]
mod users_impl;

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

/// Where `options` lead, for errors: host, port and database (never the
/// password).
fn place(options: &PgConnectOptions) -> String {
    format!(
        "PostgreSQL at {}:{} (database {})",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres")
    )
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and brings the schema up to date.
    /// Migrations run under PostgreSQL's advisory lock, so replicas that
    /// start together do not race. A request waits at most `acquire_timeout`
    /// for a connection, so an unreachable database means a quick 503.
    pub async fn open(url: &str, pool: crate::PoolOptions) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let place = place(&options);
        let pool = Arc::new(pool::Pool::new(options, pool));
        let mut conn = pool.acquire().await.map_err(|e| e.at(&place))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&mut *conn)
            .await?;
        let applied = functions::apply(&mut conn).await?;
        if !applied.is_empty() {
            tracing::info!(
                functions = %applied.join(", "),
                "PostgreSQL functions brought up to date"
            );
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
        let place = place(&options);
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|e| StoreError::from(e).at(&place))?;
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
