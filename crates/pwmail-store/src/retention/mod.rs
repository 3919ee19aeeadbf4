//! Retention: what has aged out, deleted in small windows.
//!
//! Sent and dead emails, and links that were used, revoked or expired, are
//! kept `--retain-days`; audit rows `--audit-retain-days`. An email an
//! Idempotency-Key points to is kept as long as the key (a replay answers
//! from it). Each table is walked in id order, a window of rows at a time,
//! so a purge never holds the writer (or a PostgreSQL lock) for long and
//! never reads the part of a table too young to be due.
//!
//! The trait, and each engine's implementation beside it: `sqlite.rs`
//! and `postgres.rs` are modules of their engine (declared there with
//! `#[path]`, so they reach its private helpers) kept here, side by side.

use async_trait::async_trait;

use crate::*;

#[async_trait]
pub trait Retention: Send + Sync {
    /// Deletes, among the `window` rows of `table` with ids above `after`,
    /// those due before `cutoff` at `now` (Idempotency-Keys expired at
    /// `now` must be purged first). `None`: another process is purging
    /// (PostgreSQL's replicas take turns), so this one does nothing.
    async fn purge_window(
        &self,
        table: Aging,
        after: i64,
        window: u32,
        cutoff: UnixMillis,
        now: UnixMillis,
    ) -> Result<Option<PurgeWindow>>;

    /// How many rows of `table` a purge at `now` would delete (`pwmail
    /// purge --dry-run`): by the same rule, over the whole table.
    async fn count_due(&self, table: Aging, cutoff: UnixMillis, now: UnixMillis) -> Result<u64>;
}
