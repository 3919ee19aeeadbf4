//! The SQLite writer's series on /metrics. In a binary of its own: the
//! metrics are the process's, and another test's calls would move them.

use pwmail_client::types::ResetPasswordByAdminRequest;
use pwmail_store::OutboxState;
use pwmail_tests::TestServer;

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn body(email: &str) -> pwmail_client::types::builder::ResetPasswordByAdminRequest {
    ResetPasswordByAdminRequest::builder().email(email)
}

/// On SQLite, /metrics shows the writer thread's work, as README describes
/// it: writes and the batches they were committed in (several writes per
/// commit, never fewer than one), the WAL's fsyncs, and how busy the one
/// writer is against its uptime.
#[tokio::test]
async fn the_sqlite_writer_is_visible_in_metrics() {
    let server = TestServer::start().await;
    server.add_user("writer@example.com", false).await;
    server
        .client()
        .reset_password_by_admin()
        .body(body("writer@example.com"))
        .send()
        .await
        .expect("200");
    server.wait_for_outbox(OutboxState::Sent, 1).await;
    let text = server.metrics().await;
    let series = |name: &str| {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} missing:\n{text}"
        );
        value(&text, name)
    };
    let writes = series("pwmail_store_writer_writes_total");
    let batches = series("pwmail_store_writer_batches_total");
    let syncs = series("pwmail_store_writer_syncs_total");
    let busy = series("pwmail_store_writer_busy_seconds");
    let uptime = series("pwmail_store_writer_uptime_seconds");
    series("pwmail_store_writer_commit_seconds");
    series("pwmail_store_writer_sync_seconds");
    assert!(
        batches >= 1.0 && writes >= batches,
        "{writes} writes in {batches} batches"
    );
    assert!(syncs >= 1.0, "{syncs} fsyncs");
    assert!(busy > 0.0 && busy <= uptime, "busy {busy} s of {uptime} s");
    server.stop().await;
}
