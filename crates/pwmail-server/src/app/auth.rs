//! Who may call the admin operations: the live API token of an enabled admin.

use pwmail_store::{Authenticated, Store};

use crate::app::AppError;
use crate::secrets;

/// Authenticates the caller by its API token and requires the admin role.
pub async fn admin(store: &dyn Store, token: &str) -> Result<Authenticated, AppError> {
    if !secrets::is_api_token_shaped(token) {
        return Err(AppError::BadToken);
    }
    // Lookup is by SHA-256 of the token: what the database compares is a hash,
    // so timing reveals nothing about the token itself.
    let caller = store
        .authenticate(&secrets::hash(token))
        .await?
        .ok_or(AppError::BadToken)?;
    if !caller.user.is_admin {
        return Err(AppError::NotAdmin);
    }
    Ok(caller)
}
