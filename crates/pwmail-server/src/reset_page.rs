//! The page behind the emailed link: `GET /reset/{token}` shows the form
//! (and never consumes the token: mail scanners prefetch links), `POST`
//! sets the password. Kept out of the API document (`unpublished`).

use std::net::IpAddr;
use std::sync::Arc;

use dropshot::{Body, HttpError, Path, RequestContext};
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use minijinja::{Environment, context};
use pwmail_store::{Admission, CompleteReset, LinkState, ResetLink, ResetOutcome, User};
use serde::Deserialize;

use crate::error::ServiceError;
use crate::mail::format_utc;
use crate::password::{MAX_BYTES, Rejection};
use crate::state::AppState;
use crate::token;

pub const CSS_PATH: &str = "/assets/reset.css";
const CSS: &str = include_str!("../templates/page/reset.css");

/// The page templates, compiled in.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in [
        (
            "page/base.html",
            include_str!("../templates/page/base.html"),
        ),
        (
            "page/form.html",
            include_str!("../templates/page/form.html"),
        ),
        (
            "page/done.html",
            include_str!("../templates/page/done.html"),
        ),
        (
            "page/problem.html",
            include_str!("../templates/page/problem.html"),
        ),
    ] {
        // The sources are compiled in and covered by tests.
        env.add_template(name, source)
            .expect("built-in page template parses");
    }
    env
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct TokenPath {
    token: String,
}

#[derive(Deserialize, Default)]
struct ResetForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

/// Why a link cannot be used, as the user is told.
enum Problem {
    /// Unknown or expired: deliberately the same page.
    Invalid,
    Used,
    Revoked,
    Throttled {
        retry_after_secs: u64,
    },
}

fn headers(builder: http::response::Builder) -> http::response::Builder {
    builder
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        )
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
}

fn html(status: StatusCode, body: String) -> Result<Response<Body>, HttpError> {
    Ok(headers(Response::builder().status(status))
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(body.into())?)
}

fn render(state: &AppState, name: &str, ctx: minijinja::Value) -> Result<String, HttpError> {
    let base = context! { product => &state.config.product_name, css => CSS_PATH };
    state
        .pages
        .get_template(name)
        .and_then(|t| t.render(context! { ..base, ..ctx }))
        .map_err(|e| HttpError::for_internal_error(format!("page {name}: {e}")))
}

fn problem_page(state: &AppState, problem: Problem) -> Result<Response<Body>, HttpError> {
    let ask = "Ask your administrator to send you a new password email.";
    let (status, title, explanation, next_step, retry) = match problem {
        Problem::Invalid => (
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "The link has expired, or it is incomplete. Links work for a limited time.",
            ask.to_string(),
            None,
        ),
        Problem::Used => (
            StatusCode::GONE,
            "This link was already used",
            "The password was set with this link before; each link works once.",
            format!("If that was not you, contact your administrator at once. {ask}"),
            None,
        ),
        Problem::Revoked => (
            StatusCode::GONE,
            "This link was cancelled",
            "A newer password email was sent, or the password was changed, so this link no longer works.",
            format!("Use the newest email you received. {ask}"),
            None,
        ),
        Problem::Throttled { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "Too many invalid links were opened from your network.",
            format!("Try again in {retry_after_secs} seconds."),
            Some(retry_after_secs),
        ),
    };
    let body = render(
        state,
        "page/problem.html",
        context! { title, explanation, next_step },
    )?;
    let mut response = html(status, body)?;
    if let Some(secs) = retry {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    Ok(response)
}

fn internal(e: impl Into<ServiceError>) -> HttpError {
    HttpError::for_internal_error(e.into().to_string())
}

fn guess_key(ip: IpAddr) -> String {
    format!("reset-guess:{ip}")
}

/// A usable link and its user, or the page that says why not. Unknown tokens
/// count against the caller's address; a throttled address learns nothing
/// about any token.
async fn open_link(
    state: &AppState,
    ip: IpAddr,
    token_text: &str,
) -> Result<Result<(ResetLink, User), Problem>, HttpError> {
    let now = state.clock.now();
    let rate = &state.config.reset_guess_rate;
    if let Admission::Refused { retry_after_ms } = state
        .store
        .rate_peek(&guess_key(ip), rate, now)
        .await
        .map_err(internal)?
    {
        let retry_after_secs = (retry_after_ms.max(0) as u64).div_ceil(1000).max(1);
        return Ok(Err(Problem::Throttled { retry_after_secs }));
    }
    let link = if token::is_link_token_shaped(token_text) {
        state
            .store
            .find_link(&token::hash(token_text))
            .await
            .map_err(internal)?
    } else {
        None
    };
    let Some(link) = link else {
        state
            .store
            .rate_limit(&guess_key(ip), rate, now)
            .await
            .map_err(internal)?;
        tracing::info!(client = %ip, "unknown reset link opened");
        return Ok(Err(Problem::Invalid));
    };
    match link.state {
        LinkState::Used => return Ok(Err(Problem::Used)),
        LinkState::Revoked => return Ok(Err(Problem::Revoked)),
        LinkState::Open if link.expires_at <= now => return Ok(Err(Problem::Invalid)),
        LinkState::Open => {}
    }
    let user = state
        .store
        .user_by_id(link.user_id)
        .await
        .map_err(internal)?
        .filter(|u| !u.disabled);
    Ok(match user {
        Some(user) => Ok((link, user)),
        None => Err(Problem::Revoked),
    })
}

fn form_page(
    state: &AppState,
    status: StatusCode,
    link: &ResetLink,
    user: &User,
    error: Option<String>,
) -> Result<Response<Body>, HttpError> {
    let body = render(
        state,
        "page/form.html",
        context! {
            email => &user.email,
            error,
            min_length => state.policy.min_length,
            max_length => MAX_BYTES,
            expires_at => format_utc(link.expires_at),
        },
    )?;
    html(status, body)
}

#[dropshot::endpoint { method = GET, path = "/reset/{token}", unpublished = true }]
pub async fn reset_form(
    rqctx: RequestContext<Arc<AppState>>,
    path: Path<TokenPath>,
) -> Result<Response<Body>, HttpError> {
    let state = rqctx.context();
    let ip = rqctx.request.remote_addr().ip();
    match open_link(state, ip, &path.into_inner().token).await? {
        Ok((link, user)) => form_page(state, StatusCode::OK, &link, &user, None),
        Err(problem) => problem_page(state, problem),
    }
}

#[dropshot::endpoint {
    method = POST,
    path = "/reset/{token}",
    unpublished = true,
    content_type = "application/x-www-form-urlencoded",
}]
pub async fn reset_submit(
    rqctx: RequestContext<Arc<AppState>>,
    path: Path<TokenPath>,
    body: pwmail_api::LimitedBytes,
) -> Result<Response<Body>, HttpError> {
    let state = rqctx.context();
    let ip = rqctx.request.remote_addr().ip();
    let token_text = path.into_inner().token;
    let (link, user) = match open_link(state, ip, &token_text).await? {
        Ok(found) => found,
        Err(problem) => return problem_page(state, problem),
    };
    // A form that does not parse is treated as empty fields.
    let form: ResetForm = serde_urlencoded::from_bytes(body.as_bytes()).unwrap_or_default();
    let context = [
        user.email.as_str(),
        user.name.as_deref().unwrap_or_default(),
    ];
    if let Err(rejection) = state
        .policy
        .check(&form.password, &form.password_confirm, &context)
    {
        let status = match rejection {
            Rejection::TooLong => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        return form_page(state, status, &link, &user, Some(rejection.to_string()));
    }
    let phc = match state.hasher.hash(form.password).await {
        Ok(phc) => phc,
        Err(crate::password::HashError::Busy) => {
            let mut page = form_page(
                state,
                StatusCode::SERVICE_UNAVAILABLE,
                &link,
                &user,
                Some(BUSY.into()),
            )?;
            page.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("5"),
            );
            return Ok(page);
        }
        Err(e) => return Err(internal_hash(e)),
    };

    let now = state.clock.now();
    let rendered = state
        .renderer
        .render_password_changed(&user.email, user.name.as_deref(), now)
        .map_err(internal)?;
    let notice =
        rendered.into_message("password_changed", &user.email, &state.config.mail_domain());
    let outcome = state
        .store
        .complete_reset(&CompleteReset {
            link_hash: token::hash(&token_text),
            password_phc: phc,
            notice,
            request_id: rqctx.request_id.clone(),
            now,
        })
        .await
        .map_err(internal)?;
    match outcome {
        ResetOutcome::Changed {
            user: id,
            outbox_id,
        } => {
            tracing::info!(request_id = %rqctx.request_id, user = %id, outbox_id, "password changed");
            state.outbox_wakeup.notify_one();
            let body = render(state, "page/done.html", context! { email => &user.email })?;
            html(StatusCode::OK, body)
        }
        // Used, revoked or expired while the password was being hashed.
        ResetOutcome::LinkUnusable => {
            let problem = match state.store.find_link(&token::hash(&token_text)).await {
                Ok(Some(l)) if l.state == LinkState::Used => Problem::Used,
                Ok(Some(l)) if l.state == LinkState::Revoked => Problem::Revoked,
                _ => Problem::Invalid,
            };
            problem_page(state, problem)
        }
    }
}

/// Shown when the hash queue is full; the link is still good.
const BUSY: &str = "Too many passwords are being changed right now. \
    Your link is still valid: please submit again in a few seconds.";

fn internal_hash(e: crate::password::HashError) -> HttpError {
    HttpError::for_internal_error(e.to_string())
}

#[dropshot::endpoint { method = GET, path = "/assets/reset.css", unpublished = true }]
pub async fn reset_css(_rqctx: RequestContext<Arc<AppState>>) -> Result<Response<Body>, HttpError> {
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(CSS.into())?)
}
