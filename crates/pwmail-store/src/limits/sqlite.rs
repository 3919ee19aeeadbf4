//! Limits on SQLite (a module of `crate::sqlite`, kept beside the trait).

use super::*;

#[async_trait]
impl Limits for SqliteStore {
    async fn rate_limit(&self, key: &RateKey, limit: &Rate, now: UnixMillis) -> Result<Admission> {
        let (key, limit) = (key.to_string(), *limit);
        // One upsert (and, when refused, a read): no savepoint needed.
        self.writer
            .write_statement(move |c| gcra(c, &key, &limit, now))
            .await
    }

    async fn purge_rate_limits(&self, now: UnixMillis) -> Result<u64> {
        self.writer
            .write_statement(move |c| Ok(exec(c, sql::RATE_PURGE, [now])? as u64))
            .await
    }

    async fn fit_rate_state(&self, kind: RateKind, rate: &Rate, now: UnixMillis) -> Result<u64> {
        let ceiling = gcra::ceiling(rate, now);
        let done = self
            .writer
            .write_statement(move |c| exec(c, sql::RATE_FIT, params![kind.prefix(), ceiling]))
            .await?;
        Ok(done as u64)
    }
}
