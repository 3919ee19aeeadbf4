//! Links issued in groups.
//!
//! An issue on PostgreSQL cost more database CPU than all of pwmail's own
//! work for the request: eight statements, each with its executor start-up,
//! and a commit with a WAL flush per call. Here one task takes every issue
//! functions/postgres/pwmail_issue_links.sql): one executor, one commit for
//! the group. While
//! one group's statement runs, the next gathers. Each caller hears back only
//! after the commit that holds its call, with its own outcome.
//!
//! A group holds each user once (a row changes once per statement) and one
//! cooldown rate; a call that would break either waits for the next group.
//! Calls with an Idempotency-Key go one at a time (`pwmail_issue_link`,
//! which applies the same rules to a group of one).

use std::future::Future;

use sqlx::Row as _;
use sqlx::postgres::PgRow;

use super::PgQuery;
use super::group::Grouped;
use super::pool::Pool;
use super::record;
use crate::gcra;
use crate::{IssueLink, IssueOutcome, Result, StoreError, UserId};

/// Times a group is run again after PostgreSQL failed it to break a deadlock.
const DEADLOCK_RETRIES: u32 = 3;

/// The one statement: the function's rows, in the calls' order. $1 and $2
/// the calls' records (`record::issue`), $3 and $4 the cooldown.
const ISSUE_LINKS: &str = "SELECT ord, outcome, link_id, outbox_id, retry_after_ms
     FROM pwmail_issue_links($1, $2, $3, $4)";

/// Issues without an Idempotency-Key (their caller charged).
pub(super) enum Issues {}

impl Grouped for Issues {
    type Call = IssueLink;
    type Answer = IssueOutcome;
    const MAX: usize = 128;

    /// Each user once (a row changes once per statement), one cooldown.
    fn fits(group: &[IssueLink], call: &IssueLink) -> bool {
        group.first().is_none_or(|first| {
            gcra::params(&first.cooldown) == gcra::params(&call.cooldown)
                && group.iter().all(|other| other.target != call.target)
        })
    }

    fn run(
        pool: &Pool,
        group: &[IssueLink],
    ) -> impl Future<Output = Result<Vec<Result<IssueOutcome>>>> + Send {
        issue_group(pool, group)
    }
}

/// One statement for the group; each call's outcome, in order (a call for
/// no user is an error of its own, not the group's).
async fn issue_group(pool: &Pool, issues: &[IssueLink]) -> Result<Vec<Result<IssueOutcome>>> {
    let (period, tau) = issues
        .first()
        .map(|i| gcra::params(&i.cooldown))
        .unwrap_or_default();
    let (calls, users): (Vec<_>, Vec<_>) = issues
        .iter()
        .enumerate()
        .map(|(i, issue)| record::issue(i + 1, issue))
        .unzip();
    let rows = fetch_retrying_deadlocks(pool, || {
        sqlx::query(ISSUE_LINKS)
            .bind(&calls)
            .bind(&users)
            .bind(period)
            .bind(tau)
    })
    .await?;
    // A missing or extra row is the gatherer's to report (`group`).
    issues
        .iter()
        .zip(&rows)
        .enumerate()
        .map(|(i, (issue, row))| {
            let ord: i64 = row.try_get("ord")?;
            if ord != i as i64 + 1 {
                return Err(StoreError::Corrupt(format!(
                    "pwmail_issue_links answered call {ord} in place {}",
                    i + 1
                )));
            }
            Ok(outcome(row, issue.target))
        })
        .collect()
}

/// The rows of the statement `query` builds, on one connection; run again
/// when PostgreSQL broke a deadlock by failing it (which rolled it back):
/// groups of two replicas locking the same rows.
pub(super) async fn fetch_retrying_deadlocks<'q>(
    pool: &Pool,
    query: impl Fn() -> PgQuery<'q>,
) -> Result<Vec<PgRow>> {
    let mut conn = pool.acquire().await?;
    let mut deadlocks = 0;
    let rows = loop {
        match query().fetch_all(&mut *conn).await {
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("40P01") && deadlocks < DEADLOCK_RETRIES =>
            {
                deadlocks += 1;
            }
            rows => break rows?,
        }
    };
    conn.release();
    Ok(rows)
}

/// What the issue functions answer (PostgreSQL's `pwmail_outcome`,
/// migration 0013): decoded here, never read as a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "pwmail_outcome", rename_all = "snake_case")]
pub(super) enum Outcome {
    Issued,
    CoolingDown,
    Disabled,
    NoUser,
    Throttled,
    Undeliverable,
    KeyInFlight,
    /// A live Idempotency-Key's stored outcome (`pwmail_issue_link`).
    Stored,
}

impl Outcome {
    pub(super) fn of(row: &PgRow) -> Result<Outcome> {
        Ok(row.try_get("outcome")?)
    }
}

/// A row of `pwmail_issue_links` (or of a function that passes its rows
/// on): the issue's outcome for `target`.
pub(super) fn outcome(row: &PgRow, target: UserId) -> Result<IssueOutcome> {
    Ok(match Outcome::of(row)? {
        // No email for a link the call asked to see (`reveal`).
        Outcome::Issued => match row.try_get("outbox_id")? {
            Some(outbox_id) => IssueOutcome::Issued {
                link_id: row.try_get("link_id")?,
                outbox_id,
            },
            None => IssueOutcome::Revealed {
                link_id: row.try_get("link_id")?,
            },
        },
        Outcome::CoolingDown => IssueOutcome::CoolingDown {
            retry_after_ms: row.try_get("retry_after_ms")?,
        },
        Outcome::Disabled => IssueOutcome::Disabled,
        Outcome::NoUser => return Err(StoreError::NotFound(format!("no user {target}"))),
        other => {
            return Err(StoreError::Corrupt(format!(
                "the issue of one call answered {other:?}"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;
    use std::time::Duration;

    use sqlx::postgres::PgConnectOptions;

    use super::*;

    /// A statement that PostgreSQL fails as it fails a deadlock's victim
    /// (40P01), `fails` times, then answers: the count is a sequence, which
    /// a rollback does not undo.
    async fn deadlocking(pool: &Pool, schema: &str, fails: u32) {
        let mut conn = pool.acquire().await.unwrap();
        for statement in [
            format!("CREATE SEQUENCE {schema}.tries"),
            format!(
                "CREATE FUNCTION {schema}.deadlock_at_first() RETURNS BIGINT LANGUAGE plpgsql AS $$
                 DECLARE n BIGINT := nextval('{schema}.tries');
                 BEGIN
                     IF n <= {fails} THEN
                         RAISE EXCEPTION 'deadlock detected (test)' USING ERRCODE = '40P01';
                     END IF;
                     RETURN n;
                 END $$"
            ),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        conn.release();
    }

    async fn pool_in(schema: &pwmail_testkit::pg::PgSchema) -> Pool {
        Pool::new(
            PgConnectOptions::from_str(&schema.url(None)).unwrap(),
            crate::PoolOptions {
                acquire_timeout: Duration::from_secs(5),
                max_connections: 2,
            },
        )
    }

    #[tokio::test]
    async fn a_group_failed_to_break_a_deadlock_is_run_again_up_to_its_retries() {
        for (fails, answered) in [(DEADLOCK_RETRIES, true), (DEADLOCK_RETRIES + 1, false)] {
            let schema = pwmail_testkit::pg::PgSchema::create().await;
            let pool = pool_in(&schema).await;
            deadlocking(&pool, &schema.name, fails).await;
            let sql = format!("SELECT {}.deadlock_at_first() AS n", schema.name);
            let got =
                fetch_retrying_deadlocks(&pool, || sqlx::query(sqlx::AssertSqlSafe(sql.clone())))
                    .await;
            match got {
                Ok(rows) if answered => {
                    let n: i64 = rows[0].try_get("n").unwrap();
                    assert_eq!(n, i64::from(fails) + 1, "answered by the last try");
                }
                Err(StoreError::Database(e)) if !answered => {
                    assert!(e.to_string().contains("deadlock detected"), "{e}");
                }
                other => panic!("{fails} deadlocks: {other:?}"),
            }
            schema.drop_schema().await;
        }
    }
}
