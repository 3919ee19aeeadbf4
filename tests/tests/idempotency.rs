//! Idempotency-Key on both operations: a retried call never emails twice.

use std::sync::Arc;
use std::time::Duration;

use pwmail_client::types::{ResetPasswordByAdminRequest, SendPasswordEmailRequest};
use pwmail_server::clock::ManualClock;
use pwmail_server::config::{MailConfig, SmtpConfig};
use pwmail_testkit::pg::PgSchema;
use pwmail_testkit::{SmtpOptions, SmtpServer};
use pwmail_tests::{DEADLINE, Options, TestServer, now};

const RESET: &str = "/api/web/custom/password/admin_reset";

fn body(email: &str) -> pwmail_client::types::builder::ResetPasswordByAdminRequest {
    ResetPasswordByAdminRequest::builder().email(email)
}

/// ResetPasswordByAdmin with `key` through a raw client: (status, replayed
/// header, error code).
async fn raw_reset(
    server: &TestServer,
    token: &str,
    key: &str,
    email: &str,
) -> (u16, Option<String>, Option<i64>) {
    let response = reqwest::Client::new()
        .post(server.endpoint(RESET))
        .header("Authorization", format!("APIToken {token}"))
        .header("Idempotency-Key", key)
        .json(&serde_json::json!({ "email": email }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_string());
    let json: serde_json::Value = response.json().await.unwrap();
    (status, replayed, json["code"].as_i64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_twice_sends_one_email_and_marks_the_retry_replayed() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let mut config = SmtpConfig::from_url(&smtp.url()).unwrap();
    config.timeout = Duration::from_secs(10);
    let server = TestServer::start_with(Options {
        mail: Some(MailConfig::Smtp(config)),
        ..Options::default()
    })
    .await;
    let user = server.add_user("retry@example.com", false).await;
    let client = server.client();

    let first = client
        .reset_password_by_admin()
        .idempotency_key("run-1:retry")
        .body(body("retry@example.com"))
        .send()
        .await
        .expect("200");
    assert_eq!(first.headers().get("idempotent-replayed"), None);
    // Within the per-user cooldown: without the key this would be a 429.
    let second = client
        .reset_password_by_admin()
        .idempotency_key("run-1:retry")
        .body(body("retry@example.com"))
        .send()
        .await
        .expect("the retry is answered 200");
    assert_eq!(
        second.headers()["idempotent-replayed"].to_str().unwrap(),
        "true"
    );
    // SendPasswordEmail takes the header too, with its own scope.
    let refused = client
        .send_password_email_system()
        .idempotency_key("run-1:retry")
        .body(SendPasswordEmailRequest::builder().email("retry@example.com"))
        .send()
        .await
        .expect_err("another operation is another call: the cooldown applies");
    assert_eq!(refused.status(), Some(429));

    let messages = tokio::task::block_in_place(|| smtp.wait_for(1, DEADLINE));
    assert_eq!(messages.len(), 1);
    // Nothing is left to send: the count is final.
    server.wait_until_quiet().await;
    assert_eq!(smtp.messages().len(), 1, "one email at the SMTP server");
    assert_eq!(server.read_all_outbox().await.len(), 1, "one outbox row");
    let audit = server.store().audit_entries(user.id).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].idempotency_key.as_deref(), Some("run-1:retry"));
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_422_and_changes_nothing() {
    let server = TestServer::start_with(Options {
        user_rate: (100, 1),
        ..Options::default()
    })
    .await;
    server.add_user("a@example.com", false).await;
    server.add_user("b@example.com", false).await;
    let token = server.admin_token.clone();
    assert_eq!(
        raw_reset(&server, &token, "k1", "a@example.com").await,
        (200, None, None)
    );
    assert_eq!(
        raw_reset(&server, &token, "k1", "b@example.com").await,
        (422, None, Some(3))
    );
    // Case does not make another request.
    assert_eq!(
        raw_reset(&server, &token, "k1", "A@Example.com").await,
        (200, Some("true".into()), None)
    );
    assert_eq!(server.read_all_outbox().await.len(), 1);

    // Keys belong to the token that used them: another admin's token with
    // the same key is a call of its own.
    let other = server.token_for(pwmail_tests::ADMIN).await;
    assert_eq!(
        raw_reset(&server, &other, "k1", "b@example.com").await,
        (200, None, None)
    );
    assert_eq!(server.read_all_outbox().await.len(), 2);

    // Malformed keys are refused in the error shape.
    for bad in ["tab\there", &"x".repeat(256)] {
        let (status, _, code) = raw_reset(&server, &token, bad, "a@example.com").await;
        assert_eq!((status, code), (400, Some(3)), "{bad:?}");
    }
}

#[tokio::test]
async fn refusals_are_not_stored_so_a_corrected_retry_goes_through() {
    let server = TestServer::start().await;
    let token = server.admin_token.clone();
    assert_eq!(
        raw_reset(&server, &token, "fix-me", "late@example.com").await,
        (404, None, Some(5))
    );
    server.add_user("late@example.com", false).await;
    assert_eq!(
        raw_reset(&server, &token, "fix-me", "late@example.com").await,
        (200, None, None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_never_send_two_emails() {
    let server = TestServer::start().await;
    server.add_user("race@example.com", false).await;
    let token = server.admin_token.clone();
    let calls = (0..8).map(|_| raw_reset(&server, &token, "race-key", "race@example.com"));
    let answers = futures::future::join_all(calls).await;
    let fresh = answers.iter().filter(|a| *a == &(200, None, None)).count();
    let replays = answers
        .iter()
        .filter(|a| *a == &(200, Some("true".to_string()), None))
        .count();
    let in_flight = answers.iter().filter(|a| a.0 == 409).count();
    assert_eq!(fresh, 1, "{answers:?}");
    assert_eq!(fresh + replays + in_flight, 8, "{answers:?}");
    assert_eq!(server.read_all_outbox().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgresql_send_one_email_for_one_key() {
    let schema = PgSchema::create().await;
    let url = schema.url(None);
    let a = TestServer::start_with(Options {
        database_url: Some(url.clone()),
        ..Options::default()
    })
    .await;
    let b = TestServer::start_with(Options {
        database_url: Some(url),
        ..Options::default()
    })
    .await;
    a.add_user("replica@example.com", false).await;
    // One caller, one token, its calls spread over both replicas.
    let token = a.admin_token.clone();
    let calls = (0..8).map(|i| {
        let server = if i % 2 == 0 { &a } else { &b };
        raw_reset(server, &token, "replica-key", "replica@example.com")
    });
    let answers = futures::future::join_all(calls).await;
    let fresh = answers.iter().filter(|x| *x == &(200, None, None)).count();
    assert_eq!(fresh, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|x| x.0 == 200 || (x.0 == 409 && x.2 == Some(10))),
        "{answers:?}"
    );
    assert_eq!(a.read_all_outbox().await.len(), 1, "one outbox row");
    // Whichever replica's dispatcher sends it, one email is written.
    let deadline = std::time::Instant::now() + DEADLINE;
    let total = loop {
        let total = pwmail_tests::read_emails(&a.mail_dir).len()
            + pwmail_tests::read_emails(&b.mail_dir).len();
        if total >= 1 || std::time::Instant::now() >= deadline {
            break total;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    a.wait_for_outbox(pwmail_store::OutboxState::Sent, 1).await;
    let total_after =
        pwmail_tests::read_emails(&a.mail_dir).len() + pwmail_tests::read_emails(&b.mail_dir).len();
    assert_eq!((total, total_after), (1, 1));
    a.stop().await;
    b.stop().await;
    schema.drop_schema().await;
}

#[tokio::test]
async fn an_expired_key_is_a_new_call() {
    let clock = Arc::new(ManualClock::new(now()));
    let server = TestServer::start_with(Options {
        clock: Some(Arc::clone(&clock)),
        ..Options::default()
    })
    .await;
    server.add_user("ttl@example.com", false).await;
    let token = server.admin_token.clone();
    assert_eq!(
        raw_reset(&server, &token, "daily", "ttl@example.com").await,
        (200, None, None)
    );
    clock.advance_ms(24 * 3600 * 1000 - 1000);
    assert_eq!(
        raw_reset(&server, &token, "daily", "ttl@example.com").await,
        (200, Some("true".into()), None),
        "within the TTL"
    );
    clock.advance_ms(2000);
    assert_eq!(
        raw_reset(&server, &token, "daily", "ttl@example.com").await,
        (200, None, None),
        "after the TTL the key is free again"
    );
    assert_eq!(server.read_all_outbox().await.len(), 2);
}

/// A retry of a call that went through is answered from what was stored
/// before any other check: it does not use up the caller's rate (which
/// allows two calls here), and it sends nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_is_answered_before_the_token_rate() {
    let server = TestServer::start_with(Options {
        token_rate: (2, 3600),
        ..Options::default()
    })
    .await;
    replays_use_none_of_the_rate(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_is_answered_before_the_token_rate_on_postgres() {
    let schema = PgSchema::create().await;
    let server = TestServer::start_with(Options {
        token_rate: (2, 3600),
        database_url: Some(schema.url(None)),
        ..Options::default()
    })
    .await;
    replays_use_none_of_the_rate(server).await;
    schema.drop_schema().await;
}

async fn replays_use_none_of_the_rate(server: TestServer) {
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        server.add_user(email, false).await;
    }
    let token = server.admin_token.clone();
    assert_eq!(
        raw_reset(&server, &token, "k1", "a@example.com").await,
        (200, None, None)
    );
    for _ in 0..3 {
        assert_eq!(
            raw_reset(&server, &token, "k1", "a@example.com").await,
            (200, Some("true".into()), None),
            "the retry of k1 is answered"
        );
    }
    assert_eq!(
        raw_reset(&server, &token, "k2", "b@example.com").await,
        (200, None, None),
        "the retries used none of the rate"
    );
    assert_eq!(
        raw_reset(&server, &token, "k3", "c@example.com").await,
        (429, None, Some(8)),
        "two calls: the rate is spent"
    );
    assert_eq!(
        raw_reset(&server, &token, "k1", "a@example.com").await,
        (200, Some("true".into()), None),
        "a spent rate does not refuse a retry"
    );
    assert_eq!(server.read_all_outbox().await.len(), 2);
    server.stop().await;
}

/// As above, with too many emails waiting: the replay is not a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_is_answered_before_the_backlog() {
    // The relay refuses every message for now: they stay waiting.
    let smtp = SmtpServer::start(SmtpOptions {
        script: vec![451; 100],
        ..SmtpOptions::default()
    });
    let mut mail = SmtpConfig::from_url(&smtp.url()).unwrap();
    mail.timeout = Duration::from_secs(10);
    let server = TestServer::start_with(Options {
        mail: Some(MailConfig::Smtp(mail)),
        max_backlog: 1,
        dispatcher: pwmail_server::config::DispatcherConfig {
            backoff_base: Duration::from_secs(3600),
            backoff_max: Duration::from_secs(3600),
            poll_interval: Duration::from_millis(100),
            ..pwmail_server::config::DispatcherConfig::default()
        },
        ..Options::default()
    })
    .await;
    server.add_user("a@example.com", false).await;
    let token = server.admin_token.clone();
    assert_eq!(
        raw_reset(&server, &token, "k1", "a@example.com").await,
        (200, None, None)
    );
    // The backlog is counted every 250 ms: once it holds k1's email, new
    // calls are refused (before that, a call for nobody is a 404 that
    // queues nothing).
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let (status, _, code) = raw_reset(&server, &token, "k2", "nobody@example.com").await;
        if status == 503 {
            assert_eq!(code, Some(14));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the backlog never filled: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        raw_reset(&server, &token, "k1", "a@example.com").await,
        (200, Some("true".into()), None),
        "the retry of k1 is answered, not refused"
    );
    assert_eq!(server.read_all_outbox().await.len(), 1);
    server.stop().await;
}
