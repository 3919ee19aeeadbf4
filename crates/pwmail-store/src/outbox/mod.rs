//! The outbox: queued emails, their leases, and what became of each send.
//!
//! The trait, and each engine's implementation beside it: `sqlite.rs`
//! and `postgres.rs` are modules of their engine (declared there with
//! `#[path]`, so they reach its private helpers) kept here, side by side.

use async_trait::async_trait;

use crate::*;

#[async_trait]
pub trait Outbox: Send + Sync {
    /// Leases up to `limit` due messages (queued, retrying whose time has
    /// come, or sending whose lease ran out) to `owner`.
    async fn claim_outbox(&self, claim: &Claim) -> Result<Vec<OutboxMessage>>;

    /// Settles a claimed message. Returns false if the lease was lost to
    /// another worker in the meantime (nothing is changed then).
    async fn settle_outbox(&self, id: i64, owner: &str, outcome: &Settlement) -> Result<bool>;

    /// Moves the end of `owner`'s lease on a message to `until`; false if
    /// the lease is no longer `owner`'s.
    async fn extend_lease(&self, id: i64, owner: &str, until: UnixMillis) -> Result<bool>;

    /// Ends every lease now, so messages left `sending` are claimed at once;
    /// returns how many. Only for a process that holds the database alone
    /// (SQLite under the server lock), where a lease can only be one a dead
    /// process left.
    async fn end_leases(&self, now: UnixMillis) -> Result<u64>;

    /// Queues a dead message again with a fresh attempt budget; false if the
    /// message is not dead.
    async fn requeue_dead(&self, id: i64, now: UnixMillis) -> Result<bool>;

    async fn outbox_message(&self, id: i64) -> Result<Option<OutboxStatus>>;

    async fn list_outbox(
        &self,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>>;

    /// Messages to one user and/or queued by one API call, newest first.
    async fn outbox_for(
        &self,
        user: Option<UserId>,
        request_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>>;

    /// How many messages are in each state.
    async fn outbox_depth(&self) -> Result<Vec<(OutboxState, u64)>>;

    /// [`Outbox::outbox_depth`] without the sent ones, whose count grows
    /// with the table: what can be counted often at any size.
    async fn outbox_unsent_depth(&self) -> Result<Vec<(OutboxState, u64)>>;

    /// The earliest time a queued or retrying message becomes due.
    async fn next_outbox_due(&self) -> Result<Option<UnixMillis>>;
}
