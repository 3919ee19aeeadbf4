//! A database with no space left: calls are refused with 503 code 14 and a
//! `Retry-After`, never a 500; `/readyz` says not ready until a write
//! succeeds again; a sent email whose result cannot be recorded is never
//! sent twice. On both engines (SQLite held at its size, PostgreSQL with
//! triggers raising `disk_full`). In a binary of its own: it reads the
//! process's metrics.

use std::time::{Duration, Instant};

use pwmail_server::config::{MailConfig, SmtpConfig};
use pwmail_testkit::pg::PgSchema;
use pwmail_testkit::{SmtpOptions, SmtpServer};
use pwmail_tests::{DEADLINE, Options, TestServer};

const RESET_PATH: &str = "/api/web/custom/password/admin_reset";

/// ResetPasswordByAdmin for `email`: status, `Retry-After`, body.
async fn reset(server: &TestServer, email: &str) -> (u16, Option<String>, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(server.endpoint(RESET_PATH))
        .header("Authorization", format!("APIToken {}", server.admin_token))
        .json(&serde_json::json!({ "email": email }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, retry_after, body)
}

async fn readyz(server: &TestServer) -> (u16, String) {
    let response = reqwest::get(server.endpoint("/readyz")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Probe writes the server has made (readiness while not ready).
fn probes(server: &TestServer) -> u64 {
    server.running.app.store_state().1.probes()
}

/// WARN and ERROR lines of this process, as written (all tests of this
/// binary share the one subscriber).
fn warnings() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LINES: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LINES
        .get_or_init(|| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&lines);
            tracing_subscriber::fmt()
                .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
                .with_ansi(false)
                .with_writer(move || Sink(Arc::clone(&sink)))
                .init();
            lines
        })
        .clone()
}

struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn full_then_freed(server: TestServer) {
    const USERS: usize = 400;
    for i in 0..USERS {
        server.add_user(&format!("u{i}@example.com"), false).await;
    }
    // Ready and idle: readiness writes nothing.
    for _ in 0..3 {
        assert_eq!(readyz(&server).await, (200, "ready\n".into()));
    }
    assert_eq!(probes(&server), 0, "a ready server made a probe write");

    let log = warnings();
    server.store().hold_size(true).await.unwrap();
    let mut refused = 0;
    for i in 0..USERS {
        let (status, retry_after, body) = reset(&server, &format!("u{i}@example.com")).await;
        assert!(status == 200 || status == 503, "call {i}: {status} {body}");
        if status == 503 {
            assert_eq!(retry_after.as_deref(), Some("30"), "{body}");
            assert_eq!(body["code"], 14, "{body}");
            assert!(
                body["message"].as_str().unwrap().contains("no space left"),
                "{body}"
            );
            refused += 1;
            if refused == 100 {
                break;
            }
        }
    }
    assert_eq!(refused, 100, "the held database never filled up");
    // A hundred refusals, and at most one line a minute about them (this
    // binary's other test may have written the minute's line already).
    let written = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    // (The dispatcher's lines are its own, per message; a start warns of
    // a test directory's mode.)
    let lines = written
        .lines()
        .filter(|l| !l.contains("pwmail_server::outbox") && !l.contains("pwmail_server::files"));
    let lines: Vec<&str> = lines.collect();
    assert!(
        lines.len() <= 1,
        "{} lines:\n{}",
        lines.len(),
        lines.join("\n")
    );
    let metrics = server.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("pwmail_store_out_of_space_total ")),
        "{metrics}"
    );

    // Not ready while writes fail for lack of space; one probe write, not
    // one per readiness check.
    let (status, body) = readyz(&server).await;
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: the database has no space left\n")
    );
    assert_eq!(probes(&server), 1);
    assert_eq!(readyz(&server).await.0, 503);
    assert_eq!(probes(&server), 1, "probed again within 5 s");

    // Space is back: the next real write makes it ready, with no probe.
    server.store().hold_size(false).await.unwrap();
    let (status, _, body) = reset(&server, "u399@example.com").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(readyz(&server).await, (200, "ready\n".into()));
    assert_eq!(
        probes(&server),
        1,
        "ready again after a real write, without a probe"
    );

    // Full again, then freed with no call: the probe finds it, within 5 s
    // of the last. Nothing is left to send first, so no claim can be the
    // write that shows there is room.
    let queued = server.read_all_outbox().await.len();
    server
        .wait_for_outbox(pwmail_store::OutboxState::Sent, queued)
        .await;
    server.store().hold_size(true).await.unwrap();
    let mut i = USERS - 2;
    while reset(&server, &format!("u{i}@example.com")).await.0 != 503 {
        assert!(i > 0, "the held database never filled up again");
        i -= 1;
    }
    assert_eq!(readyz(&server).await.0, 503);
    server.store().hold_size(false).await.unwrap();
    let deadline = Instant::now() + DEADLINE;
    while readyz(&server).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "never ready again after space was freed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(probes(&server) >= 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_answers_503_is_not_ready_and_recovers() {
    let server = TestServer::start_with(Options {
        user_rate: (1000, 1),
        ..Options::default()
    })
    .await;
    full_then_freed(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_full_answers_503_is_not_ready_and_recovers() {
    let schema = PgSchema::create().await;
    let server = TestServer::start_with(Options {
        user_rate: (1000, 1),
        database_url: Some(schema.url(None)),
        ..Options::default()
    })
    .await;
    full_then_freed(server).await;
    schema.drop_schema().await;
}

/// The dispatcher sends an email, then cannot record that it did for three
/// leases' time: it keeps the result and its lease, and the email goes out
/// once. (Before: the result was given up after half a lease, the lease ran
/// out, and the email was sent again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_whose_result_cannot_be_recorded_is_not_sent_twice() {
    let schema = PgSchema::create().await;
    let lease = Duration::from_secs(2);
    let smtp = SmtpServer::start(SmtpOptions::default());
    let mut mail = SmtpConfig::from_url(&smtp.url()).unwrap();
    mail.timeout = Duration::from_secs(10);
    let server = TestServer::start_with(Options {
        database_url: Some(schema.url(None)),
        mail: Some(MailConfig::Smtp(mail)),
        dispatcher: pwmail_server::config::DispatcherConfig {
            lease,
            send_timeout: Duration::from_secs(1),
            poll_interval: Duration::from_millis(100),
            ..pwmail_server::config::DispatcherConfig::default()
        },
        ..Options::default()
    })
    .await;
    server.add_user("once@example.com", false).await;
    server.store().fail_settles(true).await.unwrap();
    let (status, _, body) = reset(&server, "once@example.com").await;
    assert_eq!(status, 200, "{body}");
    let sent = tokio::task::block_in_place(|| smtp.wait_for(1, DEADLINE));
    assert_eq!(sent.len(), 1);

    // The result waits to be recorded, and says so.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let metrics = server.metrics().await;
        if metrics
            .lines()
            .any(|l| l == "pwmail_outbox_unrecorded_results 1")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(3 * lease).await;
    server.store().fail_settles(false).await.unwrap();
    let rows = server
        .wait_for_outbox(pwmail_store::OutboxState::Sent, 1)
        .await;
    assert_eq!(rows.len(), 1, "the result was never recorded");
    // What the SMTP server received, not what pwmail says it sent.
    let received = smtp.messages();
    assert_eq!(received.len(), 1, "sent {} times", received.len());
    assert_eq!(rows[0].attempts, 1, "{:?}", rows[0]);
    let metrics = server.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "pwmail_outbox_unrecorded_results 0"),
        "{metrics}"
    );
    server.stop().await;
    schema.drop_schema().await;
}
