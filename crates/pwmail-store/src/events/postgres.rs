//! Events on PostgreSQL (a module of `crate::postgres`, kept beside the trait).

use super::*;

static CLAIM_EVENTS: LazyLock<&'static str> = LazyLock::new(|| sql::claim_events_locked().leak());

#[async_trait]
impl Events for PgStore {
    async fn set_event_kinds(&self, kinds: &[EventKind]) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(sql::EVENT_KINDS_CLEAR)
            .execute(&mut *tx)
            .await?;
        for kind in kinds {
            sqlx::query(sql::EVENT_KIND_ADD)
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        conn.release();
        Ok(())
    }

    async fn event_kinds(&self) -> Result<Vec<EventKind>> {
        let found = self.all(sqlx::query(sql::EVENT_KINDS)).await?;
        let mut kinds = Vec::new();
        for row in &found {
            let name: String = row.try_get("kind")?;
            kinds.extend(EventKind::parse(&name));
        }
        Ok(kinds)
    }

    async fn claim_events(&self, claim: &Claim) -> Result<Vec<Event>> {
        let found = self
            .all(
                sqlx::query(*CLAIM_EVENTS)
                    .bind(&claim.owner)
                    .bind(claim.now)
                    .bind(claim.lease_ms)
                    .bind(i64::from(claim.limit)),
            )
            .await?;
        let mut claimed = found.iter().map(rows::event).collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|e| e.id);
        Ok(claimed)
    }

    async fn settle_event(&self, id: i64, owner: &str, outcome: &EventSettlement) -> Result<bool> {
        let query = match outcome {
            EventSettlement::Delivered => sqlx::query(sql::EVENT_DELIVERED).bind(id).bind(owner),
            EventSettlement::Retry {
                error,
                next_attempt_at,
            } => sqlx::query(sql::EVENT_RETRY)
                .bind(id)
                .bind(owner)
                .bind(error)
                .bind(*next_attempt_at),
            EventSettlement::Failed { error } => sqlx::query(sql::EVENT_FAILED)
                .bind(id)
                .bind(owner)
                .bind(error),
        };
        Ok(self.execute(query).await? == 1)
    }

    async fn end_event_leases(&self, _now: UnixMillis) -> Result<u64> {
        Err(StoreError::Unsupported(
            "on PostgreSQL other processes may hold leases; they end on their own".into(),
        ))
    }

    async fn retry_failed_events(&self, now: UnixMillis) -> Result<u64> {
        self.execute(sqlx::query(sql::EVENTS_RETRY_FAILED).bind(now))
            .await
    }

    async fn list_events(&self, state: Option<EventState>, limit: u32) -> Result<Vec<Event>> {
        let found = self
            .all(
                sqlx::query(sql::EVENTS_LIST)
                    .bind(state.map(EventState::as_str))
                    .bind(i64::from(limit)),
            )
            .await?;
        found.iter().map(rows::event).collect()
    }

    async fn event_depth(&self) -> Result<Vec<(EventState, u64)>> {
        let counts = self
            .all(sqlx::query(sql::EVENTS_DEPTH))
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<Vec<(String, i64)>>>()?;
        Ok(rows::event_depth(counts))
    }

    async fn next_event_due(&self) -> Result<Option<UnixMillis>> {
        let row = self.one(sqlx::query(sql::EVENTS_NEXT_DUE)).await?;
        Ok(row.try_get(0)?)
    }
}
