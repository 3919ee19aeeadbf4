//! Prometheus metrics; `http::ops` renders them at `GET /metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use pwmail_store::OutboxState;

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

/// One send attempt: `outcome` is sent, retry or dead.
pub fn send_attempt(outcome: &'static str, latency: Duration) {
    metrics::counter!("pwmail_mail_send_attempts_total", "outcome" => outcome).increment(1);
    metrics::histogram!("pwmail_mail_send_seconds").record(latency.as_secs_f64());
}

pub fn api_request(operation: &'static str, status: u16, latency: Duration) {
    metrics::counter!(
        "pwmail_api_requests_total",
        "operation" => operation,
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!("pwmail_api_request_seconds", "operation" => operation)
        .record(latency.as_secs_f64());
}
