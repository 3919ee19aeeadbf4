//! Admin calls by address, in groups, each group one statement
//! (`pwmail_issue_by_address`, functions/postgres/): the callers'
//! rate steps, the users, and the issues, one commit. They were two groups
//! a call, the step and lookup (`target`), then the issue (`issue`): two
//! statements, two transactions.
//!
//! A call whose user's stored address cannot receive mail stops after its
//! caller's step. A call with an Idempotency-Key takes `target` and
//! `pwmail_issue_link`.

use std::future::Future;

use sqlx::Row as _;

use super::group::Grouped;
use super::issue::{Outcome, fetch_retrying_deadlocks, outcome};
use super::pool::Pool;
use super::record;
use crate::{CallOutcome, IssueCall, RateKey, Result, StoreError, UserId, email_key, gcra};

/// $1 the calls' records (`record::addressed`), $2 the users' rate-key
/// prefix, $3 and $4 the callers' rate, $5 and $6 the cooldown.
const ISSUE_BY_ADDRESS: &str = "SELECT *
     FROM pwmail_issue_by_address($1, $2, $3, $4, $5, $6)";

/// A call and its address's key (`email_key`).
pub(super) struct Call {
    pub issue: IssueCall,
    pub email_key: String,
}

pub(super) enum ByAddress {}

impl Grouped for ByAddress {
    type Call = Call;
    type Answer = CallOutcome;
    const MAX: usize = 128;

    /// One caller rate and one cooldown; each address once (its user's
    /// rows change once per statement).
    fn fits(group: &[Call], call: &Call) -> bool {
        group.first().is_none_or(|first| {
            let (a, b) = (&first.issue, &call.issue);
            gcra::params(&a.caller_rate) == gcra::params(&b.caller_rate)
                && gcra::params(&a.link.cooldown) == gcra::params(&b.link.cooldown)
                && group.iter().all(|other| other.email_key != call.email_key)
        })
    }

    fn run(
        pool: &Pool,
        group: &[Call],
    ) -> impl Future<Output = Result<Vec<Result<CallOutcome>>>> + Send {
        issue_group(pool, group)
    }
}

async fn issue_group(pool: &Pool, calls: &[Call]) -> Result<Vec<Result<CallOutcome>>> {
    let first = calls.first().map(|c| &c.issue);
    let (caller_period, caller_tau) = first
        .map(|c| gcra::params(&c.caller_rate))
        .unwrap_or_default();
    let (period, tau) = first
        .map(|c| gcra::params(&c.link.cooldown))
        .unwrap_or_default();
    let records: Vec<_> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| record::addressed(i + 1, &c.issue.link, &c.email_key))
        .collect();
    let rows = fetch_retrying_deadlocks(pool, || {
        sqlx::query(ISSUE_BY_ADDRESS)
            .bind(&records)
            .bind(RateKey::USER_PREFIX)
            .bind(caller_period)
            .bind(caller_tau)
            .bind(period)
            .bind(tau)
    })
    .await?;
    // A missing or extra row is the gatherer's to report (`group`).
    Ok(rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let ord: i64 = row.try_get("ord")?;
            if ord != i as i64 + 1 {
                return Err(StoreError::Corrupt(format!(
                    "pwmail_issue_by_address answered call {ord} in place {}",
                    i + 1
                )));
            }
            addressed(row)
        })
        .collect())
}

/// A row of `pwmail_issue_by_address`.
fn addressed(row: &sqlx::postgres::PgRow) -> Result<CallOutcome> {
    match Outcome::of(row)? {
        Outcome::Throttled => Ok(CallOutcome::Throttled {
            retry_after_ms: row.try_get("retry_after_ms")?,
        }),
        Outcome::NoUser => Ok(CallOutcome::NoSuchUser),
        Outcome::Undeliverable => Ok(CallOutcome::Undeliverable {
            user: UserId(row.try_get("user_id")?),
        }),
        _ => {
            let user = UserId(row.try_get("user_id")?);
            Ok(CallOutcome::Issued {
                user,
                outcome: outcome(row, user)?,
            })
        }
    }
}

/// The call's address key, for grouping.
pub(super) fn call(issue: &IssueCall) -> Call {
    Call {
        email_key: email_key(&issue.email),
        issue: issue.clone(),
    }
}
