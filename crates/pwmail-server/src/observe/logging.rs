//! dropshot logs through slog; this drain forwards its records into tracing
//! with dropshot's key-values as fields of their own, named as pwmail's own
//! lines name them (`request_id`, `method`, `path`, `status` and
//! `latency_us` as numbers, `remote_addr`, `local_addr`, `error`); any other
//! key-value stays in `kv`.
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
    method: Option<String>,
    remote_addr: Option<String>,
    local_addr: Option<String>,
    /// What dropshot told the client, and why (internal), when it failed.
    error_external: Option<String>,
    error_internal: Option<String>,
    kv: String,
}

impl slog::Serializer for Fields {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let key = key.as_ref();
        if !self.forwarded && !matches!(key, "uri" | "response_code" | "latency_us") {
            return Ok(());
        }
        let value = val.to_string();
        let field = match key {
            "req_id" => &mut self.request_id,
            "uri" => &mut self.uri,
            "method" => &mut self.method,
            "remote_addr" => &mut self.remote_addr,
            "local_addr" => &mut self.local_addr,
            "error_message_external" => &mut self.error_external,
            "error_message_internal" => &mut self.error_internal,
            "response_code" if value.parse::<u16>().is_ok() => {
                self.response_code = value.parse().ok();
                return Ok(());
            }
            "latency_us" if value.parse::<u64>().is_ok() => {
                self.latency_us = value.parse().ok();
                return Ok(());
            }
            _ => {
                if !self.kv.is_empty() {
                    self.kv.push(' ');
                }
                let _ = write!(self.kv, "{key}={}", redact_links(&value));
                return Ok(());
            }
        };
        // The uri raw: the metrics map it to its route; logged redacted.
        *field = Some(if key == "uri" {
            value
        } else {
            redact_links(&value).into_owned()
        });
        Ok(())
    }
}

impl Fields {
    /// The other key-values, if any.
    fn kv(&self) -> Option<&str> {
        (!self.kv.is_empty()).then_some(self.kv.as_str())
    }
}

/// One tracing event at `level`, each of dropshot's key-values a field of
/// its own (absent when the record has none).
macro_rules! forward {
    ($level:ident, $f:expr, $msg:expr) => {
        tracing::$level!(
            target: "dropshot",
            request_id = $f.request_id.as_deref(),
            method = $f.method.as_deref(),
            path = $f.uri.as_deref().map(redact_links).as_deref(),
            status = $f.response_code,
            latency_us = $f.latency_us,
            remote_addr = $f.remote_addr.as_deref(),
            local_addr = $f.local_addr.as_deref(),
            error = $f.error_external.as_deref(),
            error_detail = $f.error_internal.as_deref(),
            kv = $f.kv(),
            "{}",
            $msg
        )
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

/// What stands in a log line for anything that could be a link token.
pub const REDACTED: &str = "<redacted>";

/// Path segments of the pages and operator endpoints (not in the API
/// document), kept as they are; the API's own come from the document.
const UNPUBLISHED_SEGMENTS: &[&str] = &[
    "reset",
    "assets",
    "reset.css",
    "metrics",
    "livez",
    "readyz",
    "openapi.json",
];

/// Whether `segment` is a literal segment of one of pwmail's routes.
fn known_segment(segment: &str) -> bool {
    UNPUBLISHED_SEGMENTS.contains(&segment)
        || pwmail_api::routes::routes()
            .iter()
            .flat_map(|r| &r.segments)
            .any(|t| t == segment && !t.starts_with('{'))
}

/// A segment this long could hold a token or a usable part of one (a link
/// token is 43 characters).
const SEGMENT_MAX_KEPT: usize = 16;
/// A run of token characters this long in a query value is taken for one.
const QUERY_RUN_MAX_KEPT: usize = 32;

/// `text` with every path segment that could be a link token replaced by
/// [`REDACTED`], whichever route the path matched or failed to match:
/// mail gateways and proxies rewrite links (`/reset//TOKEN`,
/// `/%72eset/TOKEN`, a base path in front), and each such spelling reaches
/// the log. Every word holding a `/` is read as a path (percent-escapes
/// decoded first): a segment after a `reset` segment (any case), and any
/// other segment that is not one of pwmail's route names and is at least
/// 16 characters long, is redacted, as is a query value holding a run of 32
/// token characters (a UUID excepted: request ids are not secret).
pub fn redact_links(text: &str) -> Cow<'_, str> {
    if !text.contains('/') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut word_start = 0;
    for (at, c) in text
        .char_indices()
        .filter(|(_, c)| is_word_break(*c))
        .chain(std::iter::once((text.len(), ' ')))
    {
        let word = &text[word_start..at];
        match redact_path(word) {
            Some(redacted) => {
                changed = true;
                out.push_str(&redacted);
            }
            None => out.push_str(word),
        }
        if at < text.len() {
            out.push(c);
        }
        word_start = at + c.len_utf8();
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

fn is_word_break(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '<' | '>' | '(' | ')')
}

/// `word` redacted, or `None` when nothing in it could be a token.
fn redact_path(word: &str) -> Option<String> {
    if !word.contains('/') {
        return None;
    }
    let decoded = percent_decode(word);
    let (path, query) = match decoded.find(['?', '#']) {
        Some(at) => decoded.split_at(at),
        None => (decoded.as_ref(), ""),
    };
    let mut changed = decoded != word;
    let mut out = String::with_capacity(decoded.len());
    let mut after_reset = false;
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let known = known_segment(segment);
        let secret = !segment.is_empty()
            && (after_reset || (!known && segment.chars().count() >= SEGMENT_MAX_KEPT));
        if secret {
            out.push_str(REDACTED);
            changed = true;
        } else {
            out.push_str(segment);
        }
        if !segment.is_empty() {
            after_reset = segment.eq_ignore_ascii_case("reset") && !after_reset;
        }
    }
    for (i, part) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let (name, value) = match part.find('=') {
            Some(at) => part.split_at(at + 1),
            None => ("", part),
        };
        out.push_str(name);
        if has_token_run(value) {
            out.push_str(REDACTED);
            changed = true;
        } else {
            out.push_str(value);
        }
    }
    changed.then_some(out)
}

/// Whether `value` holds a run of [`QUERY_RUN_MAX_KEPT`] URL-safe base64
/// characters that is not a UUID.
fn has_token_run(value: &str) -> bool {
    value
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .any(|run| run.len() >= QUERY_RUN_MAX_KEPT && uuid::Uuid::parse_str(run).is_err())
}

/// `%XX` escapes decoded (lossy where they make invalid UTF-8).
pub(crate) fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
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

    /// Every spelling a gateway or a proxy makes of a link, and the routes'
    /// own names kept readable.
    #[test]
    fn a_token_is_redacted_whichever_spelling_of_the_path_holds_it() {
        let token = "Zr3Y0Q2m1x_-abcdefghijABCDEFGHIJ0123456789k";
        let encoded_first = format!("%{:02X}{}", token.as_bytes()[0], &token[1..]);
        let every_other: String = token
            .bytes()
            .enumerate()
            .map(|(i, b)| {
                if i % 2 == 0 {
                    format!("%{b:02x}")
                } else {
                    (b as char).to_string()
                }
            })
            .collect();
        for path in [
            format!("/reset/{token}"),
            format!("/reset//{token}"),
            format!("/reset///{token}"),
            format!("/%72eset/{token}"),
            format!("/reset/./{token}"),
            format!("/RESET/{token}"),
            format!("/api/{token}"),
            format!("/{token}"),
            format!("/base/path/reset/{token}?x=1"),
            format!("/reset/{encoded_first}"),
            format!("/reset/{every_other}"),
            format!("/somewhere?next={token}"),
            format!("/reset/{}", &token[..10]),
        ] {
            let line = format!("uri={path} method=GET");
            let redacted = redact_links(&line);
            assert!(redacted.contains(REDACTED), "{line} -> {redacted}");
            for part in [&token[..10], &token[10..26], &token[26..]] {
                assert!(!redacted.contains(part), "{line} -> {redacted}");
            }
        }
        for kept in [
            "/api/web/custom/namespaces/system/send_password_email",
            "/api/web/custom/password/admin_reset",
            "/api/web/custom/password/email_status?request_id=01a24d15-754f-723a-93e0-b6af2de319a8",
            "/api/web/custom/password/email_status?email=someone@example.com",
            "/assets/reset.css",
            "/openapi.json",
            "no path here",
        ] {
            assert_eq!(redact_links(kept), kept);
        }
    }
}
