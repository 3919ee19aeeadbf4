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
                    .bind(i64::from(filter.limit)),
            )
            .await?;
        found.iter().map(rows::audit_record).collect()
    }
}
