//! The API on PostgreSQL, and what happens while the database is gone.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use pwmail_client::types::ResetPasswordByAdminRequest;
use pwmail_testkit::pg::PgSchema;
use pwmail_testkit::proxy::TcpProxy;
use pwmail_tests::{DEADLINE, Options, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_s_database_outage_gives_only_503s_loses_nothing_and_recovers() {
    let schema = PgSchema::create().await;
    let proxy = TcpProxy::start(pwmail_testkit::pg::base_addr()).await;
    let server = TestServer::start_with(Options {
        database_url: Some(schema.url(Some(proxy.addr))),
        db_acquire_timeout: Duration::from_millis(1000),
        token_rate: (1_000_000, 60),
        ..Options::default()
    })
    .await;
    const USERS: usize = 400;
    for i in 0..USERS {
        server.add_user(&format!("o{i}@example.com"), false).await;
    }
    let client = server.client();
    let http = reqwest::Client::new();
    let started = Instant::now();
    let (down_at, up_at) = (Duration::from_secs(3), Duration::from_secs(13));
    let mut outcomes: Vec<(Duration, u16, Option<i32>, Duration)> = Vec::new();
    let mut accepted = Vec::new();
    let mut ready_during_outage = Vec::new();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(18) && i < USERS {
        let t = started.elapsed();
        if t >= down_at && t < up_at {
            proxy.set_down(true);
        } else {
            proxy.set_down(false);
        }
        let email = format!("o{i}@example.com");
        let body = ResetPasswordByAdminRequest {
            email: email.as_str().try_into().unwrap(),
        };
        let call = Instant::now();
        let (status, code) = match client.reset_password_by_admin(&body).await {
            Ok(r) => (r.status().as_u16(), None),
            Err(pwmail_client::Error::ErrorResponse(r)) => (r.status().as_u16(), Some(r.code)),
            Err(e) => panic!("transport-level failure: {e}"),
        };
        outcomes.push((t, status, code, call.elapsed()));
        if status == 200 {
            accepted.push(email);
            i += 1;
        }
        if t > down_at + Duration::from_secs(2) && t < up_at - Duration::from_secs(1) {
            let ready = http
                .get(server.endpoint("/readyz"))
                .send()
                .await
                .unwrap()
                .status();
            let live = http
                .get(server.endpoint("/livez"))
                .send()
                .await
                .unwrap()
                .status();
            ready_during_outage.push((ready.as_u16(), live.as_u16()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.set_down(false);

    let in_window: Vec<_> = outcomes
        .iter()
        .filter(|(t, ..)| {
            *t > down_at + Duration::from_millis(200) && *t + Duration::from_millis(200) < up_at
        })
        .collect();
    assert!(
        in_window.len() >= 5,
        "calls were made during the outage: {}",
        in_window.len()
    );
    for (t, status, code, took) in &in_window {
        assert_eq!(
            (*status, *code),
            (503, Some(14)),
            "at {t:?} during the outage"
        );
        assert!(
            *took < Duration::from_secs(5),
            "503 came quickly ({took:?})"
        );
    }
    for (t, status, ..) in &outcomes {
        assert!(
            *status == 200 || *status == 503,
            "at {t:?}: {status} (only 503s may fail)"
        );
    }
    assert!(
        outcomes
            .iter()
            .any(|(t, s, ..)| *t > up_at + Duration::from_secs(1) && *s == 200),
        "calls succeed again after the outage"
    );
    assert!(
        ready_during_outage
            .iter()
            .all(|(ready, live)| (*ready, *live) == (503, 200))
    );
    assert!(!ready_during_outage.is_empty());
    assert_eq!(
        http.get(server.endpoint("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Every accepted email arrives, exactly once.
    let emails = server
        .wait_for_emails(accepted.len(), Duration::from_secs(60))
        .await;
    let recipients: Vec<String> = emails
        .iter()
        .map(|e| pwmail_tests::header(e, "To").unwrap().to_string())
        .collect();
    let unique: HashSet<&String> = recipients.iter().collect();
    assert_eq!(unique.len(), recipients.len(), "no email twice");
    for email in &accepted {
        assert!(
            unique.contains(email),
            "{email} was accepted but never sent"
        );
    }
    let n503 = outcomes.iter().filter(|o| o.1 == 503).count();
    eprintln!(
        "outage: {} calls, {} accepted, {n503} answered 503 (max latency of a 503: {:?})",
        outcomes.len(),
        accepted.len(),
        outcomes.iter().filter(|o| o.1 == 503).map(|o| o.3).max()
    );
    server.stop().await;
    schema.drop_schema().await;
}

/// A database outage means the same on the reset page as on the API: 503
/// with Retry-After, as a page a person can read, and the link still works
/// once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reset_page_answers_503_in_html_while_the_database_is_gone() {
    let schema = PgSchema::create().await;
    let proxy = TcpProxy::start(pwmail_testkit::pg::base_addr()).await;
    let server = TestServer::start_with(Options {
        database_url: Some(schema.url(Some(proxy.addr))),
        db_acquire_timeout: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    server.add_user("page@example.com", false).await;
    let body = ResetPasswordByAdminRequest {
        email: "page@example.com".try_into().unwrap(),
    };
    server
        .client()
        .reset_password_by_admin(&body)
        .await
        .expect("200");
    let emails = server.wait_for_emails(1, DEADLINE).await;
    let token = pwmail_tests::link_token(&emails[0]).expect("link");
    let page = server.endpoint(&format!("/reset/{token}"));
    let http = reqwest::Client::new();

    proxy.set_down(true);
    for request in [
        http.get(&page),
        http.post(&page)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("password=correct+horse+battery+staple&password_confirm=correct+horse+battery+staple"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "2");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "a page, not JSON"
        );
        assert_eq!(response.headers()["cache-control"], "no-store");
        let html = response.text().await.unwrap();
        assert!(html.contains("Please try again shortly"), "{html}");
        assert!(html.contains("Your link has not been used"), "{html}");
        assert!(!html.contains(&token), "the page never repeats the token");
    }

    proxy.set_down(false);
    let deadline = std::time::Instant::now() + DEADLINE;
    let status = loop {
        let status = http.get(&page).send().await.unwrap().status();
        if status != 503 || std::time::Instant::now() >= deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 200, "the link still works after the outage");
    server.stop().await;
    schema.drop_schema().await;
}
