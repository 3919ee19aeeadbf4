//! What a client may hold of the server: the open-file limit raised at
//! start, the connection cap derived from it, the client timeout, and the
//! metrics and `408` answers of the patched dropshot's connection limits
//! (vendor/dropshot/src/connection.rs).

use std::sync::Arc;
use std::time::Duration;

use dropshot::{ClosedBecause, ConnectionLimits, ConnectionObserver};
use http::Response;
use pwmail_api::ApiError;

use crate::config::{MailConfig, ServerConfig};
use crate::http::Context;
use crate::http::error::Problem;
use crate::http::{reset_page, router_errors};

/// Connections the operator listener (`--ops-listen`) takes at once: a few
/// probes and a scraper, never a flood.
pub const OPS_MAX_CONNECTIONS: usize = 32;

/// Descriptors kept aside from the connection cap for everything else the
/// process opens: stdio, the log, SQLite's files, templates, TLS files,
/// the listener sockets, the Prometheus and lock files.
const FIXED_RESERVE: u64 = 128;

/// The open-file limit after [`raise_nofile_limit`]: what it was, what it is.
#[derive(Clone, Copy, Debug)]
pub struct NofileLimit {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
}

/// The process's `RLIMIT_NOFILE` now.
pub fn nofile_limit() -> std::io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(limit)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (systemd's default
/// soft limit is 1024, far below what a server needs).
pub fn raise_nofile_limit() -> std::io::Result<NofileLimit> {
    let mut limit = nofile_limit()?;
    let soft_before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit through a valid pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(NofileLimit {
        soft_before,
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// Descriptors the rest of the process may need at once with `config`:
/// database connections (SQLite holds the file, its WAL and its shared
/// memory), SMTP sessions, the operator listener's budget, and a fixed part.
pub fn reserved_descriptors(config: &ServerConfig) -> u64 {
    let database = 3 * u64::from(config.db_pool_size);
    let mail = match &config.mail {
        MailConfig::Smtp(smtp) => {
            u64::from(smtp.pool_size) + u64::from(config.dispatcher.concurrency)
        }
        // One file written, or one HTTP connection, per message in flight.
        MailConfig::Directory(_) | MailConfig::Hook(_) | MailConfig::Ses(_) => {
            u64::from(config.dispatcher.concurrency)
        }
    };
    let ops = if config.ops_listen.is_some() {
        OPS_MAX_CONNECTIONS as u64
    } else {
        0
    };
    FIXED_RESERVE + database + mail + ops
}

/// `--max-connections` when not given: the open-file limit less what the
/// rest of the process needs, so that accepting never runs the database
/// or SMTP out of descriptors; at least 16.
pub fn default_max_connections(soft_limit: u64, config: &ServerConfig) -> usize {
    let free = soft_limit.saturating_sub(reserved_descriptors(config));
    usize::try_from(free.max(16)).unwrap_or(usize::MAX)
}

/// The limits for one listener (`"public"` or `"ops"`, its metrics label).
pub fn limits(
    ctx: Arc<Context>,
    listener: &'static str,
    client_timeout: Duration,
    max_connections: usize,
) -> ConnectionLimits {
    let seconds = client_timeout.as_secs();
    ConnectionLimits {
        client_timeout,
        max_connections,
        observer: Some(Arc::new(Metrics { listener })),
        timeout_response: Some(Arc::new(move |path: Option<&str>| {
            timeout_response(&ctx, path, seconds)
        })),
    }
}

/// The `408` for a request that did not arrive within the client timeout:
/// the reset page's problem page under `/reset/`, the API's error shape
/// (code 4) everywhere else.
fn timeout_response(ctx: &Context, path: Option<&str>, seconds: u64) -> Response<Vec<u8>> {
    if path.is_some_and(router_errors::is_page_path)
        && let Ok(page) = reset_page::problem_bytes(
            ctx,
            Problem::RequestTimeout,
            ctx.app.config().catalogs.default_lang(),
        )
    {
        return page;
    }
    let error = ApiError::RequestTimeout(request_timeout_message(seconds));
    let body = serde_json::to_vec(&error.body()).unwrap_or_default();
    let mut response = Response::new(body);
    *response.status_mut() = http::StatusCode::REQUEST_TIMEOUT;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// What a client whose request did not arrive in time is told.
pub fn request_timeout_message(seconds: u64) -> String {
    format!("the request did not arrive within the client timeout ({seconds} s); send it again")
}

/// Connection metrics, labelled by listener.
struct Metrics {
    listener: &'static str,
}

impl ConnectionObserver for Metrics {
    fn opened(&self) {
        metrics::gauge!("pwmail_connections_open", "listener" => self.listener).increment(1.0);
    }

    fn closed(&self) {
        metrics::gauge!("pwmail_connections_open", "listener" => self.listener).decrement(1.0);
    }

    fn refused(&self) {
        metrics::counter!("pwmail_connections_refused_total", "listener" => self.listener)
            .increment(1);
    }

    fn timed_out(&self, why: ClosedBecause) {
        let reason = match why {
            ClosedBecause::Idle => "idle",
            ClosedBecause::RequestTimeout => "request",
            ClosedBecause::TlsHandshakeTimeout => "tls_handshake",
        };
        metrics::counter!("pwmail_connections_timed_out_total",
            "listener" => self.listener, "reason" => reason)
        .increment(1);
    }

    fn accept_failed(&self, _error: &std::io::Error) {
        metrics::counter!("pwmail_accept_errors_total", "listener" => self.listener).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_the_reserve_free() {
        let config = ServerConfig::default();
        let reserve = reserved_descriptors(&config);
        // SQLite default: 128 fixed + 3 × 16 pool + 8 mail writers.
        assert_eq!(reserve, 128 + 3 * 16 + 8);
        assert_eq!(
            default_max_connections(1024, &config),
            (1024 - reserve) as usize
        );
        assert_eq!(default_max_connections(100, &config), 16);
        let with_ops = ServerConfig {
            ops_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..ServerConfig::default()
        };
        assert_eq!(
            reserved_descriptors(&with_ops),
            reserve + OPS_MAX_CONNECTIONS as u64
        );
    }
}
