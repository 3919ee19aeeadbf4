//! Errors inside the service, and the one place they become API errors.

use pwmail_api::ApiError;
use pwmail_store::StoreError;

use crate::mail::MailError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A refusal meant for the caller as it is.
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("no randomness from the OS: {0}")]
    Random(#[from] getrandom::Error),
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Api(api) => api,
            ServiceError::Store(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::Unavailable {
                    message: "the database is temporarily unavailable; retry shortly".into(),
                    retry_after_secs: 2,
                }
            }
            ServiceError::Store(StoreError::NotFound(m)) => ApiError::NotFound(m),
            ServiceError::Store(StoreError::Conflict(m)) => ApiError::FailedPrecondition(m),
            // Logged by dropshot with the request id; the caller gets a
            // generic message (no SQL, paths or secrets).
            other => ApiError::internal(other),
        }
    }
}
