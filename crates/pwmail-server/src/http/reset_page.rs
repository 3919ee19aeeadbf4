//! The page behind the emailed link: `GET /reset/{token}` shows the form
//! (`App::open_link` never consumes the token), `POST` sets the password
//! (`App::complete_reset`). Kept out of the API document (`unpublished`).
//! Every refusal is a page: `Problem` pages for the link, the form again
//! for the new password.

use std::time::Duration;
use tracing::Instrument as _;

use dropshot::{Body, HttpError, Path, RequestContext};
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use minijinja::{Environment, context};
use serde::Deserialize;

use std::sync::Arc;

use pwmail_i18n::{Catalogs, FluentArgs, FluentValue, Lang, SHIPPED};

use crate::app::ResetError;
use crate::app::reset::{NewPassword, OpenLink};
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
/// `override_dir` (`page/form.html`), and for one language by its file
/// under `override_dir/<locale>/page/`. A language with any page of its
/// own gets a whole set under `<locale>/page/` (its own files, else the
/// common ones), so that its pages extend its own layout. A misspelt
/// variable or message key is an error, and every page is rendered once
/// here in every language with sample values, so a broken template stops
/// the start, naming its file and line, instead of showing an error page
/// to the first user.
pub fn environment(
    override_dir: Option<&std::path::Path>,
    catalogs: Arc<Catalogs>,
) -> anyhow::Result<Pages> {
    use anyhow::Context as _;
    if let Some(dir) = override_dir {
        check_page_dir(dir, &dir.join("page"))?;
        for tag in SHIPPED {
            check_page_dir(dir, &dir.join(tag).join("page"))?;
        }
    }
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    pwmail_i18n::templates::register(&mut env, catalogs.clone());
    let read = |path: &std::path::Path| {
        crate::files::read_small_text(path)
            .with_context(|| format!("reading page template {}", path.display()))
    };
    let mut common = Vec::new();
    for (name, builtin) in PAGES {
        let source = match override_dir.map(|d| d.join(name)) {
            Some(path) if path.exists() => read(&path)?,
            _ => builtin.to_string(),
        };
        common.push((name.to_string(), source));
    }
    let mut sources = common.clone();
    if let Some(dir) = override_dir {
        for tag in SHIPPED {
            let own: Vec<bool> = PAGES
                .iter()
                .map(|(name, _)| dir.join(tag).join(name).exists())
                .collect();
            if !own.contains(&true) {
                continue;
            }
            for ((name, source), own) in common.iter().zip(own) {
                let source = if own {
                    read(&dir.join(tag).join(name))?
                } else {
                    source.clone()
                };
                sources.push((format!("{tag}/{name}"), source));
            }
        }
    }
    for (name, source) in sources {
        env.add_template_owned(name.clone(), source)
            .map_err(|e| anyhow::anyhow!("page template {name}: {e:#}"))?;
    }
    // `{% extends "page/base.html" %}` in `de/page/form.html` is German's.
    env.set_path_join_callback(|name, parent| match parent.split_once('/') {
        Some((tag, _)) if SHIPPED.contains(&tag) && name.starts_with("page/") => {
            format!("{tag}/{name}").into()
        }
        _ => name.into(),
    });
    let pages = Pages { env, catalogs };
    for lang in Lang::all() {
        trial(&pages, lang).map_err(|e| anyhow::anyhow!("page template {e:#}"))?;
    }
    Ok(pages)
}

/// The page templates with the catalogs they write with.
pub struct Pages {
    env: Environment<'static>,
    catalogs: Arc<Catalogs>,
}

impl Pages {
    /// The page `name` in `lang`: that language's own template when it has
    /// one. Every page sees `locale` and `dir` (`<html lang dir>`, `t()`).
    fn render(
        &self,
        lang: Lang,
        name: &str,
        base: minijinja::Value,
        values: minijinja::Value,
    ) -> Result<String, minijinja::Error> {
        let own = format!("{lang}/{name}");
        let template = match self.env.get_template(&own) {
            Ok(t) => t,
            Err(_) => self.env.get_template(name)?,
        };
        let language = context! { locale => lang.tag(), dir => lang.dir() };
        template.render(context! { ..language, ..base, ..values })
    }
}

/// Refuses a file in a `page/` directory that is no page template (a typo
/// would otherwise change nothing, silently).
fn check_page_dir(dir: &std::path::Path, pages: &std::path::Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(pages) else {
        return Ok(());
    };
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let known = PAGES
            .iter()
            .any(|(known, _)| known.strip_prefix("page/") == Some(&name));
        if !name.starts_with('.') && !known {
            let names: Vec<&str> = PAGES.iter().map(|(n, _)| *n).collect();
            let place = pages.strip_prefix(dir).unwrap_or(pages);
            anyhow::bail!(
                "--template-dir {}: unknown page template {name:?} in {}/ (known: {})",
                dir.display(),
                place.display(),
                names.join(", ")
            );
        }
    }
    Ok(())
}

/// Renders every page in `lang` with sample values, with and without the
/// optional ones; the error names the template and line.
fn trial(pages: &Pages, lang: Lang) -> Result<(), minijinja::Error> {
    let options = pwmail_store::LinkOptions::default();
    let sample = |name: &str, values: minijinja::Value| -> Result<(), minijinja::Error> {
        for page_css in [None, Some(PAGE_CSS_PATH)] {
            let base = context! { product => "pwmail", css => CSS_PATH, page_css => page_css };
            pages.render(lang, name, base, values.clone())?;
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
                expires_at => pages.catalogs.datetime(lang, 0),
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

fn render(
    ctx: &Context,
    lang: Lang,
    name: &str,
    values: minijinja::Value,
) -> Result<String, HttpError> {
    let page_css = ctx.page_css.as_ref().map(|_| PAGE_CSS_PATH);
    let base = context! {
        product => &ctx.app.config().product_name,
        css => CSS_PATH,
        page_css => page_css,
    };
    ctx.pages
        .render(lang, name, base, values)
        .map_err(|e| HttpError::for_internal_error(format!("page {name}: {e}")))
}

/// The language of a page that has no link to take it from: the browser's
/// (`Accept-Language`), else the server's default.
fn browser_lang(ctx: &Context, request: &dropshot::RequestInfo) -> Lang {
    let header = request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    ctx.app.config().catalogs.accept_language(header)
}

pub(crate) fn problem_page(
    ctx: &Context,
    problem: Problem,
    lang: Lang,
) -> Result<Response<Body>, HttpError> {
    Ok(problem_bytes(ctx, problem, lang)?.map(Body::from))
}

/// What a problem page says, as catalog keys: its status, title,
/// explanation, next steps in order, and the wait it names (`$wait`, and
/// Retry-After).
struct Wording {
    status: StatusCode,
    title: &'static str,
    explanation: &'static str,
    next: &'static [&'static str],
    retry: Option<Duration>,
}

fn wording(problem: &Problem) -> Wording {
    const ASK: &str = "problem-ask";
    let w = |status, title, explanation, next| Wording {
        status,
        title,
        explanation,
        next,
        retry: None,
    };
    match *problem {
        Problem::Invalid => w(
            StatusCode::NOT_FOUND,
            "problem-invalid-title",
            "problem-invalid-explanation",
            &[ASK],
        ),
        Problem::Used => w(
            StatusCode::GONE,
            "problem-used-title",
            "problem-used-explanation",
            &["problem-used-next", ASK],
        ),
        Problem::Revoked => w(
            StatusCode::GONE,
            "problem-revoked-title",
            "problem-revoked-explanation",
            &["problem-revoked-next", ASK],
        ),
        Problem::Throttled { retry_after } => Wording {
            retry: Some(retry_after),
            ..w(
                StatusCode::TOO_MANY_REQUESTS,
                "problem-throttled-title",
                "problem-throttled-explanation",
                &["problem-throttled-next"],
            )
        },
        Problem::FormTooLarge => w(
            StatusCode::PAYLOAD_TOO_LARGE,
            "problem-too-large-title",
            "problem-too-large-explanation",
            &["problem-reopen-form"],
        ),
        Problem::RequestTimeout => w(
            StatusCode::REQUEST_TIMEOUT,
            "problem-timeout-title",
            "problem-timeout-explanation",
            &["problem-timeout-next"],
        ),
        Problem::UnsupportedForm => w(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "problem-unsupported-title",
            "problem-unsupported-explanation",
            &["problem-reopen-form"],
        ),
        Problem::MethodNotAllowed => w(
            StatusCode::METHOD_NOT_ALLOWED,
            "problem-method-title",
            "problem-method-explanation",
            &["problem-method-next"],
        ),
        Problem::Unavailable { retry_after } => Wording {
            retry: Some(retry_after),
            ..w(
                StatusCode::SERVICE_UNAVAILABLE,
                "problem-unavailable-title",
                "problem-unavailable-explanation",
                &["problem-unavailable-next"],
            )
        },
        Problem::Internal => w(
            StatusCode::INTERNAL_SERVER_ERROR,
            "problem-internal-title",
            "problem-internal-explanation",
            &["problem-internal-next", ASK],
        ),
    }
}

/// [`problem_page`] as bytes.
pub(crate) fn problem_bytes(
    ctx: &Context,
    problem: Problem,
    lang: Lang,
) -> Result<Response<Vec<u8>>, HttpError> {
    let catalogs = &ctx.app.config().catalogs;
    let words = wording(&problem);
    let mut args = FluentArgs::new();
    if let Some(wait) = words.retry {
        args.set("wait", catalogs.seconds(lang, wait));
    }
    let text = |key: &str| catalogs.text(lang, key, &args);
    let next_step = words
        .next
        .iter()
        .map(|key| text(key))
        .collect::<Vec<_>>()
        .join(" ");
    let body = render(
        ctx,
        lang,
        "page/problem.html",
        context! {
            title => text(words.title),
            explanation => text(words.explanation),
            next_step,
        },
    )?;
    Ok(html_bytes(words.status, body, words.retry)?)
}

fn form_page(
    ctx: &Context,
    status: StatusCode,
    open: &OpenLink,
    error: Option<Message>,
    retry_after: Option<Duration>,
) -> Result<Response<Body>, HttpError> {
    let catalogs = &ctx.app.config().catalogs;
    let lang = open.lang(catalogs);
    let body = render(
        ctx,
        lang,
        "page/form.html",
        context! {
            email => &open.user.email,
            error => error.map(|e| e.text(catalogs, lang)),
            min_length => ctx.app.policy().min_length,
            max_length => MAX_BYTES,
            expires_at => catalogs.datetime(lang, open.link.expires_at),
            // What the call that issued the link asked of it, whole.
            options => minijinja::value::Serde(&open.link.options),
        },
    )?;
    html(status, body, retry_after)
}

/// What the form says above itself when it comes back.
enum Message {
    Rejected(Rejection),
    Busy,
}

impl Message {
    fn text(&self, catalogs: &Catalogs, lang: Lang) -> String {
        match self {
            Message::Busy => catalogs.text(lang, "page-busy", &FluentArgs::new()),
            Message::Rejected(rejection) => {
                let mut args = FluentArgs::new();
                if let Rejection::TooShort { min } = rejection {
                    args.set("min", FluentValue::from(*min));
                }
                args.set("max", FluentValue::from(MAX_BYTES));
                let (rule, hint) = rejection.keys();
                [Some(rule), hint]
                    .into_iter()
                    .flatten()
                    .map(|key| catalogs.text(lang, key, &args))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        }
    }
}

/// Shown when the hash queue is full; the link is still good.
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// The page for a refusal: the form again when the new password was the
/// problem, else the problem page (in the browser's language: a link that
/// does not open has no language of its own to give).
fn refusal(
    ctx: &Context,
    request: &dropshot::RequestInfo,
    e: ResetError,
) -> Result<Response<Body>, HttpError> {
    match e {
        ResetError::Rejected { link, rejection } => {
            let status = match rejection {
                Rejection::TooLong => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            form_page(ctx, status, &link, Some(Message::Rejected(rejection)), None)
        }
        ResetError::Busy { link } => form_page(
            ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            &link,
            Some(Message::Busy),
            Some(BUSY_RETRY),
        ),
        other => problem_page(ctx, Problem::of(&other), browser_lang(ctx, request)),
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
    let span = super::request_span(&rqctx, "GET /reset/{token}");
    open_form(rqctx, path).instrument(span).await
}

async fn open_form(
    rqctx: RequestContext<Context>,
    path: Path<TokenPath>,
) -> Result<Response<Body>, HttpError> {
    let ctx = rqctx.context();
    let Some(token) = canonical_token(&rqctx, path) else {
        return problem_page(ctx, Problem::Invalid, browser_lang(ctx, &rqctx.request));
    };
    let client = rqctx.request.remote_addr().ip();
    match ctx.app.open_link(client, &token).await {
        Ok(open) => form_page(ctx, StatusCode::OK, &open, None, None),
        Err(e) => refusal(ctx, &rqctx.request, e),
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
    let span = super::request_span(&rqctx, "POST /reset/{token}");
    submit_form(rqctx, path, body).instrument(span).await
}

async fn submit_form(
    rqctx: RequestContext<Context>,
    path: Path<TokenPath>,
    body: pwmail_api::LimitedBytes,
) -> Result<Response<Body>, HttpError> {
    let ctx = rqctx.context();
    let lang = || browser_lang(ctx, &rqctx.request);
    let Some(token) = canonical_token(&rqctx, path) else {
        return problem_page(ctx, Problem::Invalid, lang());
    };
    let bytes = match body.bytes() {
        Ok(bytes) => bytes,
        Err(e) if e.status_code.as_u16() == 413 => {
            return problem_page(ctx, Problem::FormTooLarge, lang());
        }
        Err(e) if e.status_code.as_u16() == 408 => {
            return problem_page(ctx, Problem::RequestTimeout, lang());
        }
        // A body that broke off mid-stream is treated as an empty form.
        Err(_) => &[],
    };
    if !is_form(rqctx.request.headers()) {
        return problem_page(ctx, Problem::UnsupportedForm, lang());
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
                set.lang,
                "page/done.html",
                context! {
                    email => &set.user.email,
                    return_to => set.return_to.as_ref().map(url::Url::as_str),
                    return_host => set.return_to.as_ref().and_then(url::Url::host_str),
                },
            )?;
            html(StatusCode::OK, body, None)
        }
        Err(e) => refusal(ctx, &rqctx.request, e),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every problem page names messages the catalogs have (a key they
    /// lack would be shown as itself), and only the pages that wait name a
    /// wait.
    #[test]
    fn every_problem_page_says_something_of_the_catalogs() {
        let catalogs = crate::config::ServerConfig::default().catalogs;
        let wait = Duration::from_secs(7);
        for problem in [
            Problem::Invalid,
            Problem::Used,
            Problem::Revoked,
            Problem::Throttled { retry_after: wait },
            Problem::UnsupportedForm,
            Problem::MethodNotAllowed,
            Problem::FormTooLarge,
            Problem::RequestTimeout,
            Problem::Unavailable { retry_after: wait },
            Problem::Internal,
        ] {
            let words = wording(&problem);
            for key in [words.title, words.explanation].iter().chain(words.next) {
                assert!(catalogs.has(key), "{key}");
            }
            assert!(!words.next.is_empty());
            let waits = matches!(
                problem,
                Problem::Throttled { .. } | Problem::Unavailable { .. }
            );
            assert_eq!(words.retry.is_some(), waits);
        }
    }

    fn refused(dir: &std::path::Path) -> String {
        environment(Some(dir), crate::config::ServerConfig::default().catalogs)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_languages_page_templates_are_checked_at_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("de/page")).unwrap();
        std::fs::write(dir.path().join("de/page/fom.html"), "x").unwrap();
        let e = refused(dir.path());
        assert!(
            e.contains("unknown page template \"fom.html\" in de/page/"),
            "{e}"
        );
        std::fs::remove_file(dir.path().join("de/page/fom.html")).unwrap();

        // A misspelt message key names its file and line.
        std::fs::write(
            dir.path().join("de/page/done.html"),
            "{% extends \"page/base.html\" %}{% block content %}\n{{ t('page-done-heding') }}{% endblock %}",
        )
        .unwrap();
        let e = refused(dir.path());
        assert!(
            e.contains("page-done-heding") && e.contains("de/page/done.html:2"),
            "{e}"
        );
        // A misspelt variable too, in any language's pages.
        std::fs::write(
            dir.path().join("de/page/done.html"),
            "{% extends \"page/base.html\" %}{% block content %}{{ emial }}{% endblock %}",
        )
        .unwrap();
        let e = refused(dir.path());
        assert!(e.contains("emial"), "{e}");
        std::fs::write(
            dir.path().join("de/page/done.html"),
            "{% extends \"page/base.html\" %}{% block content %}{{ t('page-done-heading') }}{% endblock %}",
        )
        .unwrap();
        environment(
            Some(dir.path()),
            crate::config::ServerConfig::default().catalogs,
        )
        .expect("a good override");
    }
}
