//! Links on PostgreSQL (a module of `crate::postgres`, kept beside the trait).

use super::*;

#[async_trait]
impl Links for PgStore {
    async fn find_addressee(
        &self,
        email: &str,
        caller: &RateKey,
        rate: &Rate,
        now: UnixMillis,
    ) -> Result<Addressee> {
        let targets = self
            .targets
            .get_or_init(|| group::Groups::start(Arc::clone(&self.pool)));
        targets
            .call(target::Target {
                caller: caller.to_string(),
                rate: *rate,
                email_key: email_key(email),
                now,
            })
            .await
    }

    async fn issue_unkeyed_call(&self, call: &IssueCall) -> Result<CallOutcome> {
        let groups = self
            .by_address
            .get_or_init(|| group::Groups::start(Arc::clone(&self.pool)));
        groups.call(addressed::call(call)).await
    }

    async fn complete_reset(&self, reset: &CompleteReset) -> Result<ResetOutcome> {
        // Dropped on an error before its commit, the connection goes and
        // the transaction with it.
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let consumed: Option<i64> = sqlx::query_scalar(sql::LINK_CONSUME_USER)
            .bind(&reset.link_hash.0[..])
            .bind(reset.now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(user) = consumed.map(UserId) else {
            tx.rollback().await?;
            conn.release();
            return Ok(ResetOutcome::LinkUnusable);
        };
        let updated = sqlx::query(sql::PASSWORD_SET)
            .bind(user.0)
            .bind(&reset.password_phc)
            .bind(reset.now)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() != 1 {
            tx.rollback().await?;
            conn.release();
            return Ok(ResetOutcome::LinkUnusable);
        }
        sqlx::query(sql::LINKS_REVOKE_OPEN)
            .bind(user.0)
            .bind(reset.now)
            .execute(&mut *tx)
            .await?;
        let outbox_id =
            insert_message(&mut tx, &reset.notice, reset.now, &reset.request_id, user).await?;
        sqlx::query(sql::AUDIT_PASSWORD_CHANGED)
            .bind(reset.now)
            .bind(user.0)
            .bind(&reset.request_id)
            .bind(outbox_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        conn.release();
        Ok(ResetOutcome::Changed { user, outbox_id })
    }

    async fn issue_link(&self, issue: &IssueLink) -> Result<IssueOutcome> {
        // The caller's rate first, on its own, committed without an fsync
        // (see RATE_LIMIT): inside the issue transaction its hot row would
        // stay locked through that transaction's fsync.
        if let CallerCharge::Pending(rate) = &issue.caller {
            let caller = RateKey::ApiToken(issue.actor.token_id);
            if let Admission::Refused { retry_after_ms } =
                self.rate_limit(&caller, rate, issue.now).await?
            {
                return Ok(IssueOutcome::Throttled { retry_after_ms });
            }
        }
        // Then one round trip, with the other calls waiting (see `issue`);
        // a call with an Idempotency-Key (or revealing its link) on its own, the key's lock and row
        // around the same rules (`pwmail_issue_link`, migration 0007).
        // A call revealing its link goes alone too: it is rare, and the
        // single function keeps its key's row without an outbox id.
        if issue.idempotency.is_none() && !issue.reveal {
            let issues = self
                .issues
                .get_or_init(|| group::Groups::start(Arc::clone(&self.pool)));
            return issues.call(issue.clone()).await;
        }
        let (period, tau) = gcra::params(&issue.cooldown);
        let mut conn = self.pool.acquire().await?;
        let (call, user) = record::issue(1, issue);
        let row = sqlx::query(
            "SELECT outcome, link_id, outbox_id, retry_after_ms, stored_fingerprint,
                    stored_request_id
             FROM pwmail_issue_link($1, $2, $3, $4)",
        )
        .bind(call)
        .bind(user)
        .bind(period)
        .bind(tau)
        .fetch_one(&mut *conn)
        .await;
        let row = match row {
            Ok(row) => {
                conn.release();
                row
            }
            // Raised after the writes if a live row held the key: all rolled back.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("PWM01") => {
                return Ok(IssueOutcome::KeyInFlight);
            }
            Err(e) => return Err(e.into()),
        };
        match issue::Outcome::of(&row)? {
            issue::Outcome::KeyInFlight => Ok(IssueOutcome::KeyInFlight),
            issue::Outcome::Stored => {
                let stored = StoredOutcome {
                    fingerprint: row.try_get("stored_fingerprint")?,
                    outbox_id: row.try_get("outbox_id")?,
                    request_id: row.try_get("stored_request_id")?,
                };
                match issue.idempotency.as_ref() {
                    Some(idem) => Ok(stored.outcome_for(idem)),
                    None => Err(StoreError::Corrupt(
                        "a stored outcome for a call without a key".into(),
                    )),
                }
            }
            _ => issue::outcome(&row, issue.target),
        }
    }

    async fn find_link(&self, hash: &TokenHash) -> Result<Option<ResetLink>> {
        let row = self
            .optional(sqlx::query(sql::LINK_BY_HASH).bind(&hash.0[..]))
            .await?;
        row.as_ref().map(rows::link).transpose()
    }

    async fn mark_link_opened(&self, link: i64, now: UnixMillis) -> Result<bool> {
        let done = self
            .execute(sqlx::query(sql::LINK_OPENED).bind(link).bind(now))
            .await?;
        Ok(done == 1)
    }
}
