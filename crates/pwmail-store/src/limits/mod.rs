//! Rate-limit state: the GCRA steps of callers, users and reset-page guesses.
//!
//! The trait, and each engine's implementation beside it: `sqlite.rs`
//! and `postgres.rs` are modules of their engine (declared there with
//! `#[path]`, so they reach its private helpers) kept here, side by side.

use async_trait::async_trait;

use crate::*;

#[async_trait]
pub trait Limits: Send + Sync {
    /// One GCRA step for `key`: admits the call and records it, or says when
    /// the limit will admit one.
    async fn rate_limit(&self, key: &RateKey, limit: &Rate, now: UnixMillis) -> Result<Admission>;

    /// Deletes the state of every key whose limit is full again (its
    /// theoretical arrival time has passed), which is the same as no state;
    /// returns how many keys were forgotten.
    async fn purge_rate_limits(&self, now: UnixMillis) -> Result<u64>;

    /// Cuts state of `kind`'s keys written under a slower rate than `rate`
    /// to what `rate` can leave (`gcra::ceiling`), so a refusal waits no
    /// longer than the rate it quotes; returns how many keys it cut.
    async fn fit_rate_state(&self, kind: RateKind, rate: &Rate, now: UnixMillis) -> Result<u64>;
}
