//! PostgreSQL, for several pwmail processes sharing one database.
//!
//! The same behaviour as SQLite (one shared test suite checks both); what
//! differs is how concurrency is handled: outbox claims use
//! `FOR UPDATE SKIP LOCKED`, and rate limits and link consumption are single
//! statements whose row locks serialize competing replicas.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use crate::gcra;
use crate::sql::{self, stored_outcome_from_row};
use crate::*;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and brings the schema up to date.
    /// Migrations run under PostgreSQL's advisory lock, so replicas that
    /// start together do not race. A request waits at most `acquire_timeout`
    /// for a connection, so an unreachable database means a quick 503.
    pub async fn open(url: &str, pool: crate::PoolOptions) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(pool.max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(pool.acquire_timeout)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// Whether the database at `url` holds pwmail's schema, without creating it.
    pub async fn has_schema(url: &str) -> Result<bool> {
        use sqlx::Connection as _;
        let options = PgConnectOptions::from_str(url)?;
        let mut conn = sqlx::PgConnection::connect_with(&options).await?;
        let found: bool = sqlx::query_scalar("SELECT to_regclass('users') IS NOT NULL")
            .fetch_one(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok(found)
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

fn user_from_row(row: &PgRow) -> Result<User> {
    Ok(User {
        id: UserId(row.try_get("id")?),
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        is_admin: row.try_get("is_admin")?,
        disabled: row.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
        has_password: row.try_get::<Option<String>, _>("password_hash")?.is_some(),
        created_at: row.try_get("created_at")?,
    })
}

fn token_from_row(row: &PgRow) -> Result<ApiTokenInfo> {
    Ok(ApiTokenInfo {
        id: row.try_get("id")?,
        user_id: UserId(row.try_get("user_id")?),
        label: row.try_get("label")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn status_from_row(row: &PgRow) -> Result<OutboxStatus> {
    let state: String = row.try_get("state")?;
    Ok(OutboxStatus {
        id: row.try_get("id")?,
        message_id: row.try_get("message_id")?,
        kind: MessageKind::from_column(row.try_get("kind")?)?,
        recipient: row.try_get("recipient")?,
        state: OutboxState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox state {state:?}")))?,
        attempts: row.try_get::<i32, _>("attempts")?.max(0) as u32,
        last_error: row.try_get("last_error")?,
        last_reply: row.try_get("last_reply")?,
        created_at: row.try_get("created_at")?,
        queued_at: row.try_get("queued_at")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        sent_at: row.try_get("sent_at")?,
        request_id: row.try_get("request_id")?,
    })
}

const STATUS_COLUMNS: &str = "id, message_id, kind, recipient, state, attempts, last_error, \
     last_reply, created_at, queued_at, next_attempt_at, sent_at, request_id";

/// Queues a message inside `tx`; returns its outbox id.
async fn insert_message(
    tx: &mut Transaction<'static, Postgres>,
    m: &NewMessage,
    now: UnixMillis,
    request_id: &str,
    user: UserId,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO outbox (message_id, kind, recipient, subject, body_text, body_html, state,
                             next_attempt_at, created_at, queued_at, request_id, user_id)
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7, $7, $8, $9) RETURNING id",
    )
    .bind(&m.message_id)
    .bind(m.kind.as_str())
    .bind(&m.recipient)
    .bind(&m.subject)
    .bind(&m.body_text)
    .bind(&m.body_html)
    .bind(now)
    .bind(request_id)
    .bind(user.0)
    .fetch_one(&mut **tx)
    .await?)
}

/// One GCRA step inside `tx`. `tat` is the theoretical arrival time; a call is
/// admitted when `max(tat, now) - now <= tau`, with `tau = period * (burst - 1)`.
async fn gcra(
    tx: &mut Transaction<'static, Postgres>,
    key: &str,
    rate: &Rate,
    now: UnixMillis,
) -> Result<Admission> {
    // Built once; a statement text lives for the process.
    static ADMIT: std::sync::LazyLock<&str> =
        std::sync::LazyLock::new(|| sql::gcra_admit(sql::POSTGRES).leak());
    let (period, tau) = gcra::params(rate);
    let admitted: Option<i64> = sqlx::query_scalar(*ADMIT)
        .bind(key)
        .bind(now)
        .bind(period)
        .bind(tau)
        .fetch_optional(&mut **tx)
        .await?;
    if admitted.is_some() {
        return Ok(Admission::Admitted);
    }
    let tat: i64 = sqlx::query_scalar(sql::GCRA_TAT)
        .bind(key)
        .fetch_one(&mut **tx)
        .await?;
    Ok(gcra::refused(tat, tau, now))
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user(&self, user: &NewUser, now: UnixMillis) -> Result<User> {
        let row = sqlx::query(
            "INSERT INTO users (email, email_key, name, is_admin, created_at)
             VALUES ($1, $2, $3, $4, $5)
             RETURNING id, email, name, is_admin, disabled_at, password_hash, created_at",
        )
        .bind(user.email.trim())
        .bind(email_key(&user.email))
        .bind(&user.name)
        .bind(user.is_admin)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("a user with email {} already exists", user.email))
            }
            other => other,
        })?;
        user_from_row(&row)
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(
            "SELECT id, email, name, is_admin, disabled_at, password_hash, created_at
             FROM users ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT id, email, name, is_admin, disabled_at, password_hash, created_at
             FROM users WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT id, email, name, is_admin, disabled_at, password_hash, created_at
             FROM users WHERE email_key = $1",
        )
        .bind(email_key(email))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn count_admins(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE is_admin")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn disable_user(&self, email: &str, now: UnixMillis) -> Result<User> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE users SET disabled_at = COALESCE(disabled_at, $2) WHERE email_key = $1
             RETURNING id, email, name, is_admin, disabled_at, password_hash, created_at",
        )
        .bind(email_key(email))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no user with email {email}")))?;
        let user = user_from_row(&row)?;
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user.id.0)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE reset_links SET revoked_at = $2
             WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(user.id.0)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn password_hash(&self, user: UserId) -> Result<Option<String>> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(hash.flatten())
    }

    async fn create_api_token(
        &self,
        user: UserId,
        hash: &TokenHash,
        label: &str,
        now: UnixMillis,
    ) -> Result<ApiTokenInfo> {
        let row = sqlx::query(
            "INSERT INTO api_tokens (user_id, token_hash, label, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id, user_id, label, created_at, revoked_at",
        )
        .bind(user.0)
        .bind(&hash.0[..])
        .bind(label)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        token_from_row(&row)
    }

    async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenInfo>> {
        let rows = sqlx::query(
            "SELECT id, user_id, label, created_at, revoked_at FROM api_tokens
             WHERE user_id = $1 ORDER BY id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_api_token(&self, id: i64, now: UnixMillis) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn authenticate(&self, hash: &TokenHash) -> Result<Option<Authenticated>> {
        let row = sqlx::query(
            "SELECT t.id AS token_id, u.id, u.email, u.name, u.is_admin, u.disabled_at,
                    u.password_hash, u.created_at
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
        )
        .bind(&hash.0[..])
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Authenticated {
                token_id: row.try_get("token_id")?,
                user: user_from_row(&row)?,
            })
        })
        .transpose()
    }

    async fn rate_limit(&self, key: &RateKey, limit: &Rate, now: UnixMillis) -> Result<Admission> {
        let key = key.to_string();
        let mut tx = self.begin_write().await?;
        // Rate-limit state is not worth an fsync: after a crash the last few
        // calls are forgotten, which only errs towards admitting. Waiting for
        // the WAL flush while holding the (hot, per-token) row lock made
        // every API call queue behind one fsync at a time.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        let admission = gcra(&mut tx, &key, limit, now).await?;
        tx.commit().await?;
        Ok(admission)
    }

    async fn purge_rate_limits(&self, now: UnixMillis) -> Result<u64> {
        let done = sqlx::query("DELETE FROM rate_limits WHERE tat <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn find_idempotency(
        &self,
        token_id: i64,
        operation: LinkPurpose,
        key: &str,
        now: UnixMillis,
    ) -> Result<Option<StoredOutcome>> {
        let row = sqlx::query(sql::IDEMPOTENCY_FIND)
            .bind(token_id)
            .bind(operation.as_str())
            .bind(key)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| stored_outcome_from_row(&row)).transpose()
    }

    async fn purge_idempotency_keys(&self, now: UnixMillis) -> Result<u64> {
        let done = sqlx::query(sql::IDEMPOTENCY_PURGE)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn complete_reset(&self, reset: &CompleteReset) -> Result<ResetOutcome> {
        let mut tx = self.begin_write().await?;
        let consumed = sqlx::query(
            "UPDATE reset_links SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2
             RETURNING id, user_id",
        )
        .bind(&reset.link_hash.0[..])
        .bind(reset.now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = consumed else {
            return Ok(ResetOutcome::LinkUnusable);
        };
        let user = UserId(row.try_get("user_id")?);
        let updated = sqlx::query(
            "UPDATE users SET password_hash = $2, password_changed_at = $3,
                              password_invalidated_at = NULL
             WHERE id = $1 AND disabled_at IS NULL",
        )
        .bind(user.0)
        .bind(&reset.password_phc)
        .bind(reset.now)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(ResetOutcome::LinkUnusable);
        }
        sqlx::query(
            "UPDATE reset_links SET revoked_at = $2
             WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(user.0)
        .bind(reset.now)
        .execute(&mut *tx)
        .await?;
        let outbox_id =
            insert_message(&mut tx, &reset.notice, reset.now, &reset.request_id, user).await?;
        sqlx::query(
            "INSERT INTO audit_log (at, target_user_id, operation, request_id, outbox_id)
             VALUES ($1, $2, 'password_changed', $3, $4)",
        )
        .bind(reset.now)
        .bind(user.0)
        .bind(&reset.request_id)
        .bind(outbox_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ResetOutcome::Changed { user, outbox_id })
    }

    async fn issue_link(&self, issue: &IssueLink) -> Result<IssueOutcome> {
        // One round trip: the transaction is the function
        // `pwmail_issue_link` (migrations/postgres/0004_issue_link_function.sql).
        let (period, tau) = gcra::params(&issue.cooldown);
        let idem = issue.idempotency.as_ref();
        let m = &issue.message;
        let row = sqlx::query(
            "SELECT outcome, link_id, outbox_id, retry_after_ms, stored_fingerprint,
                    stored_request_id
             FROM pwmail_issue_link($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                    $14, $15, $16, $17, $18, $19, $20, $21)",
        )
        .bind(issue.actor.user.0)
        .bind(issue.actor.token_id)
        .bind(issue.target.0)
        .bind(issue.purpose.as_str())
        .bind(issue.purpose.invalidates_password())
        .bind(&issue.link_hash.0[..])
        .bind(issue.expires_at)
        .bind(RateKey::User(issue.target).to_string())
        .bind(period)
        .bind(tau)
        .bind(&m.message_id)
        .bind(m.kind.as_str())
        .bind(&m.recipient)
        .bind(&m.subject)
        .bind(&m.body_text)
        .bind(&m.body_html)
        .bind(&issue.request_id)
        .bind(issue.now)
        .bind(idem.map(|i| i.key.as_str()))
        .bind(idem.map(|i| i.fingerprint.as_str()))
        .bind(idem.map(|i| i.expires_at))
        .fetch_one(&self.pool)
        .await;
        let row = match row {
            Ok(row) => row,
            // Raised after the writes if a live row held the key: all rolled back.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("PWM01") => {
                return Ok(IssueOutcome::KeyInFlight);
            }
            Err(e) => return Err(e.into()),
        };
        let outcome: String = row.try_get("outcome")?;
        Ok(match outcome.as_str() {
            "issued" => IssueOutcome::Issued {
                link_id: row.try_get("link_id")?,
                outbox_id: row.try_get("outbox_id")?,
            },
            "cooling_down" => IssueOutcome::CoolingDown {
                retry_after_ms: row.try_get("retry_after_ms")?,
            },
            "disabled" => IssueOutcome::Disabled,
            "key_in_flight" => IssueOutcome::KeyInFlight,
            "stored" => {
                let stored = StoredOutcome {
                    fingerprint: row.try_get("stored_fingerprint")?,
                    outbox_id: row.try_get("outbox_id")?,
                    request_id: row.try_get("stored_request_id")?,
                };
                match idem {
                    Some(key) => stored.outcome_for(key),
                    None => {
                        return Err(StoreError::Corrupt("a stored outcome without a key".into()));
                    }
                }
            }
            "no_user" => return Err(StoreError::NotFound(format!("no user {}", issue.target))),
            other => {
                return Err(StoreError::Corrupt(format!(
                    "pwmail_issue_link answered {other:?}"
                )));
            }
        })
    }

    async fn find_link(&self, hash: &TokenHash) -> Result<Option<ResetLink>> {
        let row = sqlx::query(
            "SELECT id, user_id, purpose, created_at, expires_at, used_at, revoked_at
             FROM reset_links WHERE token_hash = $1",
        )
        .bind(&hash.0[..])
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let purpose: String = row.try_get("purpose")?;
        let used: Option<i64> = row.try_get("used_at")?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        Ok(Some(ResetLink {
            id: row.try_get("id")?,
            user_id: UserId(row.try_get("user_id")?),
            purpose: LinkPurpose::parse(&purpose)
                .ok_or_else(|| StoreError::Corrupt(format!("link purpose {purpose:?}")))?,
            state: match (used, revoked) {
                (Some(_), _) => LinkState::Used,
                (None, Some(_)) => LinkState::Revoked,
                (None, None) => LinkState::Open,
            },
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    async fn claim_outbox(&self, claim: &Claim) -> Result<Vec<OutboxMessage>> {
        // Built once; a statement text lives for the process.
        static CLAIM: std::sync::LazyLock<&str> =
            std::sync::LazyLock::new(|| sql::claim_outbox(sql::POSTGRES).leak());
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(*CLAIM)
            .bind(&claim.owner)
            .bind(claim.now)
            .bind(claim.lease_ms)
            .bind(i64::from(claim.limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut claimed = rows
            .iter()
            .map(sql::outbox_message_from_row)
            .collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    async fn settle_outbox(&self, id: i64, owner: &str, outcome: &Settlement) -> Result<bool> {
        let query = match outcome {
            Settlement::Sent { reply, at } => sqlx::query(
                "UPDATE outbox SET state = 'sent', last_reply = $3, sent_at = $4, settled_at = $4,
                        lease_owner = NULL, lease_until = NULL, next_attempt_at = NULL,
                        body_text = NULL, body_html = NULL
                 WHERE id = $1 AND state = 'sending' AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(reply)
            .bind(*at),
            Settlement::Retry {
                error,
                at,
                next_attempt_at,
            } => sqlx::query(
                "UPDATE outbox SET state = 'retrying', last_error = $3, next_attempt_at = $5,
                        lease_owner = NULL, lease_until = NULL, settled_at = $4
                 WHERE id = $1 AND state = 'sending' AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(error)
            .bind(*at)
            .bind(*next_attempt_at),
            Settlement::Dead { error, at } => sqlx::query(
                "UPDATE outbox SET state = 'dead', last_error = $3, settled_at = $4,
                        lease_owner = NULL, lease_until = NULL, next_attempt_at = NULL
                 WHERE id = $1 AND state = 'sending' AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(error)
            .bind(*at),
        };
        let done = query.execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn requeue_dead(&self, id: i64, now: UnixMillis) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = $2, queued_at = $2,
                    settled_at = NULL
             WHERE id = $1 AND state = 'dead'",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn outbox_message(&self, id: i64) -> Result<Option<OutboxStatus>> {
        let sql = format!("SELECT {STATUS_COLUMNS} FROM outbox WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(status_from_row).transpose()
    }

    async fn list_outbox(
        &self,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>> {
        let sql = format!(
            "SELECT {STATUS_COLUMNS} FROM outbox WHERE ($1::text IS NULL OR state = $1)
             ORDER BY id DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.map(OutboxState::as_str))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(status_from_row).collect()
    }

    async fn outbox_for(
        &self,
        user: Option<UserId>,
        request_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>> {
        let sql = format!(
            "SELECT {STATUS_COLUMNS} FROM outbox
             WHERE ($1::bigint IS NULL OR user_id = $1) AND ($2::text IS NULL OR request_id = $2)
             ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user.map(|u| u.0))
            .bind(request_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(status_from_row).collect()
    }

    async fn outbox_depth(&self) -> Result<Vec<(OutboxState, u64)>> {
        let rows = sqlx::query("SELECT state, count(*) AS n FROM outbox GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut depth: Vec<(OutboxState, u64)> = OutboxState::ALL.iter().map(|s| (*s, 0)).collect();
        for row in &rows {
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            if let Some(slot) = depth.iter_mut().find(|(s, _)| s.as_str() == state) {
                slot.1 = n as u64;
            }
        }
        Ok(depth)
    }

    async fn next_outbox_due(&self) -> Result<Option<UnixMillis>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT min(t) FROM (
                 SELECT min(next_attempt_at) AS t FROM outbox WHERE state IN ('queued', 'retrying')
                 UNION ALL
                 SELECT min(lease_until) AS t FROM outbox WHERE state = 'sending') AS due",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(due)
    }
}

/// Test-only access; see [`crate::testing`].
#[cfg(feature = "testing")]
#[async_trait]
impl crate::testing::StoreTestExt for PgStore {
    async fn set_password_hash(&self, user: UserId, phc: &str, now: UnixMillis) -> Result<()> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $2, password_changed_at = $3,
                              password_invalidated_at = NULL
             WHERE id = $1",
        )
        .bind(user.0)
        .bind(phc)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no user {user}")));
        }
        Ok(())
    }

    async fn audit_entries(&self, target: UserId) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, actor_user_id, actor_token_id, target_user_id, operation, request_id,
                    idempotency_key
             FROM audit_log WHERE target_user_id = $1 ORDER BY id",
        )
        .bind(target.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    at: row.try_get("at")?,
                    actor_user: row.try_get::<Option<i64>, _>("actor_user_id")?.map(UserId),
                    actor_token: row.try_get("actor_token_id")?,
                    target_user: UserId(row.try_get("target_user_id")?),
                    operation: row.try_get("operation")?,
                    request_id: row.try_get("request_id")?,
                    idempotency_key: row.try_get("idempotency_key")?,
                })
            })
            .collect()
    }
}
