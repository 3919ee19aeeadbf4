//! The audit log, read back for an operator (`pwmail audit list`).

use pwmail_store::{AuditFilter, AuditRecord, OutcomeFilter, Store, UnixMillis};

use crate::app::AppError;
use crate::app::users::find;

/// Which rows an operator asks for, as they name them.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Rows where the user with this email acted or was acted on.
    pub user: Option<String>,
    pub request_id: Option<String>,
    pub since: Option<UnixMillis>,
    pub until: Option<UnixMillis>,
    pub outcome: Option<OutcomeFilter>,
    pub limit: u32,
}

/// Matching rows, newest first. `user` matches the user with that email
/// and refusals asked for the address when no user had it; an address that
/// is neither a user's nor in any row is an error, not an empty answer, so
/// a typo is not mistaken for "nothing happened".
pub async fn list(store: &dyn Store, query: &AuditQuery) -> Result<Vec<AuditRecord>, AppError> {
    if let (Some(since), Some(until)) = (query.since, query.until)
        && since >= until
    {
        return Err(AppError::Invalid(
            "--since must be before --until".to_string(),
        ));
    }
    let user = match &query.user {
        Some(email) => match find(store, email).await {
            Ok(user) => Some(user.id),
            Err(AppError::NoSuchUser(_)) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    let rows = store
        .list_audit(&AuditFilter {
            user,
            request_id: query.request_id.clone(),
            since: query.since,
            until: query.until,
            address: query.user.as_deref().map(pwmail_store::email_key),
            outcome: query.outcome,
            limit: query.limit,
        })
        .await?;
    match &query.user {
        Some(email) if user.is_none() && rows.is_empty() => Err(AppError::NoSuchUser(format!(
            "{email} (and no audit row asked for that address)"
        ))),
        _ => Ok(rows),
    }
}
