//! Idempotency on PostgreSQL (a module of `crate::postgres`, kept beside the trait).

use super::*;

#[async_trait]
impl Idempotency for PgStore {
    async fn find_idempotency(
        &self,
        token_id: i64,
        operation: LinkPurpose,
        key: &str,
        now: UnixMillis,
    ) -> Result<Option<StoredOutcome>> {
        let row = self
            .optional(
                sqlx::query(sql::IDEMPOTENCY_FIND)
                    .bind(token_id)
                    .bind(operation.as_str())
                    .bind(key)
                    .bind(now),
            )
            .await?;
        row.as_ref().map(rows::stored_outcome).transpose()
    }

    async fn purge_idempotency_keys(&self, now: UnixMillis) -> Result<u64> {
        let done = self
            .execute(sqlx::query(sql::IDEMPOTENCY_PURGE).bind(now))
            .await?;
        Ok(done)
    }
}
