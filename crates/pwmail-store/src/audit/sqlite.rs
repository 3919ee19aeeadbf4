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
                    filter.limit
                ],
                |row| rows::audit_record(row),
            )
        })
        .await
    }
}
