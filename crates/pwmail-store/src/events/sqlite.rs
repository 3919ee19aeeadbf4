//! Events on SQLite (a module of `crate::sqlite`, kept beside the trait).

use super::*;

/// The triggers that write events (`CREATE TRIGGER IF NOT EXISTS …`).
const TRIGGERS: &str = include_str!("sqlite_triggers.sql");

/// Drops every trigger [`TRIGGERS`] creates, by the names it gives them.
static DROP_TRIGGERS: LazyLock<String> = LazyLock::new(|| {
    TRIGGERS
        .split("CREATE TRIGGER IF NOT EXISTS ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|name| format!("DROP TRIGGER IF EXISTS {name};"))
        .collect()
});

#[async_trait]
impl Events for SqliteStore {
    async fn set_event_kinds(&self, kinds: &[EventKind]) -> Result<()> {
        let kinds = kinds.to_vec();
        self.writer
            .write(move |c| {
                exec(c, sql::EVENT_KINDS_CLEAR, [])?;
                for kind in &kinds {
                    exec(c, sql::EVENT_KIND_ADD, [kind.as_str()])?;
                }
                // The triggers exist only while events are on: attached,
                // each costs every statement on its table a frame.
                if kinds.is_empty() {
                    c.execute_batch(&DROP_TRIGGERS)?;
                } else {
                    c.execute_batch(TRIGGERS)?;
                }
                Ok(())
            })
            .await
    }

    async fn event_kinds(&self) -> Result<Vec<EventKind>> {
        self.read(|c| {
            let names = all(c, sql::EVENT_KINDS, [], |row| row.text("kind"))?;
            Ok(names.iter().filter_map(|k| EventKind::parse(k)).collect())
        })
    }

    async fn claim_events(&self, claim: &Claim) -> Result<Vec<Event>> {
        let claim = claim.clone();
        self.writer
            .write(move |c| {
                let claimed = claim_steps(
                    c,
                    &claim,
                    [sql::EVENTS_CLAIM_DUE, sql::EVENTS_CLAIM_EXPIRED],
                    sql::EVENT_CLAIM_ONE,
                    sql::EVENT_CLAIMED,
                    |row| rows::event(row),
                )?;
                Ok(claimed.into_iter().map(|(_, e)| e).collect())
            })
            .await
    }

    async fn settle_event(&self, id: i64, owner: &str, outcome: &EventSettlement) -> Result<bool> {
        let (owner, outcome) = (owner.to_string(), outcome.clone());
        self.writer
            .write_statement(move |c| {
                let done = match &outcome {
                    EventSettlement::Delivered => {
                        exec(c, sql::EVENT_DELIVERED, params![id, owner])?
                    }
                    EventSettlement::Retry {
                        error,
                        next_attempt_at,
                    } => exec(
                        c,
                        sql::EVENT_RETRY,
                        params![id, owner, error, next_attempt_at],
                    )?,
                    EventSettlement::Failed { error } => {
                        exec(c, sql::EVENT_FAILED, params![id, owner, error])?
                    }
                };
                Ok(done == 1)
            })
            .await
    }

    async fn end_event_leases(&self, now: UnixMillis) -> Result<u64> {
        let done = self
            .writer
            .write_statement(move |c| exec(c, sql::EVENT_LEASES_END, params![now]))
            .await?;
        Ok(done as u64)
    }

    async fn retry_failed_events(&self, now: UnixMillis) -> Result<u64> {
        let done = self
            .writer
            .write_statement(move |c| exec(c, sql::EVENTS_RETRY_FAILED, params![now]))
            .await?;
        Ok(done as u64)
    }

    async fn list_events(&self, state: Option<EventState>, limit: u32) -> Result<Vec<Event>> {
        self.scan(move |c| {
            all(
                c,
                sql::EVENTS_LIST,
                params![state.map(EventState::as_str), limit],
                |row| rows::event(row),
            )
        })
        .await
    }

    async fn event_depth(&self) -> Result<Vec<(EventState, u64)>> {
        self.scan(|c| {
            let counts = all(c, sql::EVENTS_DEPTH, [], |row| {
                Ok((row.text("state")?, row.int("n")?))
            })?;
            Ok(rows::event_depth(counts))
        })
        .await
    }

    async fn next_event_due(&self) -> Result<Option<UnixMillis>> {
        let due: Option<Option<i64>> = self.read(|c| scalar(c, sql::EVENTS_NEXT_DUE, []))?;
        Ok(due.flatten())
    }
}
