//! The audit log on PostgreSQL (a module of `crate::postgres`, kept beside the trait).

use super::*;

#[async_trait]
impl Audit for PgStore {
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let found = self
            .all(
                sqlx::query(sql::AUDIT_LIST)
                    .bind(filter.user.map(|u| u.0))
                    .bind(filter.request_id.as_deref())
                    .bind(filter.since)
                    .bind(filter.until)
                    .bind(i64::from(filter.limit))
                    .bind(filter.address.as_deref())
                    .bind(filter.outcome.map(OutcomeFilter::as_str)),
            )
            .await?;
        found.iter().map(rows::audit_record).collect()
    }

    async fn record_refusal(&self, r: &Refusal) -> Result<()> {
        self.execute(
            sqlx::query(sql::AUDIT_REFUSAL)
                .bind(r.at)
                .bind(r.actor.user.0)
                .bind(r.actor.token_id)
                .bind(r.target.map(|u| u.0))
                .bind(&r.address)
                .bind(r.operation)
                .bind(&r.request_id)
                .bind(r.idempotency_key.as_deref())
                .bind(r.outcome.as_str()),
        )
        .await
        .map(drop)
    }
}
