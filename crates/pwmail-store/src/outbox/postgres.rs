//! Outbox on PostgreSQL (a module of `crate::postgres`, kept beside the trait).

use super::*;

#[async_trait]
impl Outbox for PgStore {
    async fn claim_outbox(&self, claim: &Claim) -> Result<Vec<OutboxMessage>> {
        let found = self
            .all(
                sqlx::query(*CLAIM_OUTBOX)
                    .bind(&claim.owner)
                    .bind(claim.now)
                    .bind(claim.lease_ms)
                    .bind(i64::from(claim.limit)),
            )
            .await?;
        let mut claimed = found
            .iter()
            .map(rows::outbox_message)
            .collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    async fn settle_outbox(&self, id: i64, owner: &str, outcome: &Settlement) -> Result<bool> {
        let query = match outcome {
            Settlement::Sent { reply, at } => {
                let sent = self
                    .sent
                    .get_or_init(|| group::Groups::start(Arc::clone(&self.pool)));
                return sent
                    .call(settle::Sent {
                        id,
                        owner: owner.to_string(),
                        reply: reply.to_string(),
                        at: *at,
                    })
                    .await;
            }
            Settlement::Retry {
                error,
                at,
                next_attempt_at,
            } => sqlx::query(sql::SETTLE_RETRY)
                .bind(id)
                .bind(owner)
                .bind(error)
                .bind(*at)
                .bind(*next_attempt_at),
            Settlement::Dead {
                error,
                at,
                suppress: true,
            } => {
                // Settled and its recipient suppressed and audited, in one
                // transaction (dropped on an error before its commit, the
                // connection goes and the transaction with it).
                let mut conn = self.pool.acquire().await?;
                let mut tx = conn.begin().await?;
                let settled = sqlx::query(sql::SETTLE_DEAD)
                    .bind(id)
                    .bind(owner)
                    .bind(error)
                    .bind(*at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if settled != 1 {
                    tx.rollback().await?;
                    conn.release();
                    return Ok(false);
                }
                sqlx::query(sql::USER_SUPPRESS)
                    .bind(id)
                    .bind(*at)
                    .bind(error)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::AUDIT_SUPPRESSED)
                    .bind(id)
                    .bind(*at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                conn.release();
                return Ok(true);
            }
            Settlement::Dead { error, at, .. } => sqlx::query(sql::SETTLE_DEAD)
                .bind(id)
                .bind(owner)
                .bind(error)
                .bind(*at),
        };
        Ok(self.execute(query).await? == 1)
    }

    async fn extend_lease(&self, id: i64, owner: &str, until: UnixMillis) -> Result<bool> {
        let done = self
            .execute(
                sqlx::query(sql::LEASE_EXTEND)
                    .bind(id)
                    .bind(owner)
                    .bind(until),
            )
            .await?;
        Ok(done == 1)
    }

    async fn end_leases(&self, _now: UnixMillis) -> Result<u64> {
        Err(StoreError::Unsupported(
            "on PostgreSQL other processes may hold leases; they end on their own".into(),
        ))
    }

    async fn requeue_dead(&self, id: i64, now: UnixMillis) -> Result<bool> {
        let done = self
            .execute(sqlx::query(sql::REQUEUE_DEAD).bind(id).bind(now))
            .await?;
        Ok(done == 1)
    }

    async fn outbox_message(&self, id: i64) -> Result<Option<OutboxStatus>> {
        let row = self
            .optional(sqlx::query(sql::OUTBOX_STATUS).bind(id))
            .await?;
        row.as_ref().map(rows::outbox_status).transpose()
    }

    async fn list_outbox(
        &self,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>> {
        let found = self
            .all(
                sqlx::query(sql::OUTBOX_LIST)
                    .bind(state.map(OutboxState::as_str))
                    .bind(i64::from(limit)),
            )
            .await?;
        found.iter().map(rows::outbox_status).collect()
    }

    async fn outbox_for(
        &self,
        user: Option<UserId>,
        request_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxStatus>> {
        let found = self
            .all(
                sqlx::query(sql::OUTBOX_FOR)
                    .bind(user.map(|u| u.0))
                    .bind(request_id)
                    .bind(i64::from(limit)),
            )
            .await?;
        found.iter().map(rows::outbox_status).collect()
    }

    async fn outbox_depth(&self) -> Result<Vec<(OutboxState, u64)>> {
        self.depth(sql::OUTBOX_DEPTH).await
    }

    async fn outbox_unsent_depth(&self) -> Result<Vec<(OutboxState, u64)>> {
        self.depth(sql::OUTBOX_UNSENT).await
    }

    async fn next_outbox_due(&self) -> Result<Option<UnixMillis>> {
        let row = self.one(sqlx::query(sql::OUTBOX_NEXT_DUE)).await?;
        Ok(row.try_get(0)?)
    }
}
