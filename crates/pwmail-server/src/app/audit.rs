//! The audit log, read back for an operator (`pwmail audit list`).

use pwmail_store::{AuditFilter, AuditRecord, Store, UnixMillis};

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
    pub limit: u32,
}

/// Matching rows, newest first. An unknown `user` is an error, not an
/// empty answer, so a typo is not mistaken for "nothing happened".
pub async fn list(store: &dyn Store, query: &AuditQuery) -> Result<Vec<AuditRecord>, AppError> {
    if let (Some(since), Some(until)) = (query.since, query.until)
        && since >= until
    {
        return Err(AppError::Invalid(
            "--since must be before --until".to_string(),
        ));
    }
    let user = match &query.user {
        Some(email) => Some(find(store, email).await?.id),
        None => None,
    };
    Ok(store
        .list_audit(&AuditFilter {
            user,
            request_id: query.request_id.clone(),
            since: query.since,
            until: query.until,
            limit: query.limit,
        })
        .await?)
}
