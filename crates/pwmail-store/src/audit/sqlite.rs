//! The audit log on SQLite (a module of `crate::sqlite`, kept beside the trait).

use super::*;

#[async_trait]
impl Audit for SqliteStore {
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let filter = filter.clone();
        // A filter may match little of a large log: off the calling task.
        self.scan(move |c| {
            all(
                c,
                sql::AUDIT_LIST,
                params![
                    filter.user.map(|u| u.0),
                    filter.request_id,
                    filter.since,
                    filter.until,
                    filter.limit,
                    filter.address,
                    filter.outcome.map(OutcomeFilter::as_str)
                ],
                |row| rows::audit_record(row),
            )
        })
        .await
    }

    async fn record_refusal(&self, refusal: &Refusal) -> Result<()> {
        let r = refusal.clone();
        self.writer
            .write_statement(move |c| {
                exec(
                    c,
                    sql::AUDIT_REFUSAL,
                    params![
                        r.at,
                        r.actor.user.0,
                        r.actor.token_id,
                        r.target.map(|u| u.0),
                        r.address,
                        r.operation,
                        r.request_id,
                        r.idempotency_key,
                        r.outcome.as_str()
                    ],
                )
                .map(drop)
            })
            .await
    }
}
