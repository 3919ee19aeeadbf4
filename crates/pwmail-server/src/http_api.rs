//! The generated `PwmailApi` trait, implemented.

use std::sync::Arc;

use dropshot::HttpResponseError as _;
use dropshot::{Header, HttpResponseHeaders, HttpResponseOk, Path, Query, RequestContext};
use pwmail_api::{
    ApiError, DEPRECATION, GetPasswordEmailStatusHeaders, GetPasswordEmailStatusQuery, LimitedBody,
    PwmailApi, Reply, ResetPasswordByAdminHeaders, SUCCESSOR_LINK, SendPasswordEmailHeaders,
    SendPasswordEmailPath, SendPasswordEmailResponseHeaders,
};
use pwmail_store::{Actor, Admission, Authenticated, IssueLink, IssueOutcome, LinkPurpose};
use pwmail_types::{
    PasswordEmailStatus, PasswordEmailStatusKind, PasswordEmailStatusList,
    PasswordEmailStatusState, ResetPasswordByAdminRequest, ResetPasswordByAdminResponse,
    SendPasswordEmailRequest, SendPasswordEmailRequestEmail, SendPasswordEmailResponse,
};

use crate::error::ServiceError;
use crate::mail::LinkEmail;
use crate::state::AppState;
use crate::{auth, token, validate};
use tracing::Instrument as _;

pub enum PwmailImpl {}

impl PwmailApi for PwmailImpl {
    type Context = Arc<AppState>;

    async fn send_password_email(
        rqctx: RequestContext<Self::Context>,
        path: Path<SendPasswordEmailPath>,
        headers: Header<SendPasswordEmailHeaders>,
        body: LimitedBody<SendPasswordEmailRequest>,
    ) -> Result<
        Reply<
            HttpResponseHeaders<
                HttpResponseOk<SendPasswordEmailResponse>,
                SendPasswordEmailResponseHeaders,
            >,
        >,
        ApiError,
    > {
        let state = rqctx.context();
        let result = handle(&rqctx, "send_password_email", async {
            let caller =
                auth::admin(&*state.store, headers.into_inner().authorization.as_deref()).await?;
            let (path, body) = (path.into_inner(), body.into_inner());
            validate::namespace(
                &path.namespace,
                body.namespace.as_deref().map(String::as_str),
            )?;
            issue(
                state,
                &caller,
                &body.email,
                LinkPurpose::SendPasswordEmail,
                &rqctx.request_id,
            )
            .await?;
            Ok::<_, ServiceError>(HttpResponseHeaders::new(
                HttpResponseOk(SendPasswordEmailResponse(Default::default())),
                SendPasswordEmailResponseHeaders {
                    deprecation: DEPRECATION.to_string(),
                    link: SUCCESSOR_LINK.to_string(),
                },
            ))
        })
        .await;
        // Refusals of a deprecated operation are deprecated responses too.
        Ok(Reply::from(result).with_deprecation())
    }

    async fn reset_password_by_admin(
        rqctx: RequestContext<Self::Context>,
        headers: Header<ResetPasswordByAdminHeaders>,
        body: LimitedBody<ResetPasswordByAdminRequest>,
    ) -> Result<Reply<HttpResponseOk<ResetPasswordByAdminResponse>>, ApiError> {
        let state = rqctx.context();
        let result = handle(&rqctx, "reset_password_by_admin", async {
            let caller =
                auth::admin(&*state.store, headers.into_inner().authorization.as_deref()).await?;
            let body = body.into_inner();
            issue(
                state,
                &caller,
                &body.email,
                LinkPurpose::ResetPasswordByAdmin,
                &rqctx.request_id,
            )
            .await?;
            Ok::<_, ServiceError>(HttpResponseOk(ResetPasswordByAdminResponse(
                Default::default(),
            )))
        })
        .await;
        Ok(Reply::from(result))
    }

    async fn get_password_email_status(
        rqctx: RequestContext<Self::Context>,
        query: Query<GetPasswordEmailStatusQuery>,
        headers: Header<GetPasswordEmailStatusHeaders>,
    ) -> Result<Reply<HttpResponseOk<PasswordEmailStatusList>>, ApiError> {
        let state = rqctx.context();
        let result = handle(&rqctx, "get_password_email_status", async {
            auth::admin(&*state.store, headers.into_inner().authorization.as_deref()).await?;
            let query = query.into_inner();
            let user = match &query.email {
                None => None,
                Some(email) => {
                    SendPasswordEmailRequestEmail::try_from(email.as_str())
                        .map_err(|e| ApiError::InvalidArgument(format!("email: {e}")))?;
                    let user = state
                        .store
                        .find_user_by_email(email)
                        .await?
                        .ok_or_else(|| ApiError::NotFound(format!("no user with email {email}")))?;
                    Some(user.id)
                }
            };
            if query.request_id.as_ref().is_some_and(|r| r.len() > 128) {
                return Err(ApiError::InvalidArgument(
                    "request_id is longer than 128 characters".into(),
                )
                .into());
            }
            let rows = state
                .store
                .outbox_for(user, query.request_id.as_deref(), STATUS_LIMIT)
                .await?;
            let items = rows
                .into_iter()
                .map(email_status)
                .collect::<Result<_, _>>()?;
            Ok::<_, ServiceError>(HttpResponseOk(PasswordEmailStatusList { items }))
        })
        .await;
        Ok(Reply::from(result))
    }
}

/// Runs a handler body under the configured request deadline. A transaction
/// cut off by the deadline is rolled back unless its commit was already under
/// way, so the 504 says the outcome is unknown.
/// Runs one API call: in a span carrying the request id (so every log line
/// of the request has it), under the deadline, then records the outcome.
async fn handle<T>(
    rqctx: &RequestContext<Arc<AppState>>,
    operation: &'static str,
    work: impl std::future::Future<Output = Result<T, ServiceError>>,
) -> Result<T, ApiError> {
    let started = std::time::Instant::now();
    let span = tracing::info_span!("request", request_id = %rqctx.request_id, operation);
    let result = with_deadline(rqctx.context(), work)
        .instrument(span.clone())
        .await;
    span.in_scope(|| finish(operation, &rqctx.request_id, started, &result));
    result
}

async fn with_deadline<T>(
    state: &AppState,
    work: impl std::future::Future<Output = Result<T, ServiceError>>,
) -> Result<T, ApiError> {
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(_) => Err(ApiError::DeadlineExceeded(format!(
            "the request did not finish within {} s; it may or may not have taken effect",
            limit.as_secs_f64()
        ))),
    }
}

/// Records the outcome. Handler errors reach the caller through `Reply`, which
/// dropshot logs as a plain response, so server-side failures are logged here
/// with the request id the caller sees in `x-request-id`.
fn finish<T>(
    operation: &'static str,
    request_id: &str,
    started: std::time::Instant,
    result: &Result<T, ApiError>,
) {
    let status = match result {
        Ok(_) => 200,
        Err(e) => e.status_code().as_u16(),
    };
    crate::metrics::api_request(operation, status, started.elapsed());
    match result {
        Err(ApiError::Internal { detail }) => {
            tracing::error!(request_id, error = %detail, "request failed: internal error")
        }
        Err(e @ (ApiError::Unavailable { .. } | ApiError::DeadlineExceeded(_))) => {
            tracing::warn!(request_id, error = %e, "request failed")
        }
        _ => {}
    }
}

fn to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A stored delivery record as the API shows it.
fn email_status(m: pwmail_store::OutboxStatus) -> Result<PasswordEmailStatus, ServiceError> {
    use pwmail_store::OutboxState as S;
    let kind = m
        .kind
        .parse::<PasswordEmailStatusKind>()
        .map_err(|e| ApiError::internal(format!("outbox {} kind {:?}: {e}", m.id, m.kind)))?;
    Ok(PasswordEmailStatus {
        id: m.id,
        message_id: m.message_id,
        kind,
        recipient: m.recipient,
        state: match m.state {
            S::Queued => PasswordEmailStatusState::Queued,
            S::Sending => PasswordEmailStatusState::Sending,
            S::Sent => PasswordEmailStatusState::Sent,
            S::Retrying => PasswordEmailStatusState::Retrying,
            S::Dead => PasswordEmailStatusState::Dead,
        },
        attempts: i32::try_from(m.attempts).unwrap_or(i32::MAX),
        last_error: m.last_error,
        last_reply: m.last_reply,
        queued_at: to_time(m.queued_at),
        next_attempt_at: m.next_attempt_at.map(to_time),
        sent_at: m.sent_at.map(to_time),
        request_id: m.request_id,
    })
}

/// Most rows one status query returns.
const STATUS_LIMIT: u32 = 100;

fn retry_secs(ms: i64) -> u64 {
    (ms.max(0) as u64).div_ceil(1000).max(1)
}

/// Both operations: throttle the caller, find the user, and in one
/// transaction store a fresh link and queue its email.
async fn issue(
    state: &AppState,
    caller: &Authenticated,
    email: &str,
    purpose: LinkPurpose,
    request_id: &str,
) -> Result<(), ServiceError> {
    let config = &state.config;
    let now = state.clock.now();
    let backlog = state.backlog();
    if backlog >= config.max_backlog {
        return Err(ApiError::Unavailable {
            message: format!(
                "too many emails waiting to be sent ({backlog}, limit {}); retry later",
                config.max_backlog
            ),
            retry_after_secs: 30,
        }
        .into());
    }
    let token_key = format!("token:{}", caller.token_id);
    if let Admission::Refused { retry_after_ms } = state
        .store
        .rate_limit(&token_key, &config.token_rate, now)
        .await?
    {
        return Err(ApiError::ResourceExhausted {
            message: format!(
                "per-token rate limit exceeded: this API token may send {} emails per {} s",
                config.token_rate.burst,
                config.token_rate.period_ms * i64::from(config.token_rate.burst) / 1000
            ),
            retry_after_secs: retry_secs(retry_after_ms),
        }
        .into());
    }

    let user = state
        .store
        .find_user_by_email(email)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user with email {email}")))?;
    if user.disabled {
        return Err(
            ApiError::FailedPrecondition(format!("the user {} is disabled", user.email)).into(),
        );
    }

    let link_token = token::new_link_token()?;
    let link = config.reset_link(link_token.expose());
    let lifetime = config.link_ttl;
    let expires_at = now + lifetime.as_millis() as i64;
    let rendered = state.renderer.render_link_email(&LinkEmail {
        purpose,
        email: &user.email,
        name: user.name.as_deref(),
        link: &link,
        lifetime,
        expires_at,
    })?;
    let message = rendered.into_message(purpose.as_str(), &user.email, &config.mail_domain());
    let outcome = state
        .store
        .issue_link(&IssueLink {
            actor: Actor {
                user: caller.user.id,
                token_id: caller.token_id,
            },
            target: user.id,
            purpose,
            link_hash: link_token.hash(),
            expires_at,
            cooldown: config.user_cooldown,
            message,
            request_id: request_id.to_string(),
            now,
        })
        .await?;
    match outcome {
        IssueOutcome::Issued { outbox_id, .. } => {
            tracing::info!(
                request_id,
                operation = purpose.as_str(),
                actor = %caller.user.id,
                target = %user.id,
                outbox_id,
                "password email queued"
            );
            state.outbox_wakeup.notify_one();
            Ok(())
        }
        IssueOutcome::CoolingDown { retry_after_ms } => Err(ApiError::ResourceExhausted {
            message: format!(
                "per-user rate limit exceeded: {} may be emailed {} time(s) per {} s",
                user.email,
                config.user_cooldown.burst,
                config.user_cooldown.period_ms * i64::from(config.user_cooldown.burst) / 1000
            ),
            retry_after_secs: retry_secs(retry_after_ms),
        }
        .into()),
    }
}
