//! Links issued in groups.
//!
//! An issue on PostgreSQL cost more database CPU than all of pwmail's own
//! work for the request: eight statements, each with its executor start-up,
//! and a commit with a WAL flush per call. Here one task takes every issue
//! waiting and runs them as one statement (`pwmail_issue_links`,
//! migrations/postgres/0007): one executor, one commit for the group. While
//! one group's statement runs, the next gathers. Each caller hears back only
//! after the commit that holds its call, with its own outcome.
//!
//! A group holds each user once (a row changes once per statement) and one
//! cooldown rate; a call that would break either waits for the next group.
//! Calls with an Idempotency-Key go one at a time (`pwmail_issue_link`,
//! which applies the same rules to a group of one).

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::Row as _;
use sqlx::postgres::PgRow;
use tokio::sync::{mpsc, oneshot};

use super::pool::Pool;
use crate::gcra;
use crate::rows::ContentColumns;
use crate::{IssueLink, IssueOutcome, RateKey, Result, StoreError, UserId};

/// Largest group one statement issues.
const MAX_GROUP: usize = 128;
/// Calls waiting before callers wait to enqueue.
const QUEUE: usize = 4096;
/// Times a group is run again when PostgreSQL broke a deadlock by failing
/// it (groups of two replicas locking the same users).
const DEADLOCK_RETRIES: u32 = 3;

/// The one statement: the function's rows, in the calls' order.
const ISSUE_LINKS: &str = "SELECT ord, outcome, link_id, outbox_id, retry_after_ms
     FROM pwmail_issue_links($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                             $15, $16, $17, $18, $19, $20, $21, $22)";

struct Call {
    issue: IssueLink,
    done: oneshot::Sender<Result<IssueOutcome>>,
}

impl Call {
    /// What must be one for the whole group: the cooldown's parameters.
    fn rate(&self) -> (i64, i64) {
        gcra::params(&self.issue.cooldown)
    }
}

/// The queue to the task that issues; the task ends when this is dropped.
pub(super) struct Issues {
    queue: mpsc::Sender<Call>,
}

impl Issues {
    /// Starts the task on the current tokio runtime.
    pub(super) fn start(pool: Arc<Pool>) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, waiting));
        Issues { queue }
    }

    /// Issues one call (without an Idempotency-Key, its caller charged)
    /// with the others waiting.
    pub(super) async fn issue(&self, issue: IssueLink) -> Result<IssueOutcome> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Call { issue, done })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run(pool: Arc<Pool>, mut waiting: mpsc::Receiver<Call>) {
    let mut pending: Vec<Call> = Vec::with_capacity(MAX_GROUP);
    loop {
        if pending.is_empty() {
            if waiting.recv_many(&mut pending, MAX_GROUP).await == 0 {
                return;
            }
        } else {
            while pending.len() < MAX_GROUP {
                match waiting.try_recv() {
                    Ok(call) => pending.push(call),
                    Err(_) => break,
                }
            }
        }
        let (group, later) = split(std::mem::take(&mut pending));
        pending = later;
        let result = issue_group(&pool, &group).await;
        match result {
            Ok(outcomes) => {
                for (call, outcome) in group.into_iter().zip(outcomes) {
                    let _ = call.done.send(outcome);
                }
            }
            // None of the group took effect: each caller hears the group's
            // error, retryable as it was.
            Err(e) => {
                let (retryable, message) = (e.is_retryable(), e.to_string());
                for call in group {
                    let _ = call.done.send(Err(StoreError::BatchFailed {
                        retryable,
                        message: message.clone(),
                    }));
                }
            }
        }
    }
}

/// The calls one statement can take, in arrival order, and the rest: a
/// user already in the group, or another cooldown rate, waits.
fn split(calls: Vec<Call>) -> (Vec<Call>, Vec<Call>) {
    let Some(rate) = calls.first().map(Call::rate) else {
        return (calls, Vec::new());
    };
    let mut users = HashSet::with_capacity(calls.len());
    calls
        .into_iter()
        .partition(|call| call.rate() == rate && users.insert(call.issue.target))
}

/// One statement for the group; each call's outcome, in order (a call for
/// no user is an error of its own, not the group's).
async fn issue_group(pool: &Pool, group: &[Call]) -> Result<Vec<Result<IssueOutcome>>> {
    let issues: Vec<&IssueLink> = group.iter().map(|c| &c.issue).collect();
    let (period, tau) = group.first().map(Call::rate).unwrap_or_default();
    let content: Vec<ContentColumns> = issues
        .iter()
        .map(|i| ContentColumns::of(&i.message.content))
        .collect();
    let actor_users = column(&issues, |i| i.actor.user.0);
    let actor_tokens = column(&issues, |i| i.actor.token_id);
    let targets = column(&issues, |i| i.target.0);
    let purposes = column(&issues, |i| i.purpose.as_str());
    let invalidates = column(&issues, |i| i.purpose.invalidates_password());
    let link_hashes = column(&issues, |i| &i.link_hash.0[..]);
    let expiries = column(&issues, |i| i.expires_at);
    let rate_keys = column(&issues, |i| RateKey::User(i.target).to_string());
    let message_ids = column(&issues, |i| i.message.message_id.as_str());
    let kinds = column(&issues, |i| i.message.kind.as_str());
    let recipients = column(&issues, |i| i.message.recipient.as_str());
    let subjects = column(&content, |c| c.subject);
    let texts = column(&content, |c| c.body_text);
    let htmls = column(&content, |c| c.body_html);
    let links = column(&content, |c| c.link);
    let names = column(&content, |c| c.link_name);
    let link_expiries = column(&content, |c| c.link_expires_at);
    let request_ids = column(&issues, |i| i.request_id.as_str());
    let nows = column(&issues, |i| i.now);
    let keys = column(&issues, |i| i.idempotency.as_ref().map(|k| k.key.as_str()));
    let mut conn = pool.acquire().await?;
    let mut deadlocks = 0;
    let rows = loop {
        let query = sqlx::query(ISSUE_LINKS)
            .bind(&actor_users)
            .bind(&actor_tokens)
            .bind(&targets)
            .bind(&purposes)
            .bind(&invalidates)
            .bind(&link_hashes)
            .bind(&expiries)
            .bind(&rate_keys)
            .bind(period)
            .bind(tau)
            .bind(&message_ids)
            .bind(&kinds)
            .bind(&recipients)
            .bind(&subjects)
            .bind(&texts)
            .bind(&htmls)
            .bind(&links)
            .bind(&names)
            .bind(&link_expiries)
            .bind(&request_ids)
            .bind(&nows)
            .bind(&keys);
        match query.fetch_all(&mut *conn).await {
            // PostgreSQL broke a deadlock by failing this group, which
            // rolled back: run it again.
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("40P01") && deadlocks < DEADLOCK_RETRIES =>
            {
                deadlocks += 1;
            }
            rows => break rows?,
        }
    };
    conn.release();
    if rows.len() != issues.len() {
        return Err(StoreError::Corrupt(format!(
            "pwmail_issue_links answered {} rows for {} calls",
            rows.len(),
            issues.len()
        )));
    }
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

/// One array parameter: `f` of each element.
fn column<'a, T, U>(items: &'a [T], f: impl Fn(&'a T) -> U) -> Vec<U> {
    items.iter().map(f).collect()
}

/// A row of `pwmail_issue_links`.
pub(super) fn outcome(row: &PgRow, target: UserId) -> Result<IssueOutcome> {
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
        "no_user" => return Err(StoreError::NotFound(format!("no user {target}"))),
        other => {
            return Err(StoreError::Corrupt(format!(
                "pwmail_issue_links answered {other:?}"
            )));
        }
    })
}
