//! The HTTP side: the generated `PwmailApi` trait implemented over
//! [`App`](crate::app::App), the reset page, and the operator endpoints
//! (`/metrics`, `/livez`, `/readyz`, `/openapi.json`). Handlers parse, call `app`, and map
//! the result in `error`; they hold no product rule.

pub mod api;
pub mod auth;
pub mod connections;
pub mod error;
pub mod ops;
pub mod reset_page;
pub mod router_errors;

use std::sync::Arc;

use crate::app::App;

/// What every handler gets: the application and the reset page's templates.
/// Cheap to clone: the server and the router-error renderer share one.
#[derive(Clone)]
pub struct Context {
    pub app: Arc<App>,
    pages: Arc<reset_page::Pages>,
    /// The operator's stylesheet (`--page-css`), read at start.
    page_css: Option<Arc<str>>,
    openapi_json: Arc<str>,
}

impl Context {
    /// Reads the page templates (`--template-dir`) and stylesheet
    /// (`--page-css`): a broken one stops the start.
    pub fn new(app: Arc<App>) -> anyhow::Result<Self> {
        let config = app.config();
        let pages =
            reset_page::environment(config.template_dir.as_deref(), config.catalogs.clone())?;
        let page_css = match &config.page_css {
            Some(path) => Some(
                crate::files::read_small_text(path)
                    .map_err(|e| anyhow::anyhow!("--page-css {}: {e}", path.display()))?
                    .into(),
            ),
            None => None,
        };
        Ok(Context {
            pages: Arc::new(pages),
            page_css,
            openapi_json: ops::openapi_json()?.into(),
            app,
        })
    }
}

/// The API trait's endpoints plus the unpublished ones (reset page,
/// metrics, health).
pub fn api_description() -> anyhow::Result<dropshot::ApiDescription<Context>> {
    let mut api = pwmail_api::pwmail_api_mod::api_description::<api::PwmailImpl>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for registered in [
        api.register(ops::metrics),
        api.register(ops::livez),
        api.register(ops::readyz),
        api.register(ops::openapi),
        api.register(reset_page::reset_form),
        api.register(reset_page::reset_submit),
        api.register(reset_page::reset_css),
        api.register(reset_page::page_stylesheet),
    ] {
        registered.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(api)
}

/// What every response carries. Over HTTPS, `Strict-Transport-Security`
/// (one year): a browser that has reached the reset page over https never
/// sends the next link, or its password, over plain http.
pub fn every_response_headers(tls: bool) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    if tls {
        headers.insert(
            http::header::STRICT_TRANSPORT_SECURITY,
            http::HeaderValue::from_static("max-age=31536000"),
        );
    }
    headers
}

/// The operator listener's endpoints (`--ops-listen`): health and metrics
/// only, so that probes answer even while the public port is flooded.
pub fn ops_description() -> anyhow::Result<dropshot::ApiDescription<Context>> {
    let mut api = dropshot::ApiDescription::new();
    for registered in [
        api.register(ops::metrics),
        api.register(ops::livez),
        api.register(ops::readyz),
    ] {
        registered.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(api)
}

/// The span of one request, named `name` (the operation, or the page's
/// route: never a token): it carries the request id, continues the
/// caller's trace (`traceparent`) and, with traces on, its ids.
pub(crate) fn request_span(
    rqctx: &dropshot::RequestContext<Context>,
    name: &'static str,
) -> tracing::Span {
    if !crate::observe::traces::on() {
        return tracing::info_span!("request", request_id = %rqctx.request_id, operation = name);
    }
    let span = tracing::info_span!(
        "request",
        otel.name = name,
        otel.kind = "server",
        request_id = %rqctx.request_id,
        operation = name,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    crate::observe::traces::continue_from(&span, rqctx.request.headers());
    span
}
