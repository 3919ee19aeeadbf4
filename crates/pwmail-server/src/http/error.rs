//! The one place app errors become HTTP: [`ApiError`] for the API (status,
//! gRPC code, `Retry-After`) and [`Problem`] pages for the reset page.

use std::time::Duration;

use pwmail_api::ApiError;
use pwmail_store::StoreError;

use crate::app::{AppError, ResetError};

/// What a caller is told while the database does not answer.
const UNAVAILABLE: &str = "the database is temporarily unavailable; retry shortly";
/// How long a caller is asked to wait when the database does not answer.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(2);
/// How long a caller is asked to wait when too many emails are queued.
const BACKLOG_RETRY: Duration = Duration::from_secs(30);
/// What a caller is told while the database has no space left.
const NO_SPACE: &str = "the service cannot store anything at the moment (its database has no space left); \
     nothing was done; retry later";
/// How long a caller is asked to wait when the database has no space.
const NO_SPACE_RETRY: Duration = Duration::from_secs(30);

/// A call refused for lack of space: counted, and logged at most once a
/// minute (`pwmail_store::space::warn_no_space`).
fn warn_no_space(e: &StoreError) {
    metrics::counter!("pwmail_store_out_of_space_total").increment(1);
    pwmail_store::space::warn_no_space(e);
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let message = e.to_string();
        match e {
            AppError::Invalid(_) | AppError::InvalidEmail { .. } => {
                ApiError::InvalidArgument(message)
            }
            AppError::BadToken => ApiError::Unauthenticated(message),
            AppError::NotAdmin | AppError::CannotRevealLinks => ApiError::PermissionDenied(message),
            AppError::NoSuchUser(_) | AppError::NoSuchToken(_) | AppError::NoSuchMessage(_) => {
                ApiError::NotFound(message)
            }
            AppError::KeyReused => ApiError::Unprocessable(message),
            AppError::KeyInFlight => ApiError::Aborted(message),
            AppError::Disabled(_)
            | AppError::LinkRevealed
            | AppError::NotDead(_)
            | AppError::NotSuppressed(_)
            | AppError::LastAdmin(_)
            | AppError::DeadLinkEmail { .. }
            | AppError::Undeliverable { .. }
            | AppError::Suppressed { .. } => ApiError::FailedPrecondition(message),
            AppError::Backlog { waiting, limit } => {
                tracing::warn!(waiting, limit, "refused: too many emails wait to be sent");
                ApiError::Unavailable {
                    message,
                    retry_after_secs: BACKLOG_RETRY.as_secs(),
                }
            }
            AppError::TokenRate { retry_after, .. }
            | AppError::UserCooldown { retry_after, .. } => ApiError::ResourceExhausted {
                message,
                retry_after_secs: retry_after.as_secs(),
            },
            AppError::Store(e) if e.is_out_of_space() => {
                warn_no_space(&e);
                ApiError::Unavailable {
                    message: NO_SPACE.into(),
                    retry_after_secs: NO_SPACE_RETRY.as_secs(),
                }
            }
            AppError::Store(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::Unavailable {
                    message: UNAVAILABLE.into(),
                    retry_after_secs: UNAVAILABLE_RETRY.as_secs(),
                }
            }
            AppError::Store(StoreError::NotFound(m)) => ApiError::NotFound(m),
            AppError::Store(StoreError::Conflict(m)) => ApiError::FailedPrecondition(m),
            // Logged with the request id; the caller gets a generic message
            // (no SQL, paths or secrets).
            other => ApiError::internal(other),
        }
    }
}

/// What the reset page shows instead of the form.
pub enum Problem {
    /// Unknown or expired: deliberately the same page.
    Invalid,
    Used,
    Revoked,
    Throttled {
        retry_after: Duration,
    },
    /// The form was not sent as `application/x-www-form-urlencoded`.
    UnsupportedForm,
    /// The page was asked with a method it does not take (not GET or POST).
    MethodNotAllowed,
    /// The form's body is over the size limit (it was not read).
    FormTooLarge,
    /// The form did not arrive within the client timeout.
    RequestTimeout,
    /// The database did not answer: try again shortly.
    Unavailable {
        retry_after: Duration,
    },
    /// Anything else: the log has the details.
    Internal,
}

impl Problem {
    /// The page for a refusal that is not about the new password (those
    /// show the form again; see `reset_page`).
    pub fn of(e: &ResetError) -> Problem {
        match e {
            ResetError::Invalid => Problem::Invalid,
            ResetError::Used => Problem::Used,
            ResetError::Revoked => Problem::Revoked,
            ResetError::Throttled { retry_after } => Problem::Throttled {
                retry_after: *retry_after,
            },
            ResetError::App(AppError::Store(e)) if e.is_out_of_space() => {
                warn_no_space(e);
                Problem::Unavailable {
                    retry_after: NO_SPACE_RETRY,
                }
            }
            ResetError::App(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "reset page: database unavailable");
                Problem::Unavailable {
                    retry_after: UNAVAILABLE_RETRY,
                }
            }
            ResetError::App(e) => {
                tracing::error!(error = %e, "reset page failed");
                Problem::Internal
            }
            // Shown as the form with the reason; never reached by callers
            // that handle them first, and harmless if it were.
            ResetError::Rejected { .. } | ResetError::Busy { .. } => Problem::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use dropshot::HttpResponseError as _;
    use pwmail_api::ApiError;

    use crate::app::AppError;

    /// Idempotency-Key refusals as the document and gRPC name them: a key
    /// reused for another request is 422 INVALID_ARGUMENT (3); a key whose
    /// first call is still running is 409 ABORTED (10), which a client
    /// retries, unlike 409 FAILED_PRECONDITION (9).
    #[test]
    fn idempotency_refusals_have_their_own_status_and_code() {
        for (error, status, code) in [
            (AppError::KeyInFlight, 409, 10),
            (AppError::KeyReused, 422, 3),
            (AppError::Disabled("a@example.com".into()), 409, 9),
            (AppError::LinkRevealed, 409, 9),
            (AppError::CannotRevealLinks, 403, 7),
        ] {
            let api = ApiError::from(error);
            assert_eq!(
                (api.status_code().as_u16(), api.grpc_code()),
                (status, code),
                "{api}"
            );
        }
    }
}
