//! Events to the operator's receiver (`--events-url`): a real HTTP server
//! in the test (`pwmail_testkit::hook`) that checks each Standard Webhooks
//! signature from the specification, not with pwmail's signing crate.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use pwmail_client::types::SendPasswordEmailRequest;
use pwmail_server::config::EventsConfig;
use pwmail_server::config::hook::{EVENTS, HookConfig};
use pwmail_store::{EventKind, OutboxState};
use pwmail_testkit::hook::{HookReceiver, Received, SECRET};
use pwmail_tests::{DEADLINE, Options, TestServer, link_token};

fn events_to(receiver: &HookReceiver, kinds: &[EventKind]) -> EventsConfig {
    EventsConfig {
        hook: HookConfig::new(EVENTS, &receiver.url(), SECRET, "test secret").unwrap(),
        kinds: kinds.to_vec(),
        max_attempts: 60,
        lease: Duration::from_secs(30),
    }
}

/// SendPasswordEmail for `email`; the call's request id.
async fn send(server: &TestServer, email: &str) -> String {
    let response = server
        .client()
        .send_password_email_system()
        .body(
            SendPasswordEmailRequest::builder()
                .email(email)
                .namespace(Some("system".try_into().unwrap())),
        )
        .send()
        .await
        .expect("200");
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string()
}

/// Waits until the receiver has taken (2xx) events of these `types` at
/// least; returns every delivered event's JSON.
async fn wait_for_types(receiver: &HookReceiver, types: &[&str]) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let got: Vec<serde_json::Value> = receiver.delivered().iter().map(Received::json).collect();
        let have = |t: &&str| got.iter().filter(|e| e["type"] == **t).count();
        let mut wanted: HashMap<&str, usize> = HashMap::new();
        for t in types {
            *wanted.entry(t).or_default() += 1;
        }
        if wanted.iter().all(|(t, n)| have(t) >= *n) {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited for {types:?}; got {:?}",
            got.iter().map(|e| e["type"].clone()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_link_walks_queued_sent_opened_password_set_signed_and_without_its_token() {
    let receiver = HookReceiver::start().await;
    let server = TestServer::start_with(Options {
        events: Some(events_to(&receiver, &EventKind::ALL)),
        ..Options::default()
    })
    .await;
    let user = server.add_user("ada@example.com", false).await;
    let request_id = send(&server, "ada@example.com").await;
    let emails = server.wait_for_emails(1, DEADLINE).await;
    let token = link_token(&emails[0]).expect("a link in the email");
    let page = server.endpoint(&format!("/reset/{token}"));
    let http = reqwest::Client::new();
    for _ in 0..2 {
        // Opened twice: one link.opened.
        assert_eq!(http.get(&page).send().await.unwrap().status(), 200);
    }
    let done = http
        .post(&page)
        .form(&[
            ("password", "correct horse battery"),
            ("password_confirm", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);

    let got = wait_for_types(
        &receiver,
        &[
            "email.queued",
            "email.sent",
            "link.opened",
            "password.set",
            "email.queued",
            "email.sent",
        ],
    )
    .await;
    // Every request carried a signature the receiver could check, and
    // nothing it was sent holds the link or its token.
    for r in receiver.received() {
        assert!(r.verified, "unsigned or wrongly signed: {r:?}");
        assert!(
            !r.body.contains(&token) && !r.body.contains("/reset/"),
            "{}",
            r.body
        );
        assert_eq!(r.json()["data"]["id"], r.id, "webhook-id is the event's id");
    }
    let link = server
        .store()
        .find_link(&pwmail_server::secrets::hash(&token))
        .await
        .unwrap()
        .unwrap();
    let of_link: BTreeMap<i64, &serde_json::Value> = got
        .iter()
        .filter(|e| e["data"]["link"]["id"] == link.id)
        .map(|e| (e["data"]["link"]["sequence"].as_i64().unwrap(), e))
        .collect();
    let order: Vec<(i64, &str)> = of_link
        .iter()
        .map(|(seq, e)| (*seq, e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        order,
        [
            (1, "email.queued"),
            (2, "email.sent"),
            (3, "link.opened"),
            (4, "password.set")
        ],
        "the link's events, numbered as they happened"
    );
    let sent = server.expect_outbox(OutboxState::Sent, 2).await;
    let link_email = sent
        .iter()
        .find(|m| m.kind.as_str() == "send_password_email")
        .unwrap();
    for e in of_link.values() {
        assert_eq!(e["data"]["user"]["id"], user.id.0);
        assert_eq!(e["data"]["user"]["email"], "ada@example.com");
        assert_eq!(
            e["data"]["request_id"], request_id,
            "the API call that issued the link"
        );
    }
    assert_eq!(
        of_link[&2]["data"]["email"]["message_id"],
        link_email.message_id
    );
    assert_eq!(of_link[&2]["data"]["email"]["kind"], "send_password_email");
    // The "password changed" notice: its own emails, no link. Deliveries
    // may arrive in any order; what happened first says `at_ms`.
    let mut notice: Vec<_> = got
        .iter()
        .filter(|e| e["data"]["email"]["kind"] == "password_changed")
        .map(|e| {
            (
                e["data"]["at_ms"].as_i64().unwrap(),
                e["type"].as_str().unwrap(),
            )
        })
        .collect();
    notice.sort();
    let notice: Vec<&str> = notice.into_iter().map(|(_, t)| t).collect();
    assert_eq!(notice, ["email.queued", "email.sent"]);
    assert!(
        got.iter()
            .filter(|e| e["data"]["email"]["kind"] == "password_changed")
            .all(|e| e["data"].get("link").is_none()),
        "the notice names no link"
    );
    let mut ids: Vec<&str> = got
        .iter()
        .map(|e| e["data"]["id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "each event delivered once");
    assert!(
        server
            .metrics()
            .await
            .contains("pwmail_event_attempts_total{outcome=\"delivered\"}"),
        "delivery is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_every_event_once_it_is_back() {
    let receiver = HookReceiver::start().await;
    receiver.set_down(true);
    let server = TestServer::start_with(Options {
        events: Some(events_to(
            &receiver,
            &[EventKind::EmailQueued, EventKind::EmailSent],
        )),
        ..Options::default()
    })
    .await;
    let n = 20;
    for i in 0..n {
        server.add_user(&format!("u{i}@example.com"), false).await;
        send(&server, &format!("u{i}@example.com")).await;
    }
    server.expect_outbox(OutboxState::Sent, n).await;
    // Refused for a while: attempts arrive, none is taken.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let refused = receiver.received().len();
    assert!(refused >= 2 * n, "{refused} attempts while down");
    assert!(receiver.delivered().is_empty());
    let pending = server.store().list_events(None, 1000).await.unwrap();
    assert_eq!(pending.len(), 2 * n, "all kept, none given up");
    assert!(
        pending
            .iter()
            .all(|e| e.attempts >= 1 && e.last_error.as_deref().is_some_and(|m| m.contains("503")))
    );

    receiver.set_down(false);
    let delivered = receiver.wait_for(2 * n, DEADLINE).await;
    // Once more, for a late duplicate to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delivered_after = receiver.delivered();
    assert_eq!(delivered_after.len(), delivered.len(), "nothing after");
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &delivered_after {
        assert!(r.verified);
        *per_id.entry(r.id.clone()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 2 * n, "every event");
    assert!(
        per_id.values().all(|&k| k == 1),
        "each id taken once: {per_id:?}"
    );
    let ids_before: std::collections::HashSet<String> =
        pending.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(
        per_id
            .keys()
            .cloned()
            .collect::<std::collections::HashSet<_>>(),
        ids_before,
        "the ids the attempts carried, kept across retries"
    );
    let queued = delivered_after
        .iter()
        .filter(|r| r.json()["type"] == "email.queued")
        .count();
    assert_eq!(queued, n, "only the kinds chosen, each once per email");
    assert!(
        server
            .store()
            .list_events(None, 1000)
            .await
            .unwrap()
            .is_empty(),
        "delivered: forgotten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_events_are_written_without_a_receiver() {
    let server = TestServer::start_with(Options::default()).await;
    server.add_user("ada@example.com", false).await;
    send(&server, "ada@example.com").await;
    server.expect_outbox(OutboxState::Sent, 1).await;
    // Opening the page writes nothing either.
    let emails = server.wait_for_emails(1, DEADLINE).await;
    let token = link_token(&emails[0]).expect("a link");
    let page = reqwest::get(server.endpoint(&format!("/reset/{token}")))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let link = server
        .store()
        .find_link(&pwmail_server::secrets::hash(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.opened_at, None);
    assert!(
        server
            .store()
            .list_events(None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(server.store().event_kinds().await.unwrap().is_empty());
}

/// Two replicas on one PostgreSQL database, both delivering events to one
/// receiver: each event is leased to one of them, so each arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_deliver_each_event_once() {
    let schema = pwmail_testkit::pg::PgSchema::create().await;
    let receiver = HookReceiver::start().await;
    let options = || Options {
        database_url: Some(schema.url(None)),
        events: Some(events_to(
            &receiver,
            &[EventKind::EmailQueued, EventKind::EmailSent],
        )),
        ..Options::default()
    };
    let a = TestServer::start_with(options()).await;
    let b = TestServer::start_with(options()).await;
    let n = 40;
    for i in 0..n {
        let email = format!("u{i}@example.com");
        a.add_user(&email, false).await;
        send(if i % 2 == 0 { &a } else { &b }, &email).await;
    }
    let delivered = receiver.wait_for(2 * n, DEADLINE).await;
    assert_eq!(delivered.len(), 2 * n, "every event");
    // Time for a second delivery to show, were there one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in receiver.delivered() {
        *per_id.entry(r.id).or_default() += 1;
    }
    assert_eq!(per_id.len(), 2 * n);
    assert!(
        per_id.values().all(|&k| k == 1),
        "each event delivered by one replica, once: {per_id:?}"
    );
    assert!(a.store().list_events(None, 10).await.unwrap().is_empty());
    a.stop().await;
    b.stop().await;
    schema.drop_schema().await;
}
