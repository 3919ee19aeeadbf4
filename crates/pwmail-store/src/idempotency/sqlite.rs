//! Idempotency on SQLite (a module of `crate::sqlite`, kept beside the trait).

use super::*;

#[async_trait]
impl Idempotency for SqliteStore {
    async fn find_idempotency(
        &self,
        token_id: i64,
        operation: LinkPurpose,
        key: &str,
        now: UnixMillis,
    ) -> Result<Option<StoredOutcome>> {
        self.read(|c| find_key(c, token_id, operation, key, now))
    }

    async fn purge_idempotency_keys(&self, now: UnixMillis) -> Result<u64> {
        self.writer
            .write_statement(move |c| Ok(exec(c, sql::IDEMPOTENCY_PURGE, [now])? as u64))
            .await
    }
}
