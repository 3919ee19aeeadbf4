//! `GET /metrics` counts what happened. In a binary of its own: the
//! Prometheus recorder is process-wide, so no other test's calls can move
//! the numbers compared here.

use std::time::{Duration, Instant};

use pwmail_client::types::ResetPasswordByAdminRequest;
use pwmail_store::OutboxState;
use pwmail_tests::{DEADLINE, TestServer};

const OK: &str = r#"pwmail_api_requests_total{operation="reset_password_by_admin",status="200"}"#;
const NOT_FOUND: &str =
    r#"pwmail_api_requests_total{operation="reset_password_by_admin",status="404"}"#;
const SENT: &str = r#"pwmail_mail_send_attempts_total{outcome="sent"}"#;
const SENT_ROWS: &str = r#"pwmail_outbox_messages{state="sent"}"#;
const LATENCY_COUNT: &str =
    r#"pwmail_api_request_seconds_count{operation="reset_password_by_admin"}"#;

/// The value of one series in Prometheus text (0 when it is not there yet).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(server: &TestServer) -> String {
    let response = reqwest::get(server.endpoint("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    response.text().await.unwrap()
}

fn body(email: &str) -> pwmail_client::types::builder::ResetPasswordByAdminRequest {
    ResetPasswordByAdminRequest::builder().email(email)
}

#[tokio::test]
async fn one_call_of_each_outcome_moves_each_counter_by_one() {
    let server = TestServer::start().await;
    server.add_user("hello@example.com", false).await;
    let before = scrape(&server).await;

    server
        .client()
        .reset_password_by_admin()
        .body(body("hello@example.com"))
        .send()
        .await
        .expect("200");
    let refused = server
        .client()
        .reset_password_by_admin()
        .body(body("nobody@example.com"))
        .send()
        .await;
    assert!(refused.is_err(), "an unknown user is refused");
    server.wait_for_outbox(OutboxState::Sent, 1).await;

    // The outbox gauge is refreshed every 250 ms: poll until it counts the row.
    let deadline = Instant::now() + DEADLINE;
    let after = loop {
        let text = scrape(&server).await;
        if value(&text, SENT_ROWS) >= 1.0 || Instant::now() >= deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (series, moved) in [
        (OK, 1.0),
        (NOT_FOUND, 1.0),
        (SENT, 1.0),
        (LATENCY_COUNT, 2.0),
    ] {
        assert_eq!(
            value(&after, series) - value(&before, series),
            moved,
            "{series}\nbefore:\n{before}\nafter:\n{after}"
        );
    }
    assert_eq!(value(&after, SENT_ROWS), 1.0, "{after}");
    assert!(after.contains("pwmail_mail_send_seconds_bucket"), "{after}");
    server.stop().await;
}

/// Refusals dropshot gives before a handler runs (a body that is not JSON,
/// a wrong content type, an unknown path under `/api/`) are counted too.
#[tokio::test]
async fn responses_given_before_the_handler_are_counted() {
    const BAD_BODY: &str =
        r#"pwmail_api_requests_total{operation="send_password_email",status="400"}"#;
    const UNKNOWN: &str = r#"pwmail_api_requests_total{operation="unknown",status="404"}"#;
    let server = TestServer::start().await;
    let before = scrape(&server).await;
    let client = reqwest::Client::new();
    let url = server.endpoint("/api/web/custom/namespaces/system/send_password_email");
    let auth = format!("APIToken {}", server.admin_token);
    let not_json = client
        .post(&url)
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let wrong_type = client
        .post(&url)
        .header("authorization", &auth)
        .header("content-type", "text/plain")
        .body(r#"{"email":"a@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 400);
    let unknown = client
        .get(server.endpoint("/api/web/custom/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let after = scrape(&server).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(moved(BAD_BODY), 2.0, "{after}");
    assert_eq!(moved(UNKNOWN), 1.0, "{after}");
}

#[tokio::test]
async fn the_purge_task_deletes_aged_rows_at_start_and_counts_them() {
    const PURGED: &str = r#"pwmail_purged_rows_total{table="audit"}"#;
    // A database holding three audit rows from 1970: past any retention.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aged.db").display());
    {
        let store = pwmail_store::testing::open(&url).await.unwrap();
        let admin = store
            .create_user(
                &pwmail_store::NewUser {
                    email: pwmail_tests::ADMIN.into(),
                    name: None,
                    is_admin: true,
                    deliverable: true,
                    locale: None,
                },
                1,
            )
            .await
            .unwrap();
        let token = store
            .create_api_token(admin.id, &pwmail_store::TokenHash([3; 32]), "t", false, 1)
            .await
            .unwrap();
        for at in 1..=3 {
            store
                .record_refusal(&pwmail_store::Refusal {
                    at,
                    actor: pwmail_store::Actor {
                        user: admin.id,
                        token_id: token.id,
                    },
                    target: None,
                    address: "ghost@example.com".into(),
                    operation: "send_password_email",
                    request_id: format!("old-{at}"),
                    idempotency_key: None,
                    outcome: pwmail_store::AuditOutcome::NoSuchUser,
                })
                .await
                .unwrap();
        }
    }
    let server = TestServer::start_with(pwmail_tests::Options {
        database_url: Some(url),
        ..Default::default()
    })
    .await;
    let deadline = Instant::now() + DEADLINE;
    while value(&scrape(&server).await, PURGED) < 3.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(value(&scrape(&server).await, PURGED), 3.0);
    let left = server.audit().await;
    assert!(left.is_empty(), "{left:?}");
    server.stop().await;
}
