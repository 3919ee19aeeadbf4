//! Sent messages settled in groups.
//!
//! Every delivered message is settled, each in its own transaction, so on
//! PostgreSQL each cost a round trip and a WAL flush of its own, as many as
//! the API calls. Here one task takes every "sent" settle waiting and runs
//! them as one statement (`sql::SETTLE_SENT_MANY`): while one group's
//! statement runs, the next group gathers. Each caller still hears back only
//! after the commit that holds its settle, and learns whether its lease was
//! still its own. Retries and dead messages are rare and settle one by one.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::pool::Pool;
use crate::{Result, StoreError, UnixMillis, sql};

/// Largest group one statement settles.
const MAX_GROUP: usize = 256;
/// Settles waiting before callers wait to enqueue.
const QUEUE: usize = 4096;

struct Sent {
    id: i64,
    owner: String,
    reply: String,
    at: UnixMillis,
    done: oneshot::Sender<Result<bool>>,
}

/// The queue to the task that settles; the task ends when this is dropped.
pub(super) struct SentSettles {
    queue: mpsc::Sender<Sent>,
}

impl SentSettles {
    /// Starts the task on the current tokio runtime.
    pub(super) fn start(pool: Arc<Pool>) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, waiting));
        SentSettles { queue }
    }

    /// Settles message `id` as sent if `owner` still holds its lease;
    /// whether it did.
    pub(super) async fn settle(
        &self,
        id: i64,
        owner: &str,
        reply: &str,
        at: UnixMillis,
    ) -> Result<bool> {
        let (done, answer) = oneshot::channel();
        let sent = Sent {
            id,
            owner: owner.to_string(),
            reply: reply.to_string(),
            at,
            done,
        };
        self.queue
            .send(sent)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run(pool: Arc<Pool>, mut waiting: mpsc::Receiver<Sent>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while waiting.recv_many(&mut group, MAX_GROUP).await > 0 {
        match settle_group(&pool, &group).await {
            Ok(settled) => {
                for sent in group.drain(..) {
                    let _ = sent.done.send(Ok(settled.contains(&sent.id)));
                }
            }
            // None of the group took effect: each caller hears the group's
            // error, retryable as it was.
            Err(e) => {
                let (retryable, message) = (e.is_retryable(), e.to_string());
                for sent in group.drain(..) {
                    let _ = sent.done.send(Err(StoreError::BatchFailed {
                        retryable,
                        message: message.clone(),
                    }));
                }
            }
        }
    }
}

/// One statement for the group; the ids it settled.
async fn settle_group(pool: &Pool, group: &[Sent]) -> Result<HashSet<i64>> {
    let ids: Vec<i64> = group.iter().map(|s| s.id).collect();
    let owners: Vec<&str> = group.iter().map(|s| s.owner.as_str()).collect();
    let replies: Vec<&str> = group.iter().map(|s| s.reply.as_str()).collect();
    let times: Vec<i64> = group.iter().map(|s| s.at).collect();
    let mut conn = pool.acquire().await?;
    let settled: Vec<i64> = sqlx::query_scalar(sql::SETTLE_SENT_MANY)
        .bind(&ids)
        .bind(&owners)
        .bind(&replies)
        .bind(&times)
        .fetch_all(&mut *conn)
        .await?;
    conn.release();
    Ok(settled.into_iter().collect())
}
