//! Delivery through the mail hook: each message POSTed as signed JSON to a
//! real HTTP server in the test (`pwmail_testkit::hook`), which checks the
//! Standard Webhooks signature from the specification, not with pwmail's
//! own signing crate.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pwmail_client::types::ResetPasswordByAdminRequest;
use pwmail_server::app::users as admin;
use pwmail_server::config::hook::MAIL_HOOK;
use pwmail_server::config::{HookConfig, MailConfig};
use pwmail_store::{LinkState, OutboxState};
use pwmail_testkit::hook::{Answer, HookReceiver, SECRET};
use pwmail_tests::{Options, TestServer, now};

fn hook(receiver: &HookReceiver) -> MailConfig {
    MailConfig::Hook(HookConfig::new(MAIL_HOOK, &receiver.url(), SECRET, "test secret").unwrap())
}

async fn reset(server: &TestServer, email: &str) {
    server
        .client()
        .reset_password_by_admin()
        .body(ResetPasswordByAdminRequest::builder().email(email))
        .send()
        .await
        .expect("200");
}

fn rfc3339(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_f5_operations_are_posted_whole_and_signed() {
    let receiver = HookReceiver::start().await;
    let server = TestServer::start_with(Options {
        mail: Some(hook(&receiver)),
        ..Options::default()
    })
    .await;
    let ada = admin::add(
        server.store(),
        &admin::UserDraft {
            email: "ada@example.com".into(),
            name: Some("Ada Lovelace".into()),
            locale: Some("de".into()),
        },
        false,
        now(),
    )
    .await
    .unwrap();
    let bob = server.add_user("bob@example.com", false).await;
    server
        .call_both_f5_operations("ada@example.com", "bob@example.com")
        .await;

    let delivered = receiver.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(delivered.len(), 2, "{:?}", receiver.received());
    let sent = server.expect_outbox(OutboxState::Sent, 2).await;
    for (request, user, kind, subject, locale) in [
        (
            delivered
                .iter()
                .find(|r| r.body.contains("ada@example.com"))
                .unwrap(),
            &ada,
            "send_password_email",
            "Legen Sie Ihr Passwort für pwmail fest",
            "de",
        ),
        (
            delivered
                .iter()
                .find(|r| r.body.contains("bob@example.com"))
                .unwrap(),
            &bob,
            "reset_password_by_admin",
            "Your pwmail password was reset",
            "en",
        ),
    ] {
        assert!(request.verified, "Standard Webhooks signature: {request:?}");
        let age = now() / 1000 - request.timestamp;
        assert!((0..60).contains(&age), "webhook-timestamp is now: {age} s");
        let payload = request.json();
        assert_eq!(payload["type"], "email.send");
        let data = &payload["data"];
        // The id a receiver dedupes on is the message's own.
        assert_eq!(data["message_id"].as_str().unwrap(), request.id);
        assert!(request.id.ends_with("@pwmail.test"), "{}", request.id);
        assert_eq!(data["kind"], kind);
        assert_eq!(data["to"], user.email.as_str());
        assert_eq!(data["from"], "pwmail <no-reply@pwmail.test>");
        assert_eq!(data["subject"], subject);
        assert_eq!(data["locale"], locale);
        assert_eq!(data["user"]["id"], user.id.0);
        assert_eq!(data["user"]["email"], user.email.as_str());
        assert_eq!(data["user"]["name"].as_str(), user.name.as_deref());
        let text = data["text"].as_str().unwrap();
        let html = data["html"].as_str().unwrap();
        assert!(html.contains("<html"), "{html}");
        // The link in the text is a live one, and the expiry is its own.
        let token = pwmail_tests::link_token(text).expect("a link in the text");
        let link = server
            .store()
            .find_link(&pwmail_server::secrets::hash(&token))
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(link.state, LinkState::Open);
        assert_eq!(data["link_expires_at"], rfc3339(link.expires_at));
        // The row records the hook's answer.
        let row = sent
            .iter()
            .find(|row| row.message_id == request.id)
            .expect("its outbox row");
        assert_eq!(
            row.last_reply.as_deref(),
            Some("the mail hook answered HTTP 202 Accepted")
        );
    }
    assert_eq!(receiver.received().len(), 2, "each posted once");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_waited_for_and_the_message_arrives_once() {
    let receiver = HookReceiver::start().await;
    receiver.script([
        Answer {
            retry_after: Some("2".into()),
            ..Answer::status(503)
        },
        Answer {
            retry_after: Some("1".into()),
            ..Answer::status(429)
        },
        Answer::status(408),
    ]);
    let server = TestServer::start_with(Options {
        mail: Some(hook(&receiver)),
        dispatcher: pwmail_tests::fast_retries(),
        ..Options::default()
    })
    .await;
    server.add_user("later@example.com", false).await;
    reset(&server, "later@example.com").await;
    let delivered = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(delivered.len(), 1);
    let received = receiver.received();
    let statuses: Vec<u16> = received.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 429, 408, 202]);
    // Every attempt is the same message: the same webhook-id.
    assert!(
        received
            .iter()
            .all(|r| r.id == received[0].id && r.verified)
    );
    // The backoff is 0.1 s; the receiver asked for 2 s, then 1 s.
    let gap = |i: usize| received[i + 1].at - received[i].at;
    assert!(gap(0) >= Duration::from_millis(1_900), "{:?}", gap(0));
    assert!(gap(1) >= Duration::from_millis(900), "{:?}", gap(1));
    assert!(
        gap(2) < Duration::from_millis(900),
        "a 408 without Retry-After waits the backoff: {:?}",
        gap(2)
    );
    let row = &server.expect_outbox(OutboxState::Sent, 1).await[0];
    assert_eq!(row.attempts, 4);
    server.wait_until_quiet().await;
    assert_eq!(receiver.received().len(), 4, "nothing after the 202");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_dead_with_the_answer_and_never_the_link() {
    let receiver = HookReceiver::start().await;
    receiver.script([
        Answer {
            body: format!("refused {{link}} {}", "x".repeat(400)),
            ..Answer::status(400)
        },
        Answer::status(302),
    ]);
    let server = TestServer::start_with(Options {
        mail: Some(hook(&receiver)),
        dispatcher: pwmail_tests::fast_retries(),
        user_rate: (10, 60),
        ..Options::default()
    })
    .await;
    server.add_user("echo@example.com", false).await;
    server.add_user("moved@example.com", false).await;
    reset(&server, "echo@example.com").await;
    let dead = server.expect_outbox(OutboxState::Dead, 1).await;
    reset(&server, "moved@example.com").await;
    let dead_too = server.expect_outbox(OutboxState::Dead, 2).await;
    server.wait_until_quiet().await;

    let received = receiver.received();
    assert_eq!(received.len(), 2, "neither is retried");
    let token =
        pwmail_tests::link_token(received[0].json()["data"]["text"].as_str().unwrap()).unwrap();
    let error = dead[0].last_error.clone().unwrap_or_default();
    assert!(
        error.starts_with(
            "permanent failure: the mail hook answered HTTP 400 Bad Request: refused [link] xxx"
        ),
        "{error}"
    );
    assert!(
        !error.contains(&token),
        "the echoed link is kept out: {error}"
    );
    // The answer is cut at 200 characters.
    let answer = error.split_once("400 Bad Request: ").unwrap().1;
    assert_eq!(answer.chars().count(), 200, "{answer}");
    // A redirect is not followed (it could lead the link elsewhere).
    let moved = dead_too
        .iter()
        .find(|row| row.recipient == "moved@example.com")
        .unwrap();
    assert_eq!(
        moved.last_error.as_deref(),
        Some("permanent failure: the mail hook answered HTTP 302 Found")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_down_while_1000_are_queued_then_all_arrive_once() {
    const N: usize = 1000;
    let receiver = HookReceiver::start().await;
    receiver.set_down(true);
    let server = pwmail_tests::backlog(hook(&receiver), N).await;
    server.expect_outbox(OutboxState::Retrying, 1).await;
    assert!(receiver.delivered().is_empty());

    receiver.set_down(false);
    receiver.wait_for(1, Duration::from_secs(30)).await;
    let started = Instant::now();
    let delivered = receiver.wait_for(N, Duration::from_secs(120)).await;
    let took = started.elapsed();
    server.wait_until_quiet().await;
    let delivered = if delivered.len() == N {
        receiver.delivered()
    } else {
        delivered
    };
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &delivered {
        assert!(r.verified);
        *per_id.entry(r.id.clone()).or_default() += 1;
    }
    assert_eq!(per_id.len(), N, "every email arrived");
    assert!(per_id.values().all(|n| *n == 1), "none twice");
    let mut recipients: Vec<String> = delivered
        .iter()
        .map(|r| r.json()["data"]["to"].as_str().unwrap().to_string())
        .collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), N, "one per user");
    eprintln!(
        "backlog of {N} delivered through the hook in {:.2} s from the first delivery ({:.0} emails/s, concurrency 16)",
        took.as_secs_f64(),
        N as f64 / took.as_secs_f64()
    );
    server.stop().await;
}
