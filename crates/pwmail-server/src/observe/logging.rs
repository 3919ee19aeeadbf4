//! dropshot logs through slog; this drain forwards its records into tracing
//! with the logger's own key-values (`req_id`, `method`, `uri`, …) included,
//! so dropshot's request lines carry the request id like ours do.
//!
//! A reset link is as secret as a password, and dropshot logs every
//! request's `uri`: every value and message passes through
//! [`redact_links`] first, so no log line holds a link token.

use std::borrow::Cow;
use std::fmt::Write as _;

use slog::{Drain, KV, Level, OwnedKVList, Record};

pub struct SlogToTracing;

/// Collects key-values as `key=value` pairs.
struct Pairs(String);

impl slog::Serializer for Pairs {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let value = val.to_string();
        let _ = write!(self.0, "{key}={}", redact_links(&value));
        Ok(())
    }
}

impl Drain for SlogToTracing {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut pairs = Pairs(String::new());
        let _ = record.kv().serialize(record, &mut pairs);
        let _ = values.serialize(record, &mut pairs);
        let kv = pairs.0;
        let msg = record.msg().to_string();
        let msg = redact_links(&msg);
        match record.level() {
            Level::Critical | Level::Error => {
                tracing::error!(target: "dropshot", kv = %kv, "{msg}")
            }
            Level::Warning => tracing::warn!(target: "dropshot", kv = %kv, "{msg}"),
            Level::Info => tracing::info!(target: "dropshot", kv = %kv, "{msg}"),
            Level::Debug => tracing::debug!(target: "dropshot", kv = %kv, "{msg}"),
            Level::Trace => tracing::trace!(target: "dropshot", kv = %kv, "{msg}"),
        }
        Ok(())
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
