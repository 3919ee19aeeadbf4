//! Operator actions behind the `pwmail user …` and `pwmail token …` commands.

use pwmail_store::{ApiTokenInfo, NewUser, Store, StoreError, UnixMillis, User};
use pwmail_types::SendPasswordEmailRequestEmail;

use crate::token::{self, Secret};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("invalid email {email:?}: {reason}")]
    InvalidEmail { email: String, reason: String },
    #[error("no user with email {0}")]
    NoSuchUser(String),
    #[error("no live API token with id {0}")]
    NoSuchToken(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no randomness from the OS: {0}")]
    Random(#[from] getrandom::Error),
}

/// Emails obey the same rule as the API's, taken from the generated type, so
/// every user can be the target of SendPasswordEmail.
pub fn check_email(email: &str) -> Result<(), AdminError> {
    SendPasswordEmailRequestEmail::try_from(email)
        .map(|_| ())
        .map_err(|e| AdminError::InvalidEmail {
            email: email.to_string(),
            reason: e.to_string(),
        })
}

pub async fn add_user(
    store: &dyn Store,
    email: &str,
    is_admin: bool,
    name: Option<&str>,
    now: UnixMillis,
) -> Result<User, AdminError> {
    check_email(email)?;
    let user = NewUser {
        email: email.to_string(),
        name: name.map(str::to_string),
        is_admin,
    };
    Ok(store.create_user(&user, now).await?)
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
    emails: &[String],
    now: UnixMillis,
) -> Result<Imported, AdminError> {
    use futures::StreamExt as _;
    for email in emails {
        check_email(email)?;
    }
    let results: Vec<Result<User, StoreError>> = futures::stream::iter(emails)
        .map(|email| {
            let user = NewUser {
                email: email.clone(),
                name: None,
                is_admin: false,
            };
            async move { store.create_user(&user, now).await }
        })
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

async fn user(store: &dyn Store, email: &str) -> Result<User, AdminError> {
    store
        .find_user_by_email(email)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(email.to_string()))
}

/// A new API token for the user; the plain text exists only in the result.
pub async fn create_token(
    store: &dyn Store,
    email: &str,
    label: &str,
    now: UnixMillis,
) -> Result<Secret, AdminError> {
    let user = user(store, email).await?;
    let secret = token::new_api_token()?;
    store
        .create_api_token(user.id, &secret.hash(), label, now)
        .await?;
    Ok(secret)
}

pub async fn list_tokens(store: &dyn Store, email: &str) -> Result<Vec<ApiTokenInfo>, AdminError> {
    let user = user(store, email).await?;
    Ok(store.list_api_tokens(user.id).await?)
}

pub async fn revoke_token(store: &dyn Store, id: i64, now: UnixMillis) -> Result<(), AdminError> {
    if store.revoke_api_token(id, now).await? {
        Ok(())
    } else {
        Err(AdminError::NoSuchToken(id))
    }
}

pub async fn disable_user(
    store: &dyn Store,
    email: &str,
    now: UnixMillis,
) -> Result<User, AdminError> {
    match store.disable_user(email, now).await {
        Err(StoreError::NotFound(_)) => Err(AdminError::NoSuchUser(email.to_string())),
        other => Ok(other?),
    }
}
