//! Operator endpoints, kept out of the API document: `/metrics`
//! (Prometheus text), `/livez` (the process answers) and `/readyz` (and its
//! database does), for orchestrators and load balancers; and
//! `/openapi.json`, the served contract, for generating clients.

use dropshot::{Body, HttpError, RequestContext};
use http::{Response, StatusCode, header};

use crate::app::Readiness;
use crate::http::Context;
use crate::observe;

fn plain(status: StatusCode, text: &str) -> Result<Response<Body>, HttpError> {
    Ok(Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(format!("{text}\n").into())?)
}

#[dropshot::endpoint { method = GET, path = "/metrics", unpublished = true }]
pub async fn metrics(rqctx: RequestContext<Context>) -> Result<Response<Body>, HttpError> {
    let (writer, space) = rqctx.context().app.store_state();
    if let Some(stats) = writer {
        observe::metrics::store_writer(&stats);
    }
    observe::metrics::store_space(space);
    let text = observe::metrics::handle().render();
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(text.into())?)
}

#[dropshot::endpoint { method = GET, path = "/livez", unpublished = true }]
pub async fn livez(_rqctx: RequestContext<Context>) -> Result<Response<Body>, HttpError> {
    plain(StatusCode::OK, "live")
}

/// Ready while the database answers and has room to write: after a write
/// failed for lack of space, not ready until one succeeds (a real one, or
/// the probe write `SpaceWatch` makes at most every 5 s while not ready).
#[dropshot::endpoint { method = GET, path = "/readyz", unpublished = true }]
pub async fn readyz(rqctx: RequestContext<Context>) -> Result<Response<Body>, HttpError> {
    match rqctx.context().app.readiness().await {
        Readiness::Ready => plain(StatusCode::OK, "ready"),
        Readiness::NoSpace => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the database has no space left",
        ),
        Readiness::Unavailable(e) => {
            tracing::warn!(error = %e, "not ready: database check failed");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: database unavailable",
            )
        }
    }
}

/// The document the server was built from, as JSON (made once, at start).
pub fn openapi_json() -> anyhow::Result<String> {
    let doc = pwmail_api::document();
    if !doc.is_object() {
        anyhow::bail!("the embedded OpenAPI document does not parse");
    }
    Ok(serde_json::to_string_pretty(doc)?)
}

#[dropshot::endpoint { method = GET, path = "/openapi.json", unpublished = true }]
pub async fn openapi(rqctx: RequestContext<Context>) -> Result<Response<Body>, HttpError> {
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .body(rqctx.context().openapi_json.to_string().into())?)
}
