//! Prometheus metrics; `http::ops` renders them at `GET /metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use pwmail_store::{OutboxState, WriterStats};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide recorder; installed on first use (tests start several
/// servers in one process).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is already global: render an empty one.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

pub fn outbox_depth(depth: &[(OutboxState, u64)]) {
    for (state, n) in depth {
        metrics::gauge!("pwmail_outbox_messages", "state" => state.as_str()).set(*n as f64);
    }
}

/// SQLite's writer thread: commits, the writes they carried (their ratio
/// is the batch size) and the time it was busy (against the uptime, its
/// busy share); its sync thread's fsyncs and the time they took.
pub fn store_writer(stats: &WriterStats) {
    metrics::counter!("pwmail_store_writer_syncs_total").absolute(stats.syncs);
    metrics::gauge!("pwmail_store_writer_sync_seconds").set(stats.syncing.as_secs_f64());
    metrics::counter!("pwmail_store_writer_batches_total").absolute(stats.batches);
    metrics::counter!("pwmail_store_writer_writes_total").absolute(stats.writes);
    metrics::gauge!("pwmail_store_writer_busy_seconds").set(stats.busy.as_secs_f64());
    metrics::gauge!("pwmail_store_writer_commit_seconds").set(stats.committing.as_secs_f64());
    metrics::gauge!("pwmail_store_writer_uptime_seconds").set(stats.uptime.as_secs_f64());
}

/// Whether the last write found the database full (1) or not (0), and the
/// probe writes readiness has made to find out whether it still is.
pub fn store_space(space: &pwmail_store::SpaceWatch) {
    metrics::gauge!("pwmail_store_out_of_space").set(if space.is_lacking() { 1.0 } else { 0.0 });
    metrics::counter!("pwmail_store_space_probes_total").absolute(space.probes());
}

/// Rows the retention purge deleted, per table (`emails`, `links`, `audit`),
/// counted as each window goes.
pub fn purged(table: pwmail_store::Aging, rows: u64) {
    metrics::counter!("pwmail_purged_rows_total", "table" => table.as_str()).increment(rows);
}

/// Sent messages whose result could not be recorded yet (kept, and tried
/// again, while their lease is extended).
pub fn unrecorded_results(waiting: usize) {
    metrics::gauge!("pwmail_outbox_unrecorded_results").set(waiting as f64);
}

/// One event delivery attempt: `outcome` is delivered, retry or failed.
pub fn event_attempt(outcome: &'static str, latency: Duration) {
    metrics::counter!("pwmail_event_attempts_total", "outcome" => outcome).increment(1);
    metrics::histogram!("pwmail_event_delivery_seconds").record(latency.as_secs_f64());
}

/// Events waiting, per state (`pending`, `delivering`, `failed`).
pub fn event_depth(depth: &[(pwmail_store::EventState, u64)]) {
    for (state, n) in depth {
        metrics::gauge!("pwmail_events", "state" => state.as_str()).set(*n as f64);
    }
}

/// One send attempt: `outcome` is sent, retry or dead.
pub fn send_attempt(outcome: &'static str, latency: Duration) {
    metrics::counter!("pwmail_mail_send_attempts_total", "outcome" => outcome).increment(1);
    metrics::histogram!("pwmail_mail_send_seconds").record(latency.as_secs_f64());
}

/// One response on an API path, whatever answered it: the handler, or
/// dropshot before it (a body that does not parse, a wrong content type, an
/// unknown path). `observe::logging` calls this from dropshot's "request
/// completed" record, the one place that sees every response.
pub fn api_response(path: &str, status: u16, latency: Duration) {
    let Some(operation) = api_operation(path) else {
        return;
    };
    metrics::counter!(
        "pwmail_api_requests_total",
        "operation" => operation,
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!("pwmail_api_request_seconds", "operation" => operation)
        .record(latency.as_secs_f64());
}

/// The `operationId` whose path template matches `path` (a request under
/// `/api/`), from the API document; "unknown" for other `/api/` paths, so
/// the label stays bounded. `None` outside `/api/`.
pub fn api_operation(path: &str) -> Option<&'static str> {
    if !path.starts_with("/api/") {
        return None;
    }
    Some(
        pwmail_api::routes::matching(path)
            .next()
            .map_or("unknown", |route| route.operation_id.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_map_to_their_operation() {
        assert_eq!(
            api_operation("/api/web/custom/namespaces/system/send_password_email"),
            Some("send_password_email")
        );
        assert_eq!(
            api_operation("/api/web/custom/namespaces/other/send_password_email"),
            Some("send_password_email")
        );
        assert_eq!(
            api_operation("/api/web/custom/password/admin_reset?x=1"),
            Some("reset_password_by_admin")
        );
        assert_eq!(
            api_operation("/api/web/custom/password/email_status"),
            Some("get_password_email_status")
        );
        assert_eq!(api_operation("/api/nothing/here"), Some("unknown"));
        assert_eq!(api_operation("/reset/abc"), None);
        assert_eq!(api_operation("/metrics"), None);
    }
}
