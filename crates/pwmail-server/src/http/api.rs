//! The generated `PwmailApi` trait, implemented: each handler extracts its
//! input, calls `App`, and shapes the answer. Refusals become `ApiError` in
//! `http::error`.

use dropshot::{Header, HttpResponseHeaders, HttpResponseOk, Path, Query, RequestContext};
use pwmail_api::{
    ApiError, CreateResetLinkHeaders, CreateResetLinkResponseHeaders, DEPRECATION,
    GetPasswordEmailStatusHeaders, GetPasswordEmailStatusQuery, LimitedBody, PwmailApi, Reply,
    ResetPasswordByAdminHeaders, ResetPasswordByAdminResponseHeaders, SUCCESSOR_LINK,
    SendPasswordEmailHeaders, SendPasswordEmailPath, SendPasswordEmailResponseHeaders,
};
use pwmail_store::{Authenticated, LinkOptions, LinkPurpose, MessageKind, OutboxState};
use pwmail_types::{
    CreateResetLinkRequest, CreateResetLinkRequestDeliver, CreateResetLinkResponse,
    PasswordEmailStatus, PasswordEmailStatusKind, PasswordEmailStatusList,
    PasswordEmailStatusState, ResetPasswordByAdminRequest, ResetPasswordByAdminResponse,
    SendPasswordEmailRequest, SendPasswordEmailResponse,
};
use tracing::Instrument as _;

use crate::app::issue::{IssueRequest, Issued};
use crate::app::{self, App, validate};
use crate::http::{Context, auth};
use crate::observe::traces;

pub enum PwmailImpl {}

impl PwmailApi for PwmailImpl {
    type Context = Context;

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
        let app = &rqctx.context().app;
        let result = handle(&rqctx, "send_password_email", async {
            let headers = headers.into_inner();
            let caller = caller(&rqctx, headers.authorization.as_deref()).await?;
            let (path, body) = (path.into_inner(), body.into_inner());
            validate::namespace(
                &path.namespace,
                body.namespace.as_deref().map(String::as_str),
            )?;
            let issued = app
                .issue(IssueRequest {
                    caller: &caller,
                    email: &body.email,
                    purpose: LinkPurpose::SendPasswordEmail,
                    request_id: &rqctx.request_id,
                    idempotency_key: headers.idempotency_key.as_deref(),
                    // F5's operations carry the address alone.
                    options: LinkOptions::default(),
                    lifetime: None,
                    reveal: false,
                    trace: traces::traceparent(&tracing::Span::current()),
                })
                .await?;
            Ok(HttpResponseHeaders::new(
                HttpResponseOk(SendPasswordEmailResponse(Default::default())),
                SendPasswordEmailResponseHeaders {
                    deprecation: DEPRECATION.to_string(),
                    link: SUCCESSOR_LINK.to_string(),
                    idempotent_replayed: replayed(&issued),
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
    ) -> Result<
        Reply<
            HttpResponseHeaders<
                HttpResponseOk<ResetPasswordByAdminResponse>,
                ResetPasswordByAdminResponseHeaders,
            >,
        >,
        ApiError,
    > {
        let app = &rqctx.context().app;
        let result = handle(&rqctx, "reset_password_by_admin", async {
            let headers = headers.into_inner();
            let caller = caller(&rqctx, headers.authorization.as_deref()).await?;
            let issued = app
                .issue(IssueRequest {
                    caller: &caller,
                    email: &body.into_inner().email,
                    purpose: LinkPurpose::ResetPasswordByAdmin,
                    request_id: &rqctx.request_id,
                    idempotency_key: headers.idempotency_key.as_deref(),
                    // F5's operations carry the address alone.
                    options: LinkOptions::default(),
                    lifetime: None,
                    reveal: false,
                    trace: traces::traceparent(&tracing::Span::current()),
                })
                .await?;
            Ok(HttpResponseHeaders::new(
                HttpResponseOk(ResetPasswordByAdminResponse(Default::default())),
                ResetPasswordByAdminResponseHeaders {
                    idempotent_replayed: replayed(&issued),
                },
            ))
        })
        .await;
        Ok(Reply::from(result))
    }

    async fn create_reset_link(
        rqctx: RequestContext<Self::Context>,
        headers: Header<CreateResetLinkHeaders>,
        body: LimitedBody<CreateResetLinkRequest>,
    ) -> Result<
        Reply<
            HttpResponseHeaders<
                HttpResponseOk<CreateResetLinkResponse>,
                CreateResetLinkResponseHeaders,
            >,
        >,
        ApiError,
    > {
        let app = &rqctx.context().app;
        let result = handle(&rqctx, "create_reset_link", async {
            let headers = headers.into_inner();
            let caller = caller(&rqctx, headers.authorization.as_deref()).await?;
            let body = body.into_inner();
            // A lifetime beyond u64 seconds is beyond every range too.
            let lifetime = body
                .ttl_secs
                .map(|secs| std::time::Duration::from_secs(secs.max(0) as u64));
            let issued = app
                .issue(IssueRequest {
                    caller: &caller,
                    email: &body.email,
                    purpose: if body.invalidate_password {
                        LinkPurpose::ResetPasswordByAdmin
                    } else {
                        LinkPurpose::SendPasswordEmail
                    },
                    request_id: &rqctx.request_id,
                    idempotency_key: headers.idempotency_key.as_deref(),
                    options: LinkOptions {
                        return_to: body.return_to.map(String::from),
                        locale: body.locale.map(String::from),
                        ..LinkOptions::default()
                    },
                    lifetime,
                    reveal: matches!(body.deliver, CreateResetLinkRequestDeliver::Response),
                    trace: traces::traceparent(&tracing::Span::current()),
                })
                .await?;
            let (request_id, expires_at, link) = match &issued {
                Issued::New { expires_at, link } => {
                    (rqctx.request_id.clone(), *expires_at, link.clone())
                }
                Issued::Replayed {
                    request_id,
                    expires_at,
                } => (request_id.clone(), *expires_at, None),
            };
            // Milliseconds since 1970 that a link can hold are in range.
            let expires_at =
                chrono::DateTime::from_timestamp_millis(expires_at).unwrap_or_default();
            Ok(HttpResponseHeaders::new(
                HttpResponseOk(CreateResetLinkResponse {
                    request_id,
                    expires_at,
                    link,
                }),
                CreateResetLinkResponseHeaders {
                    idempotent_replayed: replayed(&issued),
                },
            ))
        })
        .await;
        Ok(Reply::from(result))
    }

    async fn get_password_email_status(
        rqctx: RequestContext<Self::Context>,
        query: Query<GetPasswordEmailStatusQuery>,
        headers: Header<GetPasswordEmailStatusHeaders>,
    ) -> Result<Reply<HttpResponseOk<PasswordEmailStatusList>>, ApiError> {
        let app = &rqctx.context().app;
        let result = handle(&rqctx, "get_password_email_status", async {
            admin(&rqctx, headers.into_inner().authorization.as_deref()).await?;
            let query = query.into_inner();
            let rows = app
                .email_status(query.email.as_deref(), query.request_id.as_deref())
                .await?;
            let items = rows.into_iter().map(email_status).collect();
            Ok(HttpResponseOk(PasswordEmailStatusList { items }))
        })
        .await;
        Ok(Reply::from(result))
    }
}

/// The caller behind the `Authorization` header, admin or not: the issue
/// operations check the role in `App::issue`, which audits a non-admin's
/// attempt.
async fn caller(
    rqctx: &RequestContext<Context>,
    header: Option<&str>,
) -> Result<Authenticated, ApiError> {
    auth::only_one(rqctx.request.headers())?;
    one_idempotency_key(rqctx.request.headers())?;
    let token = auth::api_token(header)?;
    Ok(rqctx.context().app.authenticate(token).await?)
}

/// The caller behind the `Authorization` header, if it is an admin.
async fn admin(
    rqctx: &RequestContext<Context>,
    header: Option<&str>,
) -> Result<Authenticated, ApiError> {
    let caller = caller(rqctx, header).await?;
    app::auth::require_admin(&caller)?;
    Ok(caller)
}

/// Refuses two `Idempotency-Key` headers: the extractor keeps the last, so
/// the first key would silently never be stored, and a retry with it would
/// email the user again.
fn one_idempotency_key(headers: &http::HeaderMap) -> Result<(), ApiError> {
    if headers.get_all("idempotency-key").iter().count() > 1 {
        return Err(ApiError::InvalidArgument(
            "more than one Idempotency-Key header; send at most one".into(),
        ));
    }
    Ok(())
}

/// `Idempotent-Replayed: true` on a 200 that repeats a stored outcome.
fn replayed(issued: &Issued) -> Option<String> {
    matches!(issued, Issued::Replayed { .. }).then(|| "true".to_string())
}

/// Runs one API call: in a span carrying the request id (so every log line
/// of the request has it), under the deadline, then logs failures (metrics
/// are counted for every response in `observe::logging`). A
/// transaction cut off by the deadline is rolled back unless its commit was
/// already under way, so the 504 says the outcome is unknown.
async fn handle<T>(
    rqctx: &RequestContext<Context>,
    operation: &'static str,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let span = super::request_span(rqctx, operation);
    let result = with_deadline(&rqctx.context().app, work)
        .instrument(span.clone())
        .await;
    span.in_scope(|| finish(&rqctx.request_id, &result));
    result
}

async fn with_deadline<T>(
    app: &App,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let limit = app.config().request_timeout;
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::DeadlineExceeded(format!(
            "the request did not finish within {} s; it may or may not have taken effect",
            limit.as_secs_f64()
        ))),
    }
}

/// Logs server-side failures. Handler errors reach the caller through
/// `Reply`, which dropshot logs as a plain response, so they are logged here
/// with the request id the caller sees in `x-request-id`.
fn finish<T>(request_id: &str, result: &Result<T, ApiError>) {
    match result {
        Err(ApiError::Internal { detail }) => {
            tracing::error!(request_id, error = %detail, "request failed: internal error")
        }
        // A 503 is logged where its cause is mapped (`http::error`).
        Err(e @ ApiError::DeadlineExceeded(_)) => {
            tracing::warn!(request_id, error = %e, "request failed")
        }
        _ => {}
    }
}

fn to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A stored delivery record as the API shows it.
fn email_status(m: pwmail_store::OutboxStatus) -> PasswordEmailStatus {
    PasswordEmailStatus {
        id: m.id,
        message_id: m.message_id,
        kind: match m.kind {
            MessageKind::SendPasswordEmail => PasswordEmailStatusKind::SendPasswordEmail,
            MessageKind::ResetPasswordByAdmin => PasswordEmailStatusKind::ResetPasswordByAdmin,
            MessageKind::PasswordChanged => PasswordEmailStatusKind::PasswordChanged,
        },
        recipient: m.recipient,
        state: match m.state {
            OutboxState::Queued => PasswordEmailStatusState::Queued,
            OutboxState::Sending => PasswordEmailStatusState::Sending,
            OutboxState::Sent => PasswordEmailStatusState::Sent,
            OutboxState::Retrying => PasswordEmailStatusState::Retrying,
            OutboxState::Dead => PasswordEmailStatusState::Dead,
        },
        attempts: i32::try_from(m.attempts).unwrap_or(i32::MAX),
        last_error: m.last_error,
        last_reply: m.last_reply,
        queued_at: to_time(m.queued_at),
        next_attempt_at: m.next_attempt_at.map(to_time),
        sent_at: m.sent_at.map(to_time),
        request_id: m.request_id,
        recipient_suppressed_at: m.recipient_suppressed_at.map(to_time),
    }
}
