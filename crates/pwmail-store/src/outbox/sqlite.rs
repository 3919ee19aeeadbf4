//! Outbox on SQLite (a module of `crate::sqlite`, kept beside the trait).

use super::*;

#[async_trait]
impl Outbox for SqliteStore {
    async fn claim_outbox(&self, claim: &Claim) -> Result<Vec<OutboxMessage>> {
        let claim = claim.clone();
        self.writer.write(move |sp| claim_in(sp, &claim)).await
    }

    async fn settle_outbox(&self, id: i64, owner: &str, outcome: &Settlement) -> Result<bool> {
        let (owner, outcome) = (owner.to_string(), outcome.clone());
        if let Settlement::Dead {
            error,
            at,
            suppress: true,
        } = outcome
        {
            // Settled and its recipient suppressed and audited: one
            // savepoint, all or nothing.
            return self
                .writer
                .write(move |c| {
                    if exec(c, sql::SETTLE_DEAD, params![id, owner, error, at])? != 1 {
                        return Ok(false);
                    }
                    exec(c, sql::USER_SUPPRESS, params![id, at, error])?;
                    exec(c, sql::AUDIT_SUPPRESSED, params![id, at])?;
                    Ok(true)
                })
                .await;
        }
        // One UPDATE (its trigger's writes undo with it): no savepoint needed.
        self.writer
            .write_statement(move |c| {
                let done = match &outcome {
                    Settlement::Sent { reply, at } => {
                        exec(c, sql::SETTLE_SENT, params![id, owner, reply, at])?
                    }
                    Settlement::Retry {
                        error,
                        at,
                        next_attempt_at,
                    } => exec(
                        c,
                        sql::SETTLE_RETRY,
                        params![id, owner, error, at, next_attempt_at],
                    )?,
                    Settlement::Dead { error, at, .. } => {
                        exec(c, sql::SETTLE_DEAD, params![id, owner, error, at])?
                    }
                };
                Ok(done == 1)
            })
            .await
    }

    async fn extend_lease(&self, id: i64, owner: &str, until: UnixMillis) -> Result<bool> {
        let owner = owner.to_string();
        let done = self
            .writer
            .write_statement(move |c| exec(c, sql::LEASE_EXTEND, params![id, owner, until]))
            .await?;
        Ok(done == 1)
    }

    async fn end_leases(&self, now: UnixMillis) -> Result<u64> {
        let done = self
            .writer
            .write_statement(move |c| exec(c, sql::LEASES_END, params![now]))
            .await?;
        Ok(done as u64)
    }

    async fn requeue_dead(&self, id: i64, now: UnixMillis) -> Result<bool> {
        self.writer
            .write_statement(move |c| Ok(exec(c, sql::REQUEUE_DEAD, params![id, now])? == 1))
            .await
    }

    async fn outbox_message(&self, id: i64) -> Result<Option<OutboxStatus>> {
        self.read(|c| one(c, sql::OUTBOX_STATUS, [id], |row| rows::outbox_status(row)))
    }

    async fn list_outbox(
        &self,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>> {
        self.scan(move |c| {
            all(
                c,
                sql::OUTBOX_LIST,
                params![state.map(OutboxState::as_str), limit],
                |row| rows::outbox_status(row),
            )
        })
        .await
    }

    async fn outbox_for(
        &self,
        user: Option<UserId>,
        request_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>> {
        // By index (user or request id), bounded: on the calling task.
        self.read(|c| {
            all(
                c,
                sql::OUTBOX_FOR,
                params![user.map(|u| u.0), request_id, limit],
                |row| rows::outbox_status(row),
            )
        })
    }

    async fn outbox_depth(&self) -> Result<Vec<(OutboxState, u64)>> {
        self.depth(sql::OUTBOX_DEPTH).await
    }

    async fn outbox_unsent_depth(&self) -> Result<Vec<(OutboxState, u64)>> {
        self.depth(sql::OUTBOX_UNSENT).await
    }

    async fn next_outbox_due(&self) -> Result<Option<UnixMillis>> {
        let due: Option<Option<i64>> = self.read(|c| scalar(c, sql::OUTBOX_NEXT_DUE, []))?;
        Ok(due.flatten())
    }
}

/// The claim policy of `sql.rs`, step by step (see `sql::CLAIM_ONE`).
fn claim_in(c: &Connection, claim: &Claim) -> Result<Vec<OutboxMessage>> {
    let claimed = claim_steps(
        c,
        claim,
        [sql::CLAIM_DUE, sql::CLAIM_EXPIRED],
        sql::CLAIM_ONE,
        sql::CLAIMED,
        |row| rows::outbox_message(row),
    )?;
    Ok(claimed.into_iter().map(|(_, m)| m).collect())
}
