//! Delivery through a real SMTP server (aiosmtpd on 127.0.0.1).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pwmail_client::types::ResetPasswordByAdminRequest;
use pwmail_server::config::DispatcherConfig;
use pwmail_server::config::MailConfig;
use pwmail_server::config::SmtpConfig;
use pwmail_store::{LinkState, OutboxState};
use pwmail_testkit::proxy::TcpProxy;
use pwmail_testkit::{SmtpOptions, SmtpServer, SmtpTls, header, link_token};
use pwmail_tests::{Options, TestServer};

fn smtp_config(server_url: &str, smtp: &SmtpServer, auth: Option<(&str, &str)>) -> MailConfig {
    let mut config = SmtpConfig::from_url(server_url).unwrap();
    if let Some((user, password)) = auth {
        config.username = Some(user.into());
        config.password = Some(password.into());
    }
    config.ca_pem = smtp.ca_file.as_ref().map(|f| std::fs::read(f).unwrap());
    config.timeout = Duration::from_secs(10);
    MailConfig::Smtp(config)
}

async fn reset(server: &TestServer, email: &str) {
    let body = ResetPasswordByAdminRequest::builder().email(email);
    server
        .client()
        .reset_password_by_admin()
        .body(body.clone())
        .send()
        .await
        .expect("200");
}

/// Waits (off the async runtime's threads) for `count` messages.
async fn wait_for(smtp: &SmtpServer, count: usize, timeout: Duration) -> Vec<String> {
    tokio::task::block_in_place(|| smtp.wait_for(count, timeout))
}

/// The one message, once it is sent.
async fn sent_row(server: &TestServer) -> pwmail_store::OutboxStatus {
    wait_state(server, OutboxState::Sent, 1).await;
    server
        .store()
        .list_outbox(Some(OutboxState::Sent), 1)
        .await
        .unwrap()
        .remove(0)
}

async fn wait_state(server: &TestServer, state: OutboxState, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = server
            .store()
            .list_outbox(Some(state), 10_000)
            .await
            .unwrap()
            .len();
        if n >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {count} messages reached {state}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_message_has_headers_both_parts_and_a_valid_link() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let server = TestServer::start_with(Options {
        mail: Some(smtp_config(&smtp.url(), &smtp, None)),
        ..Options::default()
    })
    .await;
    server.add_user("hello@example.com", false).await;
    reset(&server, "hello@example.com").await;

    let messages = wait_for(&smtp, 1, Duration::from_secs(10)).await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(
        header(m, "From").as_deref(),
        Some("pwmail <no-reply@pwmail.test>")
    );
    assert_eq!(header(m, "To").as_deref(), Some("hello@example.com"));
    assert_eq!(
        header(m, "Subject").as_deref(),
        Some("Your pwmail password was reset")
    );
    assert!(header(m, "Date").is_some());
    // RFC 3834: vacation responders stay quiet; a reset is no newsletter.
    assert_eq!(
        header(m, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert!(header(m, "List-Unsubscribe").is_none());
    let message_id = header(m, "Message-ID").unwrap();
    // On the sending domain, never a host name (keycloak#38353).
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@pwmail.test>"),
        "{message_id}"
    );
    assert!(
        header(m, "Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    assert!(m.contains("Content-Type: text/plain; charset=utf-8"));
    assert!(m.contains("Content-Type: text/html; charset=utf-8"));
    let token = link_token(m).unwrap();
    let link = server
        .store()
        .find_link(&pwmail_server::secrets::hash(&token))
        .await
        .unwrap()
        .expect("link is stored");
    assert_eq!(link.state, LinkState::Open);

    wait_state(&server, OutboxState::Sent, 1).await;
    let sent = &server
        .store()
        .list_outbox(Some(OutboxState::Sent), 1)
        .await
        .unwrap()[0];
    assert_eq!(
        format!("<{}>", sent.message_id),
        message_id,
        "stored Message-ID was sent"
    );
    assert!(
        sent.last_reply
            .as_deref()
            .unwrap_or_default()
            .starts_with("250"),
        "{sent:?}"
    );
    assert_eq!(sent.attempts, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_auth_against_a_test_ca() {
    let smtp = SmtpServer::start(SmtpOptions {
        tls: SmtpTls::StartTls,
        auth: Some(("mailer".into(), "s3cret-pass".into())),
        ..SmtpOptions::default()
    });
    let server = TestServer::start_with(Options {
        mail: Some(smtp_config(
            &smtp.url(),
            &smtp,
            Some(("mailer", "s3cret-pass")),
        )),
        ..Options::default()
    })
    .await;
    server.add_user("tls@example.com", false).await;
    reset(&server, "tls@example.com").await;
    let messages = wait_for(&smtp, 1, Duration::from_secs(10)).await;
    assert_eq!(messages.len(), 1, "smtp log: {}", smtp.log());
    assert_eq!(
        header(&messages[0], "To").as_deref(),
        Some("tls@example.com")
    );
    // PIPELINING as offered after STARTTLS, before AUTH.
    assert!(smtp.log().contains("pipelined MAIL"), "{}", smtp.log());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_smtp_password_is_retried_not_dropped() {
    let smtp = SmtpServer::start(SmtpOptions {
        tls: SmtpTls::StartTls,
        auth: Some(("mailer".into(), "right".into())),
        ..SmtpOptions::default()
    });
    let server = TestServer::start_with(Options {
        mail: Some(smtp_config(&smtp.url(), &smtp, Some(("mailer", "wrong")))),
        dispatcher: pwmail_tests::fast_retries(),
        ..Options::default()
    })
    .await;
    server.add_user("auth@example.com", false).await;
    reset(&server, "auth@example.com").await;
    wait_state(&server, OutboxState::Retrying, 1).await;
    let row = &server.store().list_outbox(None, 1).await.unwrap()[0];
    let error = row.last_error.clone().unwrap_or_default();
    assert!(error.contains("authentication"), "{error}");
    assert!(
        !error.contains("wrong"),
        "the password never appears: {error}"
    );
    server.stop().await;
}

/// `smtp://` requires STARTTLS: a relay that does not offer it gets nothing
/// (the message waits, retrying, with the reason), never a plaintext copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_required_but_not_offered_sends_nothing() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let plain = smtp.url().replace("?tls=none", "?tls=starttls");
    let server = TestServer::start_with(Options {
        mail: Some(smtp_config(&plain, &smtp, None)),
        dispatcher: pwmail_tests::fast_retries(),
        ..Options::default()
    })
    .await;
    server.add_user("careful@example.com", false).await;
    reset(&server, "careful@example.com").await;
    wait_state(&server, OutboxState::Retrying, 1).await;
    let row = &server.store().list_outbox(None, 1).await.unwrap()[0];
    let error = row.last_error.clone().unwrap_or_default();
    assert!(error.contains("STARTTLS"), "{error}");
    assert!(smtp.messages().is_empty(), "nothing in plaintext");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls() {
    let smtp = SmtpServer::start(SmtpOptions {
        tls: SmtpTls::Tls,
        ..SmtpOptions::default()
    });
    let server = TestServer::start_with(Options {
        mail: Some(smtp_config(&smtp.url(), &smtp, None)),
        ..Options::default()
    })
    .await;
    server.add_user("wrapped@example.com", false).await;
    reset(&server, "wrapped@example.com").await;
    let messages = wait_for(&smtp, 1, Duration::from_secs(10)).await;
    assert_eq!(messages.len(), 1, "smtp log: {}", smtp.log());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_451s_then_250_delivers_exactly_once() {
    let smtp = SmtpServer::start(SmtpOptions {
        script: vec![451, 451],
        ..SmtpOptions::default()
    });
    let server = TestServer::start_with(Options {
        mail: Some(smtp_config(&smtp.url(), &smtp, None)),
        dispatcher: pwmail_tests::fast_retries(),
        ..Options::default()
    })
    .await;
    server.add_user("later@example.com", false).await;
    reset(&server, "later@example.com").await;
    let row = &sent_row(&server).await;
    assert_eq!(row.attempts, 3, "two refusals, then delivery");
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("451"),
        "{row:?}"
    );
    server.wait_until_quiet().await;
    assert_eq!(smtp.messages().len(), 1, "delivered exactly once");
    assert_eq!(smtp.log().matches("scripted reply 451").count(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_550_is_dead_with_the_reason_and_not_retried() {
    let smtp = SmtpServer::start(SmtpOptions {
        script: vec![550],
        ..SmtpOptions::default()
    });
    let server = TestServer::start_with(Options {
        mail: Some(smtp_config(&smtp.url(), &smtp, None)),
        dispatcher: pwmail_tests::fast_retries(),
        user_rate: (10, 60),
        ..Options::default()
    })
    .await;
    server.add_user("nobody@example.com", false).await;
    reset(&server, "nobody@example.com").await;
    wait_state(&server, OutboxState::Dead, 1).await;
    let row = &server
        .store()
        .list_outbox(Some(OutboxState::Dead), 1)
        .await
        .unwrap()[0];
    assert_eq!(row.attempts, 1);
    let error = row.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("permanent") && error.contains("550"),
        "{error}"
    );
    server.wait_until_quiet().await;
    assert_eq!(
        smtp.log().matches("scripted reply").count(),
        1,
        "no further attempts"
    );
    assert!(smtp.messages().is_empty());

    // The dead email's link is revoked: it exists nowhere live. The
    // operator is told to send a fresh email instead of retrying this one.
    let user = server
        .store()
        .find_user_by_email("nobody@example.com")
        .await
        .unwrap()
        .unwrap();
    let audit = server.store().audit_entries(user.id).await.unwrap();
    assert_eq!(audit.len(), 1);
    let err = pwmail_server::app::users::retry_dead(server.store(), row.id, pwmail_tests::now())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("its link was revoked"), "{err}");
    // A fresh email goes out once the relay accepts.
    reset(&server, "nobody@example.com").await;
    assert_eq!(wait_for(&smtp, 1, Duration::from_secs(10)).await.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_refused_in_a_pipelined_transaction_is_dead_and_the_next_email_goes_out() {
    let smtp = SmtpServer::start(SmtpOptions {
        refuse_rcpt: Some("refused".into()),
        ..SmtpOptions::default()
    });
    let MailConfig::Smtp(mut config) = smtp_config(&smtp.url(), &smtp, None) else {
        unreachable!()
    };
    // One connection: the next email must not inherit the refused
    // transaction's unread replies.
    config.pool_size = 1;
    let server = TestServer::start_with(Options {
        mail: Some(MailConfig::Smtp(config)),
        dispatcher: DispatcherConfig {
            concurrency: 1,
            ..pwmail_tests::fast_retries()
        },
        ..Options::default()
    })
    .await;
    server.add_user("refused@example.com", false).await;
    server.add_user("welcome@example.com", false).await;
    reset(&server, "refused@example.com").await;
    wait_state(&server, OutboxState::Dead, 1).await;
    let row = &server
        .store()
        .list_outbox(Some(OutboxState::Dead), 1)
        .await
        .unwrap()[0];
    assert_eq!(row.attempts, 1);
    let error = row.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("permanent") && error.contains("550") && error.contains("refusal"),
        "{error}"
    );

    reset(&server, "welcome@example.com").await;
    let messages = wait_for(&smtp, 1, Duration::from_secs(10)).await;
    assert_eq!(messages.len(), 1, "smtp log: {}", smtp.log());
    assert_eq!(
        header(&messages[0], "To").as_deref(),
        Some("welcome@example.com")
    );
    let log = smtp.log();
    assert_eq!(
        log.matches("refused RCPT refused@example.com").count(),
        1,
        "{log}"
    );
    // Both transactions sent MAIL, RCPT and DATA in one write.
    assert_eq!(log.matches("pipelined MAIL").count(), 2, "{log}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_does_not_offer_pipelining_gets_one_command_at_a_time() {
    let smtp = SmtpServer::start(SmtpOptions {
        pipelining: false,
        ..SmtpOptions::default()
    });
    let server = TestServer::start_with(Options {
        mail: Some(smtp_config(&smtp.url(), &smtp, None)),
        ..Options::default()
    })
    .await;
    server.add_user("plain@example.com", false).await;
    reset(&server, "plain@example.com").await;
    let messages = wait_for(&smtp, 1, Duration::from_secs(10)).await;
    assert_eq!(messages.len(), 1, "smtp log: {}", smtp.log());
    assert_eq!(sent_row(&server).await.attempts, 1);
    assert!(!smtp.log().contains("pipelined MAIL"), "{}", smtp.log());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_sends_what_was_claimed_ahead_and_leaves_the_rest_queued() {
    // The first DATA gets no answer, so its send is in flight until it
    // times out; meanwhile the dispatcher (one slot) has claimed the next
    // email ahead, and the third waits in the queue.
    let smtp = SmtpServer::start(SmtpOptions {
        script: vec![0],
        ..SmtpOptions::default()
    });
    let server = TestServer::start_with(Options {
        mail: Some(smtp_config(&smtp.url(), &smtp, None)),
        dispatcher: DispatcherConfig {
            concurrency: 1,
            send_timeout: Duration::from_secs(2),
            ..pwmail_tests::fast_retries()
        },
        ..Options::default()
    })
    .await;
    for name in ["stalled", "ahead", "queued"] {
        server.add_user(&format!("{name}@example.com"), false).await;
        reset(&server, &format!("{name}@example.com")).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.wait_for_outbox(OutboxState::Sending, 2).await.len() < 2 {
        assert!(Instant::now() < deadline, "two messages never leased");
    }
    assert!(smtp.messages().is_empty());

    let rows = server.stop_and_read_outbox().await;
    let row = |to: &str| {
        rows.iter()
            .find(|r| r.recipient == format!("{to}@example.com"))
            .unwrap_or_else(|| panic!("no row for {to}: {rows:?}"))
    };
    // The stalled send ran out its time and waits for its retry.
    assert_eq!(row("stalled").state, OutboxState::Retrying, "{rows:?}");
    assert!(
        row("stalled")
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("no answer within 2 s"),
        "{rows:?}"
    );
    // The one claimed ahead went out before the dispatcher stopped, rather
    // than sitting leased until its lease ran out.
    assert_eq!(row("ahead").state, OutboxState::Sent, "{rows:?}");
    assert_eq!(row("ahead").attempts, 1);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "smtp log: {}", smtp.log());
    assert_eq!(
        header(&messages[0], "To").as_deref(),
        Some("ahead@example.com")
    );
    // Nothing else was claimed.
    assert_eq!(row("queued").state, OutboxState::Queued, "{rows:?}");
    assert_eq!(row("queued").attempts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_while_1000_are_queued_then_all_arrive_once() {
    const N: usize = 1000;
    // The relay sits behind a proxy that is down until the backlog is
    // queued: its address stays taken the whole time.
    let smtp = SmtpServer::start(SmtpOptions::default());
    let proxy = TcpProxy::start(([127, 0, 0, 1], smtp.port).into()).await;
    proxy.set_down(true);
    let url = format!("smtp://127.0.0.1:{}?tls=none", proxy.addr.port());
    let mail = {
        let mut config = SmtpConfig::from_url(&url).unwrap();
        config.timeout = Duration::from_secs(5);
        config.pool_size = 8;
        MailConfig::Smtp(config)
    };
    let server = pwmail_tests::backlog(mail, N).await;
    wait_state(&server, OutboxState::Retrying, 1).await;
    let sent_while_down = server
        .store()
        .list_outbox(Some(OutboxState::Sent), 10)
        .await
        .unwrap();
    assert!(sent_while_down.is_empty());

    proxy.set_down(false);
    // Rate from the first delivery on, so the retry backoff does not count.
    wait_for(&smtp, 1, Duration::from_secs(30)).await;
    let started = Instant::now();
    let messages = wait_for(&smtp, N, Duration::from_secs(120)).await;
    let took = started.elapsed();
    server.wait_until_quiet().await;
    let messages = if messages.len() == N {
        smtp.messages()
    } else {
        messages
    };
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for m in &messages {
        *per_id.entry(header(m, "Message-ID").unwrap()).or_default() += 1;
    }
    assert_eq!(per_id.len(), N, "every email arrived");
    assert!(per_id.values().all(|n| *n == 1), "none twice");
    let mut recipients: Vec<String> = messages.iter().map(|m| header(m, "To").unwrap()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), N, "one per user");
    eprintln!(
        "backlog of {N} delivered in {:.2} s from the first delivery ({:.0} emails/s, concurrency 16, pool 8)",
        took.as_secs_f64(),
        N as f64 / took.as_secs_f64()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_stops_answering_is_timed_out_and_retried() {
    // The first DATA gets no reply at all; the second is accepted.
    let smtp = SmtpServer::start(SmtpOptions {
        script: vec![0],
        ..SmtpOptions::default()
    });
    let server = TestServer::start_with(Options {
        mail: Some(smtp_config(&smtp.url(), &smtp, None)),
        dispatcher: DispatcherConfig {
            send_timeout: Duration::from_secs(2),
            ..pwmail_tests::fast_retries()
        },
        ..Options::default()
    })
    .await;
    server.add_user("slow@example.com", false).await;
    reset(&server, "slow@example.com").await;
    let row = &sent_row(&server).await;
    assert_eq!(row.attempts, 2, "the stalled attempt, then delivery");
    assert_eq!(
        row.last_error.as_deref(),
        Some("no answer within 2 s"),
        "{row:?}"
    );
    assert_eq!(smtp.log().matches("scripted stall").count(), 1);
    assert_eq!(
        wait_for(&smtp, 1, Duration::from_secs(10)).await.len(),
        1,
        "delivered once"
    );
    server.stop().await;
}
