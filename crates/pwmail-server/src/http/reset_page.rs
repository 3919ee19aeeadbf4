//! The page behind the emailed link: `GET /reset/{token}` shows the form
//! (`App::open_link` never consumes the token), `POST` sets the password
//! (`App::complete_reset`). Kept out of the API document (`unpublished`).
//! Every refusal is a page: `Problem` pages for the link, the form again
//! for the new password.

use std::time::Duration;

use dropshot::{Body, HttpError, Path, RequestContext};
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use minijinja::{Environment, context};
use serde::Deserialize;

use crate::app::ResetError;
use crate::app::reset::{NewPassword, OpenLink};
use crate::clock::format_utc;
use crate::http::Context;
use crate::http::error::Problem;
use crate::secrets::password::{MAX_BYTES, Rejection};

pub const CSS_PATH: &str = "/assets/reset.css";
const CSS: &str = include_str!("../../templates/page/reset.css");
/// Where the operator's stylesheet (`--page-css`) is served.
pub const PAGE_CSS_PATH: &str = "/assets/page.css";

/// The page templates, compiled in; each is replaced by the file of the
/// same name under `--template-dir` (`page/form.html`, …).
const PAGES: &[(&str, &str)] = &[
    (
        "page/base.html",
        include_str!("../../templates/page/base.html"),
    ),
    (
        "page/form.html",
        include_str!("../../templates/page/form.html"),
    ),
    (
        "page/done.html",
        include_str!("../../templates/page/done.html"),
    ),
    (
        "page/problem.html",
        include_str!("../../templates/page/problem.html"),
    ),
];

/// The page templates: the built-in ones, each replaced by its file under
/// `override_dir` when there is one. A misspelt variable is an error, and
/// every page is rendered once here with sample values, so a broken
/// template stops the start, naming its file and line, instead of showing
/// an error page to the first user.
pub fn environment(override_dir: Option<&std::path::Path>) -> anyhow::Result<Environment<'static>> {
    use anyhow::Context as _;
    if let Some(dir) = override_dir {
        check_page_dir(dir)?;
    }
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, builtin) in PAGES {
        let source = match override_dir.map(|d| d.join(name)) {
            Some(path) if path.exists() => crate::files::read_small_text(&path)
                .with_context(|| format!("reading page template {}", path.display()))?,
            _ => builtin.to_string(),
        };
        env.add_template_owned(name.to_string(), source)
            .map_err(|e| anyhow::anyhow!("page template {name}: {e:#}"))?;
    }
    trial(&env).map_err(|e| anyhow::anyhow!("page template {e:#}"))?;
    Ok(env)
}

/// Refuses a file under `DIR/page/` that is no page template (a typo would
/// otherwise change nothing, silently).
fn check_page_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let pages = dir.join("page");
    let Ok(entries) = std::fs::read_dir(&pages) else {
        return Ok(());
    };
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let known = PAGES
            .iter()
            .any(|(known, _)| known.strip_prefix("page/") == Some(&name));
        if !name.starts_with('.') && !known {
            let names: Vec<&str> = PAGES.iter().map(|(n, _)| *n).collect();
            anyhow::bail!(
                "--template-dir {}: unknown page template {name:?} in page/ (known: {})",
                dir.display(),
                names.join(", ")
            );
        }
    }
    Ok(())
}

/// Renders every page with sample values, with and without the optional
/// ones; the error names the template and line.
fn trial(env: &Environment<'static>) -> Result<(), minijinja::Error> {
    let options = pwmail_store::LinkOptions::default();
    let base = |page_css: Option<&str>| {
        context! { product => "pwmail", css => CSS_PATH, page_css => page_css }
    };
    let sample = |name: &str, values: minijinja::Value| -> Result<(), minijinja::Error> {
        for page_css in [None, Some(PAGE_CSS_PATH)] {
            let base = base(page_css);
            env.get_template(name)?
                .render(context! { ..base, ..values.clone() })?;
        }
        Ok(())
    };
    for error in [None, Some("The passwords do not match.")] {
        sample(
            "page/form.html",
            context! {
                email => "user@example.com",
                error,
                min_length => 12,
                max_length => MAX_BYTES,
                expires_at => format_utc(0),
                options => minijinja::value::Serde(&options),
            },
        )?;
    }
    for return_to in [None, Some("https://app.example.com/")] {
        sample(
            "page/done.html",
            context! {
                email => "user@example.com",
                return_to,
                return_host => return_to.map(|_| "app.example.com"),
            },
        )?;
    }
    sample(
        "page/problem.html",
        context! { title => "Title", explanation => "Why.", next_step => "What now." },
    )
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

fn html(
    status: StatusCode,
    body: String,
    retry_after: Option<Duration>,
) -> Result<Response<Body>, HttpError> {
    Ok(html_bytes(status, body, retry_after)?.map(Body::from))
}

/// A page as bytes, for answers written outside a handler (the 408 of a
/// request that never fully arrived).
fn html_bytes(
    status: StatusCode,
    body: String,
    retry_after: Option<Duration>,
) -> Result<Response<Vec<u8>>, http::Error> {
    let mut response = headers(Response::builder().status(status))
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(body.into_bytes())?;
    if let Some(wait) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
    }
    Ok(response)
}

fn render(ctx: &Context, name: &str, values: minijinja::Value) -> Result<String, HttpError> {
    let page_css = ctx.page_css.as_ref().map(|_| PAGE_CSS_PATH);
    let base = context! {
        product => &ctx.app.config().product_name,
        css => CSS_PATH,
        page_css => page_css,
    };
    ctx.pages
        .get_template(name)
        .and_then(|t| t.render(context! { ..base, ..values }))
        .map_err(|e| HttpError::for_internal_error(format!("page {name}: {e}")))
}

pub(crate) fn problem_page(ctx: &Context, problem: Problem) -> Result<Response<Body>, HttpError> {
    Ok(problem_bytes(ctx, problem)?.map(Body::from))
}

/// [`problem_page`] as bytes.
pub(crate) fn problem_bytes(
    ctx: &Context,
    problem: Problem,
) -> Result<Response<Vec<u8>>, HttpError> {
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
        Problem::Throttled { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "Too many invalid links were opened from your network.",
            format!("Try again in {} seconds.", retry_after.as_secs()),
            Some(retry_after),
        ),
        Problem::FormTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "This form is too large",
            "What was sent is far larger than any password the page accepts.",
            "Open the link from your email again and use the form.".to_string(),
            None,
        ),
        Problem::RequestTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            "The form did not arrive in time",
            "The connection was too slow or broke off while the form was being sent. Your link has not been used.",
            "Open the link from your email again and send the form once more.".to_string(),
            None,
        ),
        Problem::UnsupportedForm => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "This form could not be read",
            "The new password must be sent by the form on this page.",
            "Open the link from your email again and use the form.".to_string(),
            None,
        ),
        Problem::MethodNotAllowed => (
            StatusCode::METHOD_NOT_ALLOWED,
            "This page cannot be used that way",
            "The page shows a form, and takes the new password from that form.",
            "Open the link from your email in a web browser.".to_string(),
            None,
        ),
        Problem::Unavailable { retry_after } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again shortly",
            "The service cannot reach its database at the moment. Your link has not been used.",
            format!("Reload this page in {} seconds.", retry_after.as_secs()),
            Some(retry_after),
        ),
        Problem::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The password could not be set because of an error on our side.",
            format!("Try again later. {ask}"),
            None,
        ),
    };
    let body = render(
        ctx,
        "page/problem.html",
        context! { title, explanation, next_step },
    )?;
    Ok(html_bytes(status, body, retry)?)
}

fn form_page(
    ctx: &Context,
    status: StatusCode,
    open: &OpenLink,
    error: Option<String>,
    retry_after: Option<Duration>,
) -> Result<Response<Body>, HttpError> {
    let body = render(
        ctx,
        "page/form.html",
        context! {
            email => &open.user.email,
            error,
            min_length => ctx.app.policy().min_length,
            max_length => MAX_BYTES,
            expires_at => format_utc(open.link.expires_at),
            // What the call that issued the link asked of it, whole.
            options => minijinja::value::Serde(&open.link.options),
        },
    )?;
    html(status, body, retry_after)
}

/// Shown when the hash queue is full; the link is still good.
const BUSY: &str = "Too many passwords are being changed right now. \
    Your link is still valid: please submit again in a few seconds.";
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// The page for a refusal: the form again when the new password was the
/// problem, else the problem page.
fn refusal(ctx: &Context, e: ResetError) -> Result<Response<Body>, HttpError> {
    match e {
        ResetError::Rejected { link, rejection } => {
            let status = match rejection {
                Rejection::TooLong => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            form_page(ctx, status, &link, Some(rejection.to_string()), None)
        }
        ResetError::Busy { link } => form_page(
            ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            &link,
            Some(BUSY.into()),
            Some(BUSY_RETRY),
        ),
        other => problem_page(ctx, Problem::of(&other)),
    }
}

/// Whether the body is declared `application/x-www-form-urlencoded`, as the
/// page's form sends it (parameters such as `charset` allowed).
fn is_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The link's token, when the request's path spells it as pwmail writes
/// links (`/reset/TOKEN`, nothing escaped). dropshot's router also matches
/// `/reset//TOKEN` and `/%72eset/TOKEN`; such spellings come from gateways
/// and proxies that rewrite links, and are refused rather than normalised
/// into a working link. The token's own shape is `open_link`'s to judge.
fn canonical_token(rqctx: &RequestContext<Context>, path: Path<TokenPath>) -> Option<String> {
    let token = path.into_inner().token;
    let raw = rqctx.request.uri().path();
    (raw.strip_prefix("/reset/") == Some(token.as_str())).then_some(token)
}

#[dropshot::endpoint { method = GET, path = "/reset/{token}", unpublished = true }]
pub async fn reset_form(
    rqctx: RequestContext<Context>,
    path: Path<TokenPath>,
) -> Result<Response<Body>, HttpError> {
    let ctx = rqctx.context();
    let Some(token) = canonical_token(&rqctx, path) else {
        return problem_page(ctx, Problem::Invalid);
    };
    let client = rqctx.request.remote_addr().ip();
    match ctx.app.open_link(client, &token).await {
        Ok(open) => form_page(ctx, StatusCode::OK, &open, None, None),
        Err(e) => refusal(ctx, e),
    }
}

#[dropshot::endpoint {
    method = POST,
    path = "/reset/{token}",
    unpublished = true,
    content_type = "application/x-www-form-urlencoded",
}]
pub async fn reset_submit(
    rqctx: RequestContext<Context>,
    path: Path<TokenPath>,
    body: pwmail_api::LimitedBytes,
) -> Result<Response<Body>, HttpError> {
    let ctx = rqctx.context();
    let Some(token) = canonical_token(&rqctx, path) else {
        return problem_page(ctx, Problem::Invalid);
    };
    let bytes = match body.bytes() {
        Ok(bytes) => bytes,
        Err(e) if e.status_code.as_u16() == 413 => {
            return problem_page(ctx, Problem::FormTooLarge);
        }
        Err(e) if e.status_code.as_u16() == 408 => {
            return problem_page(ctx, Problem::RequestTimeout);
        }
        // A body that broke off mid-stream is treated as an empty form.
        Err(_) => &[],
    };
    if !is_form(rqctx.request.headers()) {
        return problem_page(ctx, Problem::UnsupportedForm);
    }
    let client = rqctx.request.remote_addr().ip();
    // A form that does not parse is treated as empty fields.
    let form: ResetForm = serde_urlencoded::from_bytes(bytes).unwrap_or_default();
    let new = NewPassword {
        password: form.password,
        confirm: form.password_confirm,
    };
    match ctx
        .app
        .complete_reset(client, &token, new, &rqctx.request_id)
        .await
    {
        Ok(set) => {
            let body = render(
                ctx,
                "page/done.html",
                context! {
                    email => &set.user.email,
                    return_to => set.return_to.as_ref().map(url::Url::as_str),
                    return_host => set.return_to.as_ref().and_then(url::Url::host_str),
                },
            )?;
            html(StatusCode::OK, body, None)
        }
        Err(e) => refusal(ctx, e),
    }
}

#[dropshot::endpoint { method = GET, path = "/assets/reset.css", unpublished = true }]
pub async fn reset_css(_rqctx: RequestContext<Context>) -> Result<Response<Body>, HttpError> {
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(CSS.into())?)
}

/// The operator's stylesheet (`--page-css`), linked after the built-in one.
#[dropshot::endpoint { method = GET, path = "/assets/page.css", unpublished = true }]
pub async fn page_stylesheet(rqctx: RequestContext<Context>) -> Result<Response<Body>, HttpError> {
    let Some(css) = rqctx.context().page_css.clone() else {
        return Err(HttpError::for_not_found(
            None,
            "no page stylesheet (--page-css) is set".to_string(),
        ));
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(css.to_string().into())?)
}
