//! Operator actions: users, their API tokens and passwords, dead
//! messages, and the admin created on first start.

use pwmail_store::{
    ApiTokenInfo, MessageKind, NewUser, OutboxState, OutboxStatus, Store, StoreError, UnixMillis,
    User,
};

use crate::app::{AppError, validate};
use crate::secrets::password::{Hasher, normalize};
use crate::secrets::{self, Secret};

/// A user to add, as the operator wrote it.
#[derive(Clone, Debug, Default)]
pub struct UserDraft {
    pub email: String,
    pub name: Option<String>,
    /// A BCP 47 tag.
    pub locale: Option<String>,
}

impl UserDraft {
    /// The user to store: address, name and locale checked, the locale in
    /// its canonical spelling.
    pub fn checked(&self, is_admin: bool) -> Result<NewUser, AppError> {
        validate::email(&self.email)?;
        if let Some(name) = &self.name {
            validate::name(name)?;
        }
        Ok(NewUser {
            email: self.email.clone(),
            name: self.name.clone(),
            is_admin,
            deliverable: validate::deliverable(self.email.trim()).is_ok(),
            locale: self.locale.as_deref().map(validate::locale).transpose()?,
        })
    }
}

pub async fn add_user(
    store: &dyn Store,
    email: &str,
    is_admin: bool,
    name: Option<&str>,
    now: UnixMillis,
) -> Result<User, AppError> {
    let draft = UserDraft {
        email: email.to_string(),
        name: name.map(str::to_string),
        locale: None,
    };
    add(store, &draft, is_admin, now).await
}

/// Adds the user `draft` describes.
pub async fn add(
    store: &dyn Store,
    draft: &UserDraft,
    is_admin: bool,
    now: UnixMillis,
) -> Result<User, AppError> {
    match store.create_user(&draft.checked(is_admin)?, now).await {
        // Say what the existing user is, when that explains the refusal.
        Err(StoreError::Conflict(said)) => {
            let existing = store.find_user_by_email(&draft.email).await.ok().flatten();
            Err(StoreError::Conflict(match existing {
                Some(user) if user.disabled => format!("{said} (disabled)"),
                _ => said,
            })
            .into())
        }
        other => Ok(other?),
    }
}

/// How an import went.
#[derive(Debug, PartialEq, Eq)]
pub struct Imported {
    pub added: usize,
    /// Addresses that already had a user (case-insensitively).
    pub present: usize,
}

/// Adds many users. Every address is checked before any is added, so a bad
/// line changes nothing; then users are created many at a time (each its
/// own transaction, which SQLite commits in groups).
pub async fn import_users(
    store: &dyn Store,
    rows: &[UserDraft],
    now: UnixMillis,
) -> Result<Imported, AppError> {
    use futures::StreamExt as _;
    let users = rows
        .iter()
        .map(|row| row.checked(false))
        .collect::<Result<Vec<NewUser>, AppError>>()?;
    let results: Vec<Result<User, StoreError>> = futures::stream::iter(&users)
        .map(|user| async move { store.create_user(user, now).await })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut imported = Imported {
        added: 0,
        present: 0,
    };
    for result in results {
        match result {
            Ok(_) => imported.added += 1,
            Err(StoreError::Conflict(_)) => imported.present += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(imported)
}

/// The user with this email (case-insensitively).
pub async fn find(store: &dyn Store, email: &str) -> Result<User, AppError> {
    store
        .find_user_by_email(email)
        .await?
        .ok_or_else(|| AppError::NoSuchUser(email.to_string()))
}

/// A new API token for the user; the plain text exists only in the result.
/// `reveal_links`: it may ask for a link in an API answer instead of an
/// email, which lets its holder act as the user.
pub async fn create_token(
    store: &dyn Store,
    email: &str,
    label: &str,
    reveal_links: bool,
    now: UnixMillis,
) -> Result<Secret, AppError> {
    let user = find(store, email).await?;
    let secret = secrets::new_api_token()?;
    store
        .create_api_token(user.id, &secret.hash(), label, reveal_links, now)
        .await?;
    Ok(secret)
}

pub async fn list_tokens(store: &dyn Store, email: &str) -> Result<Vec<ApiTokenInfo>, AppError> {
    let user = find(store, email).await?;
    Ok(store.list_api_tokens(user.id).await?)
}

pub async fn revoke_token(store: &dyn Store, id: i64, now: UnixMillis) -> Result<(), AppError> {
    if store.revoke_api_token(id, now).await? {
        Ok(())
    } else {
        Err(AppError::NoSuchToken(id))
    }
}

pub async fn disable_user(
    store: &dyn Store,
    email: &str,
    now: UnixMillis,
) -> Result<User, AppError> {
    match store.disable_user(email, now).await {
        Err(StoreError::NotFound(_)) => Err(AppError::NoSuchUser(email.to_string())),
        other => Ok(other?),
    }
}

/// What an operator asks to change of a user (`pwmail user update`).
#[derive(Debug, Default)]
pub struct UserUpdate {
    /// A new name; `Some(None)` removes it.
    pub name: Option<Option<String>>,
    pub email: Option<String>,
    /// A new locale (any BCP 47 tag; stored in its canonical spelling);
    /// `Some(None)` goes back to the server's default.
    pub locale: Option<Option<String>>,
    pub admin: Option<bool>,
    pub enabled: Option<bool>,
}

/// Changes the user with `email` (checked as `user add` checks; audited as
/// `request_id`): the user before and after.
pub async fn update(
    store: &dyn Store,
    email: &str,
    update: &UserUpdate,
    now: UnixMillis,
    request_id: &str,
) -> Result<(User, User), AppError> {
    if let Some(Some(name)) = &update.name {
        validate::name(name)?;
    }
    let new_email = match &update.email {
        Some(new) => {
            validate::email(new)?;
            Some((
                new.trim().to_string(),
                validate::deliverable(new.trim()).is_ok(),
            ))
        }
        None => None,
    };
    let locale = match &update.locale {
        Some(Some(tag)) => Some(Some(validate::locale(tag)?)),
        Some(None) => Some(None),
        None => None,
    };
    let change = pwmail_store::UserChange {
        name: update.name.clone(),
        email: new_email,
        locale,
        admin: update.admin,
        enabled: update.enabled,
    };
    match store.update_user(email, &change, now, request_id).await {
        Err(StoreError::NotFound(_)) => Err(AppError::NoSuchUser(email.to_string())),
        Err(StoreError::Conflict(_)) => Err(StoreError::Conflict(format!(
            "a user with email {} already exists",
            update.email.as_deref().unwrap_or_default()
        ))
        .into()),
        other => Ok(other?),
    }
}

/// Lifts the suppression of `email` (audited as `request_id`): the
/// suppression that was lifted.
pub async fn unsuppress(
    store: &dyn Store,
    email: &str,
    now: UnixMillis,
    request_id: &str,
) -> Result<pwmail_store::Suppression, AppError> {
    let user = find(store, email).await?;
    let Some(suppression) = user.suppressed else {
        return Err(AppError::NotSuppressed(user.email));
    };
    match store.unsuppress_user(email, now, request_id).await {
        Err(StoreError::NotFound(_)) => Err(AppError::NotSuppressed(user.email)),
        other => other.map(|_| suppression).map_err(AppError::from),
    }
}

/// Deletes a user with their tokens, links and unsent emails (see
/// `Users::delete_user`); never the only admin.
pub async fn delete(
    store: &dyn Store,
    email: &str,
    now: UnixMillis,
    request_id: &str,
) -> Result<pwmail_store::DeletedUser, AppError> {
    let user = find(store, email).await?;
    if user.is_admin && store.count_admins().await? <= 1 {
        return Err(AppError::LastAdmin(user.email));
    }
    Ok(store.delete_user(email, now, request_id).await?)
}

/// Whether `password` is the user's current password: its NFKC form, or
/// as typed (hashes set before passwords were normalised).
pub async fn check_password(
    store: &dyn Store,
    user: &User,
    password: String,
) -> Result<bool, AppError> {
    let Some(phc) = store.password_hash(user.id).await? else {
        return Ok(false);
    };
    let hasher = Hasher::new(1, 0);
    let normalized = normalize(&password);
    if hasher.verify(normalized.clone(), phc.clone()).await? {
        return Ok(true);
    }
    Ok(normalized != password && hasher.verify(password, phc).await?)
}

/// Every user, oldest first.
pub async fn list(store: &dyn Store) -> Result<Vec<User>, AppError> {
    Ok(store.list_users().await?)
}

/// Outbox messages, newest first, in one state or all.
pub async fn outbox(
    store: &dyn Store,
    state: Option<OutboxState>,
    limit: u32,
) -> Result<Vec<OutboxStatus>, AppError> {
    Ok(store.list_outbox(state, limit).await?)
}

/// One outbox message's delivery status.
pub async fn outbox_message(store: &dyn Store, id: i64) -> Result<OutboxStatus, AppError> {
    store
        .outbox_message(id)
        .await?
        .ok_or(AppError::NoSuchMessage(id))
}

/// Ends every lease now (a process that holds the database alone, where a
/// lease can only be one a dead process left); returns how many.
pub async fn end_abandoned_leases(store: &dyn Store, now: UnixMillis) -> Result<u64, AppError> {
    Ok(store.end_leases(now).await?)
}

/// Queues a dead message again with a fresh attempt budget. Only notices
/// can be: a link email's link was revoked when it was given up.
pub async fn retry_dead(store: &dyn Store, id: i64, now: UnixMillis) -> Result<(), AppError> {
    let message = outbox_message(store, id).await?;
    if message.state == OutboxState::Dead && message.kind != MessageKind::PasswordChanged {
        return Err(AppError::DeadLinkEmail {
            id,
            recipient: message.recipient,
        });
    }
    if store.requeue_dead(id, now).await? {
        Ok(())
    } else {
        Err(AppError::NotDead(id))
    }
}

/// Records, for every user, whether mail can reach their stored address
/// (users added before addresses were checked as the mail builder checks
/// them); run before the service issues links. Returns how many changed.
pub async fn check_addresses(store: &dyn Store) -> Result<u64, AppError> {
    let deliverable = |email: &str| validate::deliverable(email).is_ok();
    Ok(store.check_addresses(&deliverable).await?)
}

/// The admin created on first start, whose token is shown once.
pub struct Bootstrap {
    pub email: String,
    pub token: Secret,
}

/// On first start with no admin (an empty database, or one with only users
/// added before the first `serve`), an admin with one API token.
pub async fn bootstrap_admin(
    store: &dyn Store,
    email: &str,
    now: UnixMillis,
) -> Result<Option<Bootstrap>, AppError> {
    if store.count_admins().await? > 0 {
        return Ok(None);
    }
    let user = match add_user(store, email, true, Some("Bootstrap admin"), now).await {
        Ok(user) => user,
        // Another replica won the race.
        Err(AppError::Store(StoreError::Conflict(_))) => return Ok(None),
        Err(e) => return Err(e),
    };
    let token = create_token(store, &user.email, "bootstrap", false, now).await?;
    Ok(Some(Bootstrap {
        email: user.email,
        token,
    }))
}
