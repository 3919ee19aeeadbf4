//! Sent messages settled in groups.
//!
//! Every delivered message is settled, each in its own transaction, so on
//! PostgreSQL each cost a round trip and a WAL flush of its own, as many as
//! the API calls. Here they run in groups (see `group`), each group one
//! statement (`sql::SETTLE_SENT_MANY`). Each caller still hears back only
//! after the commit that holds its settle, and learns whether its lease was
//! still its own. Retries and dead messages are rare and settle one by one.

use std::collections::HashSet;

use super::group::Grouped;
use super::pool::Pool;
use crate::{Result, UnixMillis, sql};

/// Message `id` sent, if `owner` still holds its lease.
pub(super) struct Sent {
    pub id: i64,
    pub owner: String,
    pub reply: String,
    pub at: UnixMillis,
}

pub(super) enum SentSettles {}

impl Grouped for SentSettles {
    type Call = Sent;
    /// Whether the lease was still the caller's (the row settled).
    type Answer = bool;
    const MAX: usize = 256;

    fn fits(_: &[Sent], _: &Sent) -> bool {
        true
    }

    async fn run(pool: &Pool, group: &[Sent]) -> Result<Vec<Result<bool>>> {
        let settled = settle_group(pool, group).await?;
        Ok(group.iter().map(|s| Ok(settled.contains(&s.id))).collect())
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
