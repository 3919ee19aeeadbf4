//! The audit log: who did what to which user, read back for an operator.
//!
//! The trait, and each engine's implementation beside it: `sqlite.rs`
//! and `postgres.rs` are modules of their engine (declared there with
//! `#[path]`, so they reach its private helpers) kept here, side by side.
//! The rows of calls that went through are written by the transactions
//! they record (links, the reset page); a refused call's row is its only
//! write, [`Audit::record_refusal`].

use async_trait::async_trait;

use crate::*;

#[async_trait]
pub trait Audit: Send + Sync {
    /// Rows matching `filter`, newest first, at most `filter.limit`.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>>;

    /// Writes a refused call's audit row.
    async fn record_refusal(&self, refusal: &Refusal) -> Result<()>;
}
