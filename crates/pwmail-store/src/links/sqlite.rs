//! Links on SQLite (a module of `crate::sqlite`, kept beside the trait).

use super::*;

#[async_trait]
impl Links for SqliteStore {
    async fn complete_reset(&self, reset: &CompleteReset) -> Result<ResetOutcome> {
        let reset = reset.clone();
        self.writer
            .write(move |sp| complete_reset_in(sp, &reset))
            .await
    }

    async fn issue_unkeyed_call(&self, call: &IssueCall) -> Result<CallOutcome> {
        let call = call.clone();
        self.writer.write(move |sp| address_in(sp, &call)).await
    }

    async fn issue_link(&self, issue: &IssueLink) -> Result<IssueOutcome> {
        let issue = issue.clone();
        self.writer.write(move |sp| issue_in(sp, &issue)).await
    }

    async fn find_link(&self, hash: &TokenHash) -> Result<Option<ResetLink>> {
        self.read(|c| one(c, sql::LINK_BY_HASH, [&hash.0[..]], |row| rows::link(row)))
    }

    async fn mark_link_opened(&self, link: i64, now: UnixMillis) -> Result<bool> {
        // One UPDATE (its trigger's writes undo with it).
        self.writer
            .write_statement(move |c| Ok(exec(c, sql::LINK_OPENED, params![link, now])? == 1))
            .await
    }
}

/// The calling API token's step of its rate.
fn charge_caller(c: &Connection, token_id: i64, rate: &Rate, now: UnixMillis) -> Result<Admission> {
    gcra(c, &RateKey::ApiToken(token_id).to_string(), rate, now)
}

/// An admin call by address, whole, on the writer: the user is read in the
/// write's own transaction, for less than a read connection's lookup
/// costs (its lock, its read transaction, its statement).
fn address_in(sp: &Savepoint<'_>, call: &IssueCall) -> Result<CallOutcome> {
    let c: &Connection = sp;
    let key = email_key(&call.email);
    let user = one(c, sql::USER_BY_EMAIL_KEY, [key], |row| rows::user(row))?;
    let link = &call.link;
    let stopped = |admitted| {
        Ok(
            match charge_caller(c, link.actor.token_id, &call.caller_rate, link.now)? {
                Admission::Admitted => admitted,
                Admission::Refused { retry_after_ms } => CallOutcome::Throttled { retry_after_ms },
            },
        )
    };
    match user {
        // Charged in the issue, after the idempotency check.
        Some(user) if user.deliverable => Ok(CallOutcome::Issued {
            outcome: issue_in(
                sp,
                &link.issue_for(&user, CallerCharge::Pending(call.caller_rate)),
            )?,
            user: user.id,
        }),
        Some(user) => stopped(CallOutcome::Undeliverable { user: user.id }),
        None => stopped(CallOutcome::NoSuchUser),
    }
}

/// The issue transaction, statement by statement (PostgreSQL's
/// pwmail_issue_links makes the same changes in one statement). Refusals
/// come before any write but the caller's rate charge.
fn issue_in(sp: &Savepoint<'_>, issue: &IssueLink) -> Result<IssueOutcome> {
    let c: &Connection = sp;
    if let Some(idem) = &issue.idempotency {
        // One writer runs one write at a time: an earlier call with this key
        // has committed, or has not started.
        let stored = find_key(c, issue.actor.token_id, issue.purpose, &idem.key, issue.now)?;
        if let Some(stored) = stored {
            return Ok(stored.outcome_for(idem));
        }
    }
    // In the call's transaction: SQLite's one writer serialises the
    // token's calls anyway, and one round trip to the writer is half the
    // wait for group commits of two.
    if let CallerCharge::Pending(rate) = &issue.caller
        && let Admission::Refused { retry_after_ms } =
            charge_caller(c, issue.actor.token_id, rate, issue.now)?
    {
        return Ok(IssueOutcome::Throttled { retry_after_ms });
    }
    let disabled: Option<Option<i64>> = scalar(c, sql::USER_DISABLED_AT, params![issue.target.0])?;
    match disabled {
        None => return Err(StoreError::NotFound(format!("no user {}", issue.target))),
        Some(Some(_)) => return Ok(IssueOutcome::Disabled),
        Some(None) => {}
    }
    let key = RateKey::User(issue.target).to_string();
    if let Admission::Refused { retry_after_ms } = gcra(c, &key, &issue.cooldown, issue.now)? {
        return Ok(IssueOutcome::CoolingDown { retry_after_ms });
    }
    revoke_open_links(c, issue.target, issue.now)?;
    exec(
        c,
        sql::LINK_INSERT,
        params![
            issue.target.0,
            &issue.link_hash.0[..],
            issue.purpose.as_str(),
            issue.now,
            issue.expires_at,
            issue.request_id,
            rows::ContentColumns::of(&issue.message.content).options
        ],
    )?;
    let link_id = c.last_insert_rowid();
    if issue.purpose.invalidates_password() {
        exec(
            c,
            sql::PASSWORD_INVALIDATE,
            params![issue.target.0, issue.now],
        )?;
    }
    // A revealed link goes back in the answer: no email.
    let outbox_id = match issue.reveal {
        true => None,
        false => Some(insert_message(
            c,
            &issue.message,
            issue.now,
            &issue.request_id,
            issue.target,
        )?),
    };
    if let Some(idem) = &issue.idempotency {
        let stored = exec(
            c,
            sql::IDEMPOTENCY_STORE,
            params![
                issue.actor.token_id,
                issue.purpose.as_str(),
                idem.key,
                idem.fingerprint,
                outbox_id,
                issue.request_id,
                issue.now,
                idem.expires_at
            ],
        )?;
        if stored != 1 {
            sp.undo()?;
            return Ok(IssueOutcome::KeyInFlight);
        }
    }
    exec(
        c,
        sql::AUDIT_ISSUE,
        params![
            issue.now,
            issue.actor.user.0,
            issue.actor.token_id,
            issue.target.0,
            issue.purpose.as_str(),
            issue.request_id,
            outbox_id,
            issue.idempotency.as_ref().map(|i| i.key.as_str()),
            issue.reveal
        ],
    )?;
    Ok(match outbox_id {
        Some(outbox_id) => IssueOutcome::Issued { link_id, outbox_id },
        None => IssueOutcome::Revealed { link_id },
    })
}

/// The reset page's transaction.
fn complete_reset_in(sp: &Savepoint<'_>, reset: &CompleteReset) -> Result<ResetOutcome> {
    let c: &Connection = sp;
    let consumed: Option<i64> = scalar(
        c,
        sql::LINK_CONSUME_USER,
        params![&reset.link_hash.0[..], reset.now],
    )?;
    let Some(user) = consumed.map(UserId) else {
        return Ok(ResetOutcome::LinkUnusable);
    };
    let updated = exec(
        c,
        sql::PASSWORD_SET,
        params![user.0, reset.password_phc, reset.now],
    )?;
    if updated != 1 {
        // The owner was disabled: the link stays as it was.
        sp.undo()?;
        return Ok(ResetOutcome::LinkUnusable);
    }
    revoke_open_links(c, user, reset.now)?;
    let outbox_id = insert_message(c, &reset.notice, reset.now, &reset.request_id, user)?;
    exec(
        c,
        sql::AUDIT_PASSWORD_CHANGED,
        params![reset.now, user.0, reset.request_id, outbox_id],
    )?;
    Ok(ResetOutcome::Changed { user, outbox_id })
}
