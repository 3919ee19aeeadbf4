//! Retention on SQLite (a module of `crate::sqlite`, kept beside the trait).

use super::*;

#[async_trait]
impl Retention for SqliteStore {
    async fn purge_window(
        &self,
        table: Aging,
        after: i64,
        window: u32,
        cutoff: UnixMillis,
        now: UnixMillis,
    ) -> Result<Option<PurgeWindow>> {
        let statements = sql::purge(table);
        // One write on the writer thread: the window read and its delete
        // see the same rows. One writing statement, so no savepoint.
        let done = self
            .writer
            .write_statement(move |sp| {
                let seen = one(sp, statements.window, params![after, window], |row| {
                    Ok((
                        row.int("scanned")?,
                        row.opt_int("last_id")?,
                        row.opt_int("newest")?,
                    ))
                })?;
                let (scanned, last_id, newest) = seen.unwrap_or((0, None, None));
                let deleted = match (last_id, statements.takes_now) {
                    (Some(last), true) => {
                        exec(sp, statements.delete, params![cutoff, after, last, now])?
                    }
                    (Some(last), false) => {
                        exec(sp, statements.delete, params![cutoff, after, last])?
                    }
                    (None, _) => 0,
                };
                Ok(PurgeWindow {
                    scanned: scanned.max(0) as u64,
                    deleted: deleted as u64,
                    last_id,
                    newest,
                })
            })
            .await?;
        Ok(Some(done))
    }

    async fn count_due(&self, table: Aging, cutoff: UnixMillis, now: UnixMillis) -> Result<u64> {
        let statements = sql::purge(table);
        let due = self
            .scan(move |c| {
                let due = |row: &conn::Row<'_, '_>| row.int("due");
                if statements.takes_now {
                    one(
                        c,
                        statements.count,
                        params![cutoff, i64::MIN, i64::MAX, now],
                        due,
                    )
                } else {
                    one(
                        c,
                        statements.count,
                        params![cutoff, i64::MIN, i64::MAX],
                        due,
                    )
                }
            })
            .await?;
        Ok(due.unwrap_or(0).max(0) as u64)
    }
}
