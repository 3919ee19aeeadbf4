//! Users and their API tokens.
//!
//! The trait, and each engine's implementation beside it: `sqlite.rs`
//! and `postgres.rs` are modules of their engine (declared there with
//! `#[path]`, so they reach its private helpers) kept here, side by side.

use async_trait::async_trait;

use crate::*;

#[async_trait]
pub trait Users: Send + Sync {
    async fn create_user(&self, user: &NewUser, now: UnixMillis) -> Result<User>;

    async fn list_users(&self) -> Result<Vec<User>>;

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>>;

    /// Case-insensitive lookup.
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>>;

    /// Admins ever created, disabled ones included.
    async fn count_admins(&self) -> Result<u64>;

    /// Disables the user and revokes their API tokens and open links.
    async fn disable_user(&self, email: &str, now: UnixMillis) -> Result<User>;

    /// Changes the user with `email` as `change` says, in one transaction
    /// with its consequences (a new address revokes open links and lifts a
    /// suppression; disabling revokes tokens and open links) and an audit
    /// row per change (`change.audited`). The user before and after.
    async fn update_user(
        &self,
        email: &str,
        change: &UserChange,
        now: UnixMillis,
        request_id: &str,
    ) -> Result<(User, User)>;

    /// Deletes the user with `email`, their API tokens, links and unsent
    /// emails (their sent and dead ones stay without them); audit rows
    /// about and by them stay, keeping the address (as `email_key` writes
    /// it, as a refusal's row does); one audit row
    /// `user_deleted`. One transaction. `NotFound` if there is no such user.
    async fn delete_user(
        &self,
        email: &str,
        now: UnixMillis,
        request_id: &str,
    ) -> Result<DeletedUser>;

    /// Lifts the suppression of the user with `email` (deliverable again)
    /// and audits it under `request_id`; the user as they are now.
    /// `NotFound` if no such user is suppressed.
    async fn unsuppress_user(&self, email: &str, now: UnixMillis, request_id: &str)
    -> Result<User>;

    /// The stored password hash (PHC string), if the user has a valid one.
    async fn password_hash(&self, user: UserId) -> Result<Option<String>>;

    /// Records whether mail can be addressed to the user's stored address.
    async fn set_deliverable(&self, user: UserId, deliverable: bool) -> Result<()>;

    /// Users whose stored address was never checked: written before the
    /// column existed, or by an older replica.
    async fn unchecked_addresses(&self) -> Result<Vec<(UserId, String)>>;

    /// Checks the addresses [`unchecked_addresses`](Users::unchecked_addresses)
    /// lists with `deliverable` (the mail builder's check, which the store
    /// cannot make) and records each answer. Returns how many mail cannot
    /// reach. Run before the service issues links (`pwmail serve`, `pwmail
    /// migrate`); once every row is checked it reads nothing but the index.
    async fn check_addresses(
        &self,
        deliverable: &(dyn for<'e> Fn(&'e str) -> bool + Sync),
    ) -> Result<u64> {
        let mut unreachable = 0;
        for (user, email) in self.unchecked_addresses().await? {
            let checked = deliverable(&email);
            self.set_deliverable(user, checked).await?;
            unreachable += u64::from(!checked);
        }
        Ok(unreachable)
    }

    async fn create_api_token(
        &self,
        user: UserId,
        hash: &TokenHash,
        label: &str,
        reveal_links: bool,
        now: UnixMillis,
    ) -> Result<ApiTokenInfo>;

    async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenInfo>>;

    /// Returns whether a live token was revoked.
    async fn revoke_api_token(&self, id: i64, now: UnixMillis) -> Result<bool>;

    /// The live token with this hash and its enabled owner.
    async fn authenticate(&self, hash: &TokenHash) -> Result<Option<Authenticated>>;
}
