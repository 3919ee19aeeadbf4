//! `/livez` (the process answers) and `/readyz` (and its database does), for
//! orchestrators and load balancers. Kept out of the API document.

use std::sync::Arc;

use dropshot::{Body, HttpError, RequestContext};
use http::{Response, StatusCode, header};

use crate::state::AppState;

fn plain(status: StatusCode, text: &str) -> Result<Response<Body>, HttpError> {
    Ok(Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(format!("{text}\n").into())?)
}

#[dropshot::endpoint { method = GET, path = "/livez", unpublished = true }]
pub async fn livez(_rqctx: RequestContext<Arc<AppState>>) -> Result<Response<Body>, HttpError> {
    plain(StatusCode::OK, "live")
}

#[dropshot::endpoint { method = GET, path = "/readyz", unpublished = true }]
pub async fn readyz(rqctx: RequestContext<Arc<AppState>>) -> Result<Response<Body>, HttpError> {
    match rqctx.context().store.ping().await {
        Ok(()) => plain(StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database check failed");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: database unavailable",
            )
        }
    }
}
