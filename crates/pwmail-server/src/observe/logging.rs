//! dropshot logs through slog; this drain forwards its records into tracing
//! with the logger's own key-values (`req_id`, `method`, `uri`, …) included,
//! so dropshot's request lines carry the request id like ours do.

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
        let _ = write!(self.0, "{key}={val}");
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
        let msg = record.msg();
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

/// dropshot's logger.
pub fn dropshot_logger() -> slog::Logger {
    slog::Logger::root(SlogToTracing.fuse(), slog::o!())
}
