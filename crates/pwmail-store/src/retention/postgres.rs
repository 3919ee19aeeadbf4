//! Retention on PostgreSQL (a module of `crate::postgres`, kept beside the trait).

use super::*;

/// The advisory lock replicas take for a window of the purge, so one
/// purges at a time. Advisory locks are the database's, not the schema's:
/// the key names the schema, so deployments in other schemas of the same
/// database (the tests' are) never wait for each other.
const PURGE_LOCK: &str =
    "SELECT pg_try_advisory_xact_lock(hashtextextended('pwmail_purge:' || current_schema(), 0))";

#[async_trait]
impl Retention for PgStore {
    async fn purge_window(
        &self,
        table: Aging,
        after: i64,
        window: u32,
        cutoff: UnixMillis,
        now: UnixMillis,
    ) -> Result<Option<PurgeWindow>> {
        let statements = sql::purge(table);
        // Dropped on an error before its commit, the connection goes and
        // the transaction with it.
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let locked: bool = sqlx::query_scalar(PURGE_LOCK).fetch_one(&mut *tx).await?;
        if !locked {
            tx.rollback().await?;
            conn.release();
            return Ok(None);
        }
        let row = sqlx::query(statements.window)
            .bind(after)
            .bind(i64::from(window))
            .fetch_one(&mut *tx)
            .await?;
        let scanned: i64 = row.try_get("scanned")?;
        let last_id: Option<i64> = row.try_get("last_id")?;
        let newest: Option<i64> = row.try_get("newest")?;
        let deleted = match last_id {
            Some(last) => {
                let delete = sqlx::query(statements.delete)
                    .bind(cutoff)
                    .bind(after)
                    .bind(last);
                let delete = if statements.takes_now {
                    delete.bind(now)
                } else {
                    delete
                };
                delete.execute(&mut *tx).await?.rows_affected()
            }
            None => 0,
        };
        tx.commit().await?;
        conn.release();
        Ok(Some(PurgeWindow {
            scanned: scanned.max(0) as u64,
            deleted,
            last_id,
            newest,
        }))
    }

    async fn count_due(&self, table: Aging, cutoff: UnixMillis, now: UnixMillis) -> Result<u64> {
        let statements = sql::purge(table);
        let count = sqlx::query(statements.count)
            .bind(cutoff)
            .bind(i64::MIN)
            .bind(i64::MAX);
        let count = if statements.takes_now {
            count.bind(now)
        } else {
            count
        };
        let row = self.one(count).await?;
        let due: i64 = row.try_get("due")?;
        Ok(due.max(0) as u64)
    }
}
