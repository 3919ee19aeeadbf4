//! Delivery status: what became of the emails sent to a user or queued by
//! one API call.

use pwmail_store::OutboxStatus;

use crate::app::{App, AppError, validate};

/// Most rows one status query returns.
pub const STATUS_LIMIT: u32 = 100;

/// Longest accepted request id, in characters.
pub const REQUEST_ID_MAX_CHARS: usize = 128;

impl App {
    /// Messages to the user with `email` and/or queued by the API call
    /// `request_id`, newest first.
    pub async fn email_status(
        &self,
        email: Option<&str>,
        request_id: Option<&str>,
    ) -> Result<Vec<OutboxStatus>, AppError> {
        let user = match email {
            None => None,
            Some(email) => {
                validate::email_pattern(email)?;
                let user = self
                    .store
                    .find_user_by_email(email)
                    .await?
                    .ok_or_else(|| AppError::NoSuchUser(email.to_string()))?;
                Some(user.id)
            }
        };
        if request_id.is_some_and(|r| r.chars().count() > REQUEST_ID_MAX_CHARS) {
            return Err(AppError::Invalid(format!(
                "request_id is longer than {REQUEST_ID_MAX_CHARS} characters"
            )));
        }
        Ok(self
            .store
            .outbox_for(user, request_id, STATUS_LIMIT)
            .await?)
    }
}
