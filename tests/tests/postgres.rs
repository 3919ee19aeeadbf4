//! The API on PostgreSQL, and what happens while the database is gone.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use pwmail_client::types::ResetPasswordByAdminRequest;
use pwmail_testkit::pg::PgSchema;
use pwmail_testkit::proxy::TcpProxy;
use pwmail_tests::{DEADLINE, Options, TestServer};

/// One API call; its status, gRPC code and latency.
/// How long a stalled database connection may hold things up in these
/// tests, whose store timeout is 1 s: generous for a busy machine, and far
/// below the minutes TCP takes to give up on a silent peer.
const STALL_BOUND: Duration = Duration::from_secs(15);

async fn reset(client: &pwmail_client::Client, email: &str) -> (u16, Option<i32>, Duration) {
    let call = Instant::now();
    let (status, code) = match client
        .reset_password_by_admin()
        .body(ResetPasswordByAdminRequest::builder().email(email))
        .send()
        .await
    {
        Ok(r) => (r.status().as_u16(), None),
        Err(pwmail_client::CallError::Api { status, code, .. }) => (status, Some(code)),
        Err(e) => panic!("transport-level failure: {e}"),
    };
    (status, code, call.elapsed())
}

/// Driven by events, not by the wall clock: calls before the outage, a
/// fixed number of calls while the database is cut off, then calls until
/// the service recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_gives_only_503s_loses_nothing_and_recovers() {
    const BEFORE: usize = 20;
    const DURING: usize = 20;
    let schema = PgSchema::create().await;
    let proxy = TcpProxy::start(pwmail_testkit::pg::base_addr()).await;
    let server = TestServer::start_with(Options {
        database_url: Some(schema.url(Some(proxy.addr))),
        db_acquire_timeout: Duration::from_millis(1000),
        token_rate: (1_000_000, 60),
        // A claim whose answer the outage cut off stays leased until its
        // lease ends; a short lease lets the test see it sent again.
        dispatcher: pwmail_server::config::DispatcherConfig {
            lease: Duration::from_secs(2),
            send_timeout: Duration::from_secs(1),
            poll_interval: Duration::from_millis(100),
            ..pwmail_server::config::DispatcherConfig::default()
        },
        ..Options::default()
    })
    .await;
    for i in 0..BEFORE + DURING + 1 {
        server.add_user(&format!("o{i}@example.com"), false).await;
    }
    let client = server.client();
    let http = reqwest::Client::new();
    let status_of = |path: &'static str| {
        let (http, url) = (&http, server.endpoint(path));
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    let mut accepted = Vec::new();

    for i in 0..BEFORE {
        let email = format!("o{i}@example.com");
        let (status, ..) = reset(&client, &email).await;
        assert_eq!(status, 200, "before the outage");
        accepted.push(email);
    }

    proxy.set_down(true);
    let mut slowest = Duration::ZERO;
    for i in BEFORE..BEFORE + DURING {
        let (status, code, took) = reset(&client, &format!("o{i}@example.com")).await;
        assert_eq!(
            (status, code),
            (503, Some(14)),
            "call {i} during the outage"
        );
        assert!(took < Duration::from_secs(5), "503 came quickly ({took:?})");
        slowest = slowest.max(took);
        assert_eq!(status_of("/readyz").await, 503, "not ready");
        assert_eq!(status_of("/livez").await, 200, "but alive");
    }

    proxy.set_down(false);
    let recovery = Instant::now();
    let mut retries = 0;
    loop {
        let email = format!("o{}@example.com", BEFORE + DURING);
        let (status, ..) = reset(&client, &email).await;
        if status == 200 {
            accepted.push(email);
            break;
        }
        assert_eq!(status, 503, "only 503 while recovering");
        assert!(
            recovery.elapsed() < pwmail_tests::DEADLINE,
            "the service recovers"
        );
        retries += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status_of("/readyz").await, 200);

    // Every accepted email arrives, exactly once; the refused ones never.
    let emails = server
        .wait_for_emails(accepted.len(), Duration::from_secs(60))
        .await;
    let recipients: Vec<String> = emails
        .iter()
        .map(|e| pwmail_tests::header(e, "To").unwrap().to_string())
        .collect();
    let unique: HashSet<&String> = recipients.iter().collect();
    assert_eq!(unique.len(), recipients.len(), "no email twice");
    assert_eq!(unique.len(), accepted.len(), "no refused call was sent");
    assert_eq!(
        server.read_all_outbox().await.len(),
        accepted.len(),
        "no refused call was queued"
    );
    for email in &accepted {
        assert!(
            unique.contains(email),
            "{email} was accepted but never sent"
        );
    }
    eprintln!(
        "outage: {DURING} calls answered 503 (slowest {slowest:?}); recovered after {retries} more 503s in {:?}",
        recovery.elapsed()
    );
    server.stop().await;
    schema.drop_schema().await;
}

/// A database connection that stops answering without being closed (a
/// network that drops packets) holds delivery up for the store timeout, not
/// until TCP gives up many minutes later: the dispatcher abandons its claim
/// on that connection, closes it, and the next claim opens one that works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_connection_that_stops_answering_delays_delivery_only_by_the_store_timeout() {
    let schema = PgSchema::create().await;
    let proxy = TcpProxy::start(pwmail_testkit::pg::base_addr()).await;
    let server = TestServer::start_with(Options {
        database_url: Some(schema.url(Some(proxy.addr))),
        db_acquire_timeout: Duration::from_millis(1000),
        request_timeout: Duration::from_secs(2),
        dispatcher: pwmail_server::config::DispatcherConfig {
            poll_interval: Duration::from_millis(50),
            store_timeout: Duration::from_secs(1),
            ..pwmail_server::config::DispatcherConfig::default()
        },
        ..Options::default()
    })
    .await;
    server.add_user("before@example.com", false).await;
    server.add_user("after@example.com", false).await;
    let client = server.client();
    assert_eq!(reset(&client, "before@example.com").await.0, 200);
    server.wait_for_emails(1, DEADLINE).await;

    // Every connection open now stops answering, the dispatcher's too; its
    // idle poll starts a claim on one of them.
    proxy.stall_open();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The API call may find a stalled connection as well: it fails within
    // the request timeout and the next one connects afresh.
    let stalled = Instant::now();
    loop {
        let (status, ..) = reset(&client, "after@example.com").await;
        if status == 200 {
            break;
        }
        assert!(
            matches!(status, 503 | 504),
            "only 503 or 504 meanwhile, got {status}"
        );
        assert!(stalled.elapsed() < DEADLINE, "the API recovers");
    }
    let accepted = stalled.elapsed();
    let emails = server.wait_for_emails(2, DEADLINE).await;
    let delivered = stalled.elapsed();
    let recipients: Vec<&str> = emails
        .iter()
        .filter_map(|e| pwmail_tests::header(e, "To"))
        .collect();
    assert!(recipients.contains(&"after@example.com"), "{recipients:?}");
    eprintln!(
        "stalled connections: call accepted after {accepted:?}, email delivered after {delivered:?}"
    );
    // What the name says: a bound set by the 1 s store timeout (and the 2 s
    // request timeout), with room for a busy machine; without it the stall
    // lasts until TCP gives up, minutes later.
    assert!(
        accepted < STALL_BOUND && delivered < STALL_BOUND,
        "accepted after {accepted:?}, delivered after {delivered:?}"
    );
    server.stop().await;
    drop(proxy);
    schema.drop_schema().await;
}

/// The backlog count (behind `--max-backlog` and the outbox gauge) gives
/// up on a connection that stops answering and counts again on a fresh one,
/// instead of keeping its last value until TCP gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_count_recovers_from_a_connection_that_stops_answering() {
    use pwmail_server::app::Waiting as _;
    use pwmail_store::{
        Actor, CallerCharge, IssueLink, LinkPurpose, MessageKind, NewMessage, NewUser, Rate,
        TokenHash,
    };
    let schema = PgSchema::create().await;
    let proxy = TcpProxy::start(pwmail_testkit::pg::base_addr()).await;
    let direct = pwmail_store::open(&schema.url(None)).await.unwrap();
    let proxied = pwmail_store::open_with(
        &schema.url(Some(proxy.addr)),
        pwmail_store::PoolOptions {
            acquire_timeout: Duration::from_secs(1),
            max_connections: 2,
        },
    )
    .await
    .unwrap();
    let backlog = pwmail_server::outbox::Backlog::default();
    let watch = tokio::spawn(backlog.clone().watch(
        proxied,
        Duration::from_millis(50),
        Duration::from_secs(1),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(backlog.waiting(), 0);

    // The watcher's connection goes silent; its next count waits on it.
    proxy.stall_open();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let user = |email: &str, is_admin| NewUser {
        email: email.into(),
        name: None,
        is_admin,
        deliverable: true,
        locale: None,
    };
    let admin = direct
        .create_user(&user("ops@example.com", true), 0)
        .await
        .unwrap();
    let target = direct
        .create_user(&user("u@example.com", false), 0)
        .await
        .unwrap();
    let token = direct
        .create_api_token(admin.id, &TokenHash([1; 32]), "t", false, 0)
        .await
        .unwrap();
    let every = Rate {
        period_ms: 1,
        burst: 1_000,
    };
    direct
        .issue_link(&IssueLink {
            actor: Actor {
                user: admin.id,
                token_id: token.id,
            },
            target: target.id,
            purpose: LinkPurpose::SendPasswordEmail,
            link_hash: TokenHash([2; 32]),
            expires_at: i64::MAX,
            caller: CallerCharge::Pending(every),
            cooldown: every,
            message: NewMessage {
                message_id: "m1@example.com".into(),
                kind: MessageKind::SendPasswordEmail,
                recipient: target.email.clone(),
                content: pwmail_store::Content::Rendered {
                    subject: "s".into(),
                    text: "t".into(),
                    html: "h".into(),
                },
            },
            reveal: false,
            request_id: "req-1".into(),
            idempotency: None,
            now: 0,
        })
        .await
        .unwrap();
    let stalled = Instant::now();
    while backlog.waiting() != 1 {
        assert!(
            stalled.elapsed() < DEADLINE,
            "the queued email was never counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "backlog counted again {:?} after the stall",
        stalled.elapsed()
    );
    assert!(
        stalled.elapsed() < STALL_BOUND,
        "counted again only after {:?} (the store timeout is 1 s)",
        stalled.elapsed()
    );
    watch.abort();
    drop(proxy);
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
    let body = ResetPasswordByAdminRequest::builder().email("page@example.com");
    server
        .client()
        .reset_password_by_admin()
        .body(body.clone())
        .send()
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
