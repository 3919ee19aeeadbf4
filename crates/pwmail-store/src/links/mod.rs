//! Reset links: an admin call's issue, the reset page's completion, and the link by its hash.
//!
//! The trait, and each engine's implementation beside it: `sqlite.rs`
//! and `postgres.rs` are modules of their engine (declared there with
//! `#[path]`, so they reach its private helpers) kept here, side by side.

use async_trait::async_trait;

use crate::*;

#[async_trait]
pub trait Links: Users + Limits {
    /// The first step of an admin call that names a user: the user with
    /// this address, and the caller's rate (`caller`, `rate`) either charged
    /// here or left for [`issue_link`](Links::issue_link) to charge (see
    /// [`CallerCharge`]). This default only looks the user up.
    async fn find_addressee(
        &self,
        email: &str,
        caller: &RateKey,
        rate: &Rate,
        now: UnixMillis,
    ) -> Result<Addressee> {
        let _ = (caller, now);
        let charge = CallerCharge::Pending(*rate);
        Ok(match self.find_user_by_email(email).await? {
            Some(user) => Addressee::Found { user, charge },
            None => Addressee::Missing { charge },
        })
    }

    /// An admin call by address, whole: the caller's step of its rate, the
    /// user, and, where mail can reach the user's stored address, the issue;
    /// one typed outcome ([`CallOutcome`]). A call with an Idempotency-Key
    /// takes two steps (`find_addressee`, then `issue_link`), so that its
    /// stored outcome answers it before any charge; the others one
    /// ([`issue_unkeyed_call`](Links::issue_unkeyed_call)).
    async fn issue_call(&self, call: &IssueCall) -> Result<CallOutcome> {
        // A call revealing its link takes the two steps too: it is rare,
        // and the engines' one-step paths batch emails.
        if call.link.idempotency.is_some() || call.link.reveal {
            return issue_keyed_call(self, call).await;
        }
        self.issue_unkeyed_call(call).await
    }

    /// [`issue_call`](Links::issue_call) for a call without an
    /// Idempotency-Key, in one round trip to the database or the writer.
    async fn issue_unkeyed_call(&self, call: &IssueCall) -> Result<CallOutcome>;

    /// The admin operations' one transaction: per-user cooldown, revoke the
    /// user's open links, store the new link, (for ResetPasswordByAdmin)
    /// invalidate the password, queue the email, write the audit row.
    async fn issue_link(&self, issue: &IssueLink) -> Result<IssueOutcome>;

    /// The reset page's one transaction: consume the link (atomically: open,
    /// unexpired, unused), set the password hash, revoke the user's other
    /// links, queue the "password changed" notice, write the audit row.
    async fn complete_reset(&self, reset: &CompleteReset) -> Result<ResetOutcome>;

    /// The link with this hash, whatever its state; for the reset page and tests.
    async fn find_link(&self, hash: &TokenHash) -> Result<Option<ResetLink>>;

    /// The first time the link's page was opened (with its `link.opened`
    /// event, when events are on); false if it had been opened before.
    async fn mark_link_opened(&self, link: i64, now: UnixMillis) -> Result<bool>;
}

/// [`Links::issue_call`] as two calls: the lookup with the caller's
/// step, then the issue where mail can reach the user's stored address.
pub(crate) async fn issue_keyed_call<S: Links + ?Sized>(
    store: &S,
    call: &IssueCall,
) -> Result<CallOutcome> {
    let link = &call.link;
    let caller = RateKey::ApiToken(link.actor.token_id);
    let target = store
        .find_addressee(&call.email, &caller, &call.caller_rate, link.now)
        .await?;
    // A call that ends before the issue still takes its step of the
    // caller's rate, if the lookup left it pending.
    let charged = |charge| async move {
        Ok::<_, StoreError>(match charge {
            CallerCharge::Charged => Admission::Admitted,
            CallerCharge::Pending(rate) => store.rate_limit(&caller, &rate, link.now).await?,
        })
    };
    Ok(match target {
        Addressee::Throttled { retry_after_ms } => CallOutcome::Throttled { retry_after_ms },
        Addressee::Found { user, charge } if user.deliverable => {
            let outcome = store.issue_link(&link.issue_for(&user, charge)).await?;
            CallOutcome::Issued {
                user: user.id,
                outcome,
            }
        }
        Addressee::Found { user, charge } => match charged(charge).await? {
            Admission::Admitted => CallOutcome::Undeliverable { user: user.id },
            Admission::Refused { retry_after_ms } => CallOutcome::Throttled { retry_after_ms },
        },
        Addressee::Missing { charge } => match charged(charge).await? {
            Admission::Admitted => CallOutcome::NoSuchUser,
            Admission::Refused { retry_after_ms } => CallOutcome::Throttled { retry_after_ms },
        },
    })
}
