//! Idempotency-Keys: the stored outcome of a keyed call.
//!
//! The trait, and each engine's implementation beside it: `sqlite.rs`
//! and `postgres.rs` are modules of their engine (declared there with
//! `#[path]`, so they reach its private helpers) kept here, side by side.

use async_trait::async_trait;

use crate::*;

#[async_trait]
pub trait Idempotency: Send + Sync {
    /// The stored outcome of `key` for this token and operation, unless it
    /// expired. `issue_link` checks again inside its transaction.
    async fn find_idempotency(
        &self,
        token_id: i64,
        operation: LinkPurpose,
        key: &str,
        now: UnixMillis,
    ) -> Result<Option<StoredOutcome>>;

    /// Deletes expired keys; returns how many.
    async fn purge_idempotency_keys(&self, now: UnixMillis) -> Result<u64>;
}
