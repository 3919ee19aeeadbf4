//! Limits on PostgreSQL (a module of `crate::postgres`, kept beside the trait).

use super::*;

#[async_trait]
impl Limits for PgStore {
    async fn rate_limit(&self, key: &RateKey, limit: &Rate, now: UnixMillis) -> Result<Admission> {
        let (period, tau) = gcra::params(limit);
        let step = sqlx::query(*RATE_LIMIT)
            .bind(key.to_string())
            .bind(now)
            .bind(period)
            .bind(tau);
        admission(&self.one(step).await?, tau, now)
    }

    async fn purge_rate_limits(&self, now: UnixMillis) -> Result<u64> {
        let done = self.execute(sqlx::query(sql::RATE_PURGE).bind(now)).await?;
        Ok(done)
    }

    async fn fit_rate_state(&self, kind: RateKind, rate: &Rate, now: UnixMillis) -> Result<u64> {
        self.execute(
            sqlx::query(sql::RATE_FIT)
                .bind(kind.prefix())
                .bind(gcra::ceiling(rate, now)),
        )
        .await
    }
}
