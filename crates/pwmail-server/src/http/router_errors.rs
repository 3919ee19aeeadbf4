//! The errors dropshot answers before any handler runs (no route for the
//! path: 404; a method the path does not take: 405), in pwmail's own
//! shapes: under `/api/` the API's `{code, message, details}`, under
//! `/reset/` the reset page's problem page with its security headers.
//! Installed through the patched dropshot's `ServerBuilder::error_renderer`
//! (vendor/dropshot/PATCHES.md).

use std::sync::Arc;

use dropshot::{Body, HttpError, HttpResponse as _, HttpResponseOk};
use http::{HeaderValue, Response};
use pwmail_api::{ApiError, Reply};

use crate::http::Context;
use crate::http::error::Problem;
use crate::http::reset_page;

/// The renderer dropshot calls with the request's path, its error and the
/// request id.
pub fn renderer(ctx: Arc<Context>) -> dropshot::ErrorRenderer {
    Arc::new(move |path, error, request_id| render(&ctx, path, error, request_id))
}

fn render(
    ctx: &Context,
    path: &str,
    error: &HttpError,
    request_id: &str,
) -> Option<Response<Body>> {
    let status = error.status_code.as_u16();
    let (mut response, allow) = if path == "/api" || path.starts_with("/api/") {
        let error = match status {
            404 => ApiError::NotFound("no API operation at this path".into()),
            405 => ApiError::MethodNotAllowed(
                "this API operation does not take that HTTP method".into(),
            ),
            _ => return None,
        };
        let allow: Vec<&str> = pwmail_api::routes::matching(path)
            .map(|route| route.method.as_str())
            .collect();
        let response = Reply::<HttpResponseOk<()>>::from(Err(error))
            .to_result()
            .ok()?;
        (response, allow.join(", "))
    } else if is_page_path(path) {
        let problem = match status {
            // A mangled link is, to its reader, a link that does not work
            // (400: a path dropshot cannot read, such as `/reset/./TOKEN`).
            400 | 404 => Problem::Invalid,
            405 => Problem::MethodNotAllowed,
            _ => return None,
        };
        // No request headers reach here: the default language.
        let lang = ctx.app.config().catalogs.default_lang();
        let response = reset_page::problem_page(ctx, problem, lang).ok()?;
        (response, "GET, POST".to_string())
    } else {
        return None;
    };
    // RFC 9110: a 405 lists the methods the resource takes.
    if status == 405 {
        response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_str(&allow).ok()?);
    }
    response
        .headers_mut()
        .insert("x-request-id", HeaderValue::from_str(request_id).ok()?);
    Some(response)
}

/// Whether `path` is some spelling of the reset page's (`/RESET/…`,
/// `//reset/…`, `/%72eset/…`): answered as the page, never as JSON.
pub(crate) fn is_page_path(path: &str) -> bool {
    let decoded = crate::observe::logging::percent_decode(path);
    let rest = decoded.trim_start_matches('/');
    rest.get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("reset"))
        && matches!(rest.as_bytes().get(5), None | Some(b'/'))
}
