//! dropshot logs through slog; this drain forwards its records into tracing
//! with the request id as a field of its own (`request_id`, as on our own
//! lines) and the logger's other key-values (`method`, `uri`, …) in `kv`.
//! Its "request completed" record is also where API responses are counted:
//! it is the one place that sees every response, including those dropshot
//! gives before a handler runs.
//!
//! A reset link is as secret as a password, and dropshot logs every
//! request's `uri`: every value and message passes through
//! [`redact_links`] first, so no log line holds a link token.

use std::borrow::Cow;
use std::fmt::Write as _;

use slog::{Drain, KV, Level, OwnedKVList, Record};

pub struct SlogToTracing;

/// A record's key-values: the request id and what the metrics need apart,
/// the rest as `key=value` pairs (links redacted). Unless `forwarded`, only
/// what the metrics need: at the default log level dropshot's per-request
/// records are not logged, and formatting every value of each cost more
/// than some handlers.
#[derive(Default)]
struct Fields {
    forwarded: bool,
    request_id: Option<String>,
    uri: Option<String>,
    response_code: Option<u16>,
    latency_us: Option<u64>,
    kv: String,
}

impl slog::Serializer for Fields {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let key = key.as_ref();
        if !self.forwarded && !matches!(key, "uri" | "response_code" | "latency_us") {
            return Ok(());
        }
        let value = val.to_string();
        match key {
            "req_id" => {
                self.request_id = Some(value);
                return Ok(());
            }
            "uri" => self.uri = Some(value.clone()),
            "response_code" => self.response_code = value.parse().ok(),
            "latency_us" => self.latency_us = value.parse().ok(),
            _ => {}
        }
        if !self.kv.is_empty() {
            self.kv.push(' ');
        }
        let _ = write!(self.kv, "{key}={}", redact_links(&value));
        Ok(())
    }
}

/// One tracing event at `level`, with `request_id` as a field of its own
/// when the record has one.
macro_rules! forward {
    ($level:ident, $fields:expr, $msg:expr) => {
        match &$fields.request_id {
            Some(id) => tracing::$level!(target: "dropshot", request_id = %id, kv = %$fields.kv, "{}", $msg),
            None => tracing::$level!(target: "dropshot", kv = %$fields.kv, "{}", $msg),
        }
    };
}

impl Drain for SlogToTracing {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let forwarded = enabled(record.level());
        // dropshot's messages are literals: formatted only when one is not.
        let msg: Cow<'_, str> = record
            .msg()
            .as_str()
            .map_or_else(|| Cow::Owned(record.msg().to_string()), Cow::Borrowed);
        let completed = msg == COMPLETED;
        if !forwarded && !completed {
            return Ok(());
        }
        let mut fields = Fields {
            forwarded,
            ..Fields::default()
        };
        let _ = record.kv().serialize(record, &mut fields);
        let _ = values.serialize(record, &mut fields);
        if let (true, Some(uri), Some(status)) = (completed, &fields.uri, fields.response_code) {
            let latency = std::time::Duration::from_micros(fields.latency_us.unwrap_or(0));
            crate::observe::metrics::api_response(uri, status, latency);
        }
        if !forwarded {
            return Ok(());
        }
        let msg = redact_links(&msg);
        match record.level() {
            Level::Critical | Level::Error => forward!(error, fields, msg),
            Level::Warning => forward!(warn, fields, msg),
            Level::Info => forward!(info, fields, msg),
            Level::Debug => forward!(debug, fields, msg),
            Level::Trace => forward!(trace, fields, msg),
        }
        Ok(())
    }
}

/// dropshot's record of each response, which the API metrics count.
const COMPLETED: &str = "request completed";

/// Whether tracing would keep an event of dropshot's at `level`.
fn enabled(level: Level) -> bool {
    use tracing::Level as T;
    match level {
        Level::Critical | Level::Error => tracing::event_enabled!(target: "dropshot", T::ERROR),
        Level::Warning => tracing::event_enabled!(target: "dropshot", T::WARN),
        Level::Info => tracing::event_enabled!(target: "dropshot", T::INFO),
        Level::Debug => tracing::event_enabled!(target: "dropshot", T::DEBUG),
        Level::Trace => tracing::event_enabled!(target: "dropshot", T::TRACE),
    }
}

/// What stands in a log line for the token of `/reset/<token>`.
pub const REDACTED: &str = "<redacted>";

/// `text` with the token after every `/reset/` replaced by [`REDACTED`].
pub fn redact_links(text: &str) -> Cow<'_, str> {
    const MARK: &str = "/reset/";
    if !text.contains(MARK) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let (before, after) = rest.split_at(at + MARK.len());
        out.push_str(before);
        // Up to the end of the path segment: a token, or whatever a caller
        // put there (a mistyped or partial token is secret too).
        let end = after.find(['/', '?', '#', ' ', '"']).unwrap_or(after.len());
        if end > 0 {
            out.push_str(REDACTED);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// dropshot's logger.
pub fn dropshot_logger() -> slog::Logger {
    slog::Logger::root(SlogToTracing.fuse(), slog::o!())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_tokens_never_reach_a_log_line() {
        let token = "Zr3Y0Q2m1x_-abcdefghijABCDEFGHIJ0123456789k";
        assert_eq!(
            redact_links(&format!("uri=/reset/{token} method=POST")),
            "uri=/reset/<redacted> method=POST"
        );
        assert_eq!(
            redact_links(&format!("/reset/{token}?x=1 and /reset/{token}")),
            "/reset/<redacted>?x=1 and /reset/<redacted>"
        );
        assert_eq!(redact_links("/assets/reset.css"), "/assets/reset.css");
        assert_eq!(redact_links("/reset/"), "/reset/");
    }
}
