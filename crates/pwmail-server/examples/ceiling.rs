//! The HTTP ceiling for `cargo xtask bench`: a bare dropshot server answering
//! SendPasswordEmail's route with `{}` (it parses the JSON body, like pwmail;
//! no auth, no database, no email).
//!
//! usage: ceiling 127.0.0.1:PORT

use dropshot::{
    ApiDescription, ConfigDropshot, HttpError, HttpResponseOk, Path, RequestContext, TypedBody,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NamespacePath {
    #[allow(dead_code)]
    namespace: String,
}

#[dropshot::endpoint {
    method = POST,
    path = "/api/web/custom/namespaces/{namespace}/send_password_email",
}]
async fn send_password_email(
    _rqctx: RequestContext<()>,
    _path: Path<NamespacePath>,
    _body: TypedBody<serde_json::Value>,
) -> Result<HttpResponseOk<serde_json::Map<String, serde_json::Value>>, HttpError> {
    Ok(HttpResponseOk(serde_json::Map::new()))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    let mut api = ApiDescription::new();
    api.register(send_password_email)
        .map_err(|e| e.to_string())?;
    let config = ConfigDropshot {
        bind_address: listen.parse().map_err(|e| format!("{listen}: {e}"))?,
        default_request_body_max_bytes: 16 * 1024,
        ..Default::default()
    };
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let server = dropshot::ServerBuilder::new(api, (), log)
        .config(config)
        .start()
        .map_err(|e| e.to_string())?;
    // SIGINT handled here, not left to its default action: a process
    // started in the background by a shell inherits SIGINT ignored, and the
    // bench stops this one with SIGINT so callgrind writes its counts.
    tokio::select! {
        stopped = server => stopped,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
