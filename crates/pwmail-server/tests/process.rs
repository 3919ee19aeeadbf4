//! `pwmail serve` as a real process against a real SMTP server (and the
//! delivery hook): a crash in the middle of sending, and what its logs may
//! never contain.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{now, open_store, reset, seed_admin, serve};
use pwmail_server::app::users as admin;
use pwmail_store::OutboxState;
use pwmail_testkit::hook::HookReceiver;
use pwmail_testkit::proxy::TcpProxy;
use pwmail_testkit::ses::SesServer;
use pwmail_testkit::{SmtpOptions, SmtpServer, SmtpTls, header, link_token};

/// What receives the messages in a crash test, and can be down.
enum Receiver {
    /// aiosmtpd behind a proxy that keeps its address taken while it
    /// refuses connections.
    Smtp { smtp: SmtpServer, proxy: TcpProxy },
    /// The delivery hook, answering 503 while down.
    Hook {
        hook: HookReceiver,
        secret: std::path::PathBuf,
    },
    /// Amazon SES (moto) behind a proxy, as SMTP is.
    Ses { ses: SesServer, proxy: TcpProxy },
}

impl Receiver {
    async fn smtp() -> Receiver {
        let smtp = SmtpServer::start(SmtpOptions::default());
        let proxy = TcpProxy::start(([127, 0, 0, 1], smtp.port).into()).await;
        Receiver::Smtp { smtp, proxy }
    }

    async fn hook(dir: &std::path::Path) -> Receiver {
        let secret = dir.join("hook.secret");
        std::fs::write(&secret, pwmail_testkit::hook::SECRET).unwrap();
        Receiver::Hook {
            hook: HookReceiver::start().await,
            secret,
        }
    }

    async fn ses() -> Receiver {
        let ses = SesServer::start(Some("pwmail.test"));
        let proxy = TcpProxy::start(([127, 0, 0, 1], ses.port).into()).await;
        Receiver::Ses { ses, proxy }
    }

    /// The environment serve needs (SES's credentials).
    fn envs(&self) -> Vec<(&'static str, &'static str)> {
        match self {
            Receiver::Ses { .. } => vec![
                ("AWS_ACCESS_KEY_ID", pwmail_testkit::ses::ACCESS_KEY_ID),
                (
                    "AWS_SECRET_ACCESS_KEY",
                    pwmail_testkit::ses::SECRET_ACCESS_KEY,
                ),
            ],
            _ => Vec::new(),
        }
    }

    fn set_down(&self, down: bool) {
        match self {
            Receiver::Smtp { proxy, .. } | Receiver::Ses { proxy, .. } => proxy.set_down(down),
            Receiver::Hook { hook, .. } => hook.set_down(down),
        }
    }

    /// The serve flags that send here.
    fn flags(&self) -> Vec<String> {
        match self {
            Receiver::Smtp { proxy, .. } => vec![
                "--smtp-url".into(),
                format!("smtp://127.0.0.1:{}?tls=none", proxy.addr.port()),
            ],
            Receiver::Ses { proxy, .. } => vec![
                "--ses-region".into(),
                pwmail_testkit::ses::REGION.into(),
                "--ses-endpoint".into(),
                format!("http://127.0.0.1:{}", proxy.addr.port()),
                // SES's own Message-ID replaces pwmail's; moto keeps it.
                "--mail-from".into(),
                "pwmail <no-reply@pwmail.test>".into(),
            ],
            Receiver::Hook { hook, secret } => vec![
                "--mail-webhook-url".into(),
                hook.url(),
                "--mail-webhook-secret-file".into(),
                secret.display().to_string(),
            ],
        }
    }

    /// The Message-ID of each delivered message, once it is there.
    async fn delivered(&self) -> Vec<String> {
        match self {
            Receiver::Ses { ses, .. } => ses
                .messages()
                .await
                .iter()
                .map(|m| header(m, "Message-ID").unwrap())
                .collect(),
            Receiver::Smtp { smtp, .. } => smtp
                .messages()
                .iter()
                .map(|m| header(m, "Message-ID").unwrap())
                .collect(),
            // Not the `pwmail.check` each start posts.
            Receiver::Hook { hook, .. } => hook
                .delivered()
                .into_iter()
                .filter(|r| r.json()["type"] == "email.send")
                .map(|r| r.id)
                .collect(),
        }
    }

    async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let delivered = self.delivered().await;
            if delivered.len() >= count || Instant::now() >= deadline {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_sending_2000_loses_nothing_and_duplicates_only_in_flight_rows() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::smtp().await;
    kill_9_while_sending(dir.path(), receiver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_posting_2000_to_the_hook_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::hook(dir.path()).await;
    kill_9_while_sending(dir.path(), receiver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_sending_2000_through_ses_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::ses().await;
    kill_9_while_sending(dir.path(), receiver).await;
}

/// 2000 queued while the receiver is down; it comes up, the server is
/// killed with -9 once a few hundred are through, and a new one sends the
/// rest: every message arrives, and only rows in flight at the kill may
/// arrive twice.
async fn kill_9_while_sending(d: &std::path::Path, receiver: Receiver) {
    const N: usize = 2000;
    let log = d.join("serve.log");
    let store = open_store(d).await;
    let token = seed_admin(&*store).await;
    for i in 0..N {
        admin::add_user(&*store, &format!("u{i}@example.com"), false, None, now())
            .await
            .unwrap();
    }
    receiver.set_down(true);
    let mut flags = receiver.flags();
    flags.extend(
        [
            "--token-rate",
            "1000000/60",
            // A send times out at half the lease; one that timed out may
            // still have been delivered (at least once), which would make a
            // duplicate this test does not count. 20 s: no receiver here is
            // that slow even on a loaded machine (moto took over 2 s), and
            // rows left sending are due again at the restart (SQLite).
            "--mail-lease-secs",
            "20",
            "--mail-backoff-secs",
            "1",
            "--mail-backoff-max-secs",
            "1",
            "--mail-concurrency",
            "16",
            "--mail-max-attempts",
            "1000",
            "--mail-poll-ms",
            "100",
        ]
        .map(String::from),
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let envs = receiver.envs();
    let first = serve(d, &flags, &envs, &log);
    let listen = first.listen.clone();
    let client = reqwest::Client::new();
    let mut queued = 0;
    for chunk in (0..N).collect::<Vec<_>>().chunks(16) {
        let calls = chunk.iter().map(|i| {
            let (client, listen, token) = (&client, &listen, token.as_str());
            async move { reset(client, listen, token, &format!("u{i}@example.com")).await }
        });
        for status in futures::future::join_all(calls).await {
            assert_eq!(status, 200);
            queued += 1;
        }
    }
    assert_eq!(queued, N);

    // The receiver comes up; kill -9 once a few hundred are through.
    receiver.set_down(false);
    let arrived = receiver.wait_for(300, Duration::from_secs(60)).await;
    assert!(arrived.len() >= 300, "sending started");
    common::signal(&first.child, "-9");
    drop(first);
    let in_flight = store
        .list_outbox(Some(OutboxState::Sending), 10_000)
        .await
        .unwrap()
        .len();
    let delivered_at_kill = receiver.delivered().await.len();
    assert!(
        delivered_at_kill < N,
        "killed mid-way ({delivered_at_kill} of {N} delivered)"
    );

    // A fresh address: the killed server's port is never bound again.
    let _second = serve(d, &flags, &envs, &log);
    let delivered = receiver.wait_for(N, Duration::from_secs(180)).await;
    // Let the restarted process settle anything left.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let depth = store.outbox_depth().await.unwrap();
        let sent = depth
            .iter()
            .find(|(s, _)| *s == OutboxState::Sent)
            .unwrap()
            .1;
        if sent as usize == N || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = if delivered.len() < N {
        delivered
    } else {
        receiver.delivered().await
    };

    let mut per_id: HashMap<String, usize> = HashMap::new();
    for id in delivered {
        *per_id.entry(id).or_default() += 1;
    }
    assert_eq!(per_id.len(), N, "every queued email arrived");
    let duplicates: usize = per_id.values().map(|n| n - 1).sum();
    eprintln!(
        "kill -9 after {delivered_at_kill} of {N} delivered: {in_flight} rows in flight, \
         {duplicates} duplicates after restart"
    );
    assert!(
        duplicates <= in_flight,
        "duplicates ({duplicates}) only for rows in flight at the kill ({in_flight})"
    );
    assert_eq!(
        store
            .list_outbox(Some(OutboxState::Sent), 10_000)
            .await
            .unwrap()
            .len(),
        N,
        "every row ends sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_request_ids_and_never_secrets() {
    const SMTP_PASSWORD: &str = "smtp-Pa55word-zzq";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("serve.log");
    let smtp = SmtpServer::start(SmtpOptions {
        tls: SmtpTls::StartTls,
        auth: Some(("mailer".into(), SMTP_PASSWORD.into())),
        refuse_rcpt: Some("gone".into()),
        ..SmtpOptions::default()
    });
    let store = open_store(d).await;
    let token = seed_admin(&*store).await;
    for email in ["hello@example.com", "gone@example.com"] {
        admin::add_user(&*store, email, false, None, now())
            .await
            .unwrap();
    }

    let password_file = d.join("smtp-password");
    std::fs::write(&password_file, format!("{SMTP_PASSWORD}\n")).unwrap();
    let smtp_url = format!("smtp://mailer@localhost:{}?tls=starttls", smtp.port);
    let ca = smtp.ca_file.as_ref().unwrap().display().to_string();
    let serve = serve(
        d,
        &[
            "--smtp-ca-file",
            &ca,
            "--smtp-password-file",
            &password_file.display().to_string(),
        ],
        &[("PWMAIL_SMTP_URL", &smtp_url), ("PWMAIL_LOG", "debug")],
        &log,
    );
    let listen = serve.listen.clone();
    let client = reqwest::Client::new();
    let response = client
        .post(format!(
            "http://{listen}/api/web/custom/password/admin_reset"
        ))
        .header("Authorization", format!("APIToken {}", token.as_str()))
        .json(&serde_json::json!({ "email": "hello@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    // A refused call with a wrong token logs too.
    let wrong = client
        .post(format!(
            "http://{listen}/api/web/custom/password/admin_reset"
        ))
        .header(
            "Authorization",
            "APIToken pwm_wrongwrongwrongwrongwrongwrongwrongwrongwro",
        )
        .json(&serde_json::json!({ "email": "hello@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    // An email the relay refuses (a dead letter, its address suppressed).
    assert_eq!(
        reset(&client, &listen, &token, "gone@example.com").await,
        200
    );

    let messages = tokio::task::block_in_place(|| smtp.wait_for(1, Duration::from_secs(20)));
    assert_eq!(messages.len(), 1, "smtp: {}", smtp.log());
    let link = link_token(&messages[0]).unwrap();
    // A page visit, and one of a link that does not exist.
    let page = client
        .get(format!("http://{listen}/reset/{link}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let _ = client
        .get(format!(
            "http://{listen}/reset/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ))
        .send()
        .await
        .unwrap();
    // The send's and the dead letter's own lines are written before the
    // server is stopped.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("email sent") && text.contains("email given up") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 'email sent' or 'given up' line"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    common::signal(&serve.child, "-TERM");
    drop(serve);

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() > 5, "logs were written");
    for (what, secret) in [
        ("API token", token.as_str()),
        ("API token body", token.as_str().trim_start_matches("pwm_")),
        ("link token", link.as_str()),
        ("SMTP password", SMTP_PASSWORD),
        ("wrong token", "pwm_wrongwrong"),
    ] {
        assert!(!text.contains(secret), "the {what} appears in the logs");
    }

    // JSON lines; the request's own lines carry its id.
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let queued = lines
        .iter()
        .find(|l| l["message"] == "password email queued")
        .expect("the queue line");
    assert_eq!(queued["span"]["request_id"], request_id.as_str());
    let sent = lines
        .iter()
        .find(|l| l["message"] == "email sent")
        .expect("the send line");
    assert_eq!(
        sent["request_id"],
        request_id.as_str(),
        "the send line names the request"
    );
    let completed = lines
        .iter()
        .filter(|l| l["message"] == "request completed")
        .filter(|l| l["request_id"] == request_id.as_str())
        .count();
    assert_eq!(
        completed, 1,
        "dropshot's own line carries the request id as a field of its own"
    );

    // Logs are data: every line's keys appear once (a JSON reader keeps
    // one of two), values are plain (no Rust Debug text), dropshot's
    // key-values are fields, numbers are numbers.
    for line in text.lines() {
        let keys = top_level_keys(line);
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "a key twice: {line}");
        // pwmail's own lines and dropshot's (a library's debug message,
        // rustls's say, is its own business).
        let ours = line.contains("\"target\":\"pwmail") || line.contains("\"target\":\"dropshot\"");
        for debug in ["Some(", "None\"", "\":\"None", " { ", "UserId("] {
            assert!(
                !ours || !line.contains(debug),
                "Debug text {debug:?}: {line}"
            );
        }
        assert!(!line.contains("\"kv\":\"latency_us"), "{line}");
    }
    let responses: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "request completed")
        .collect();
    assert!(responses.len() >= 4, "{text}");
    for r in &responses {
        assert!(r["status"].is_u64(), "{r}");
        assert!(r["latency_us"].is_u64(), "{r}");
        assert!(r["method"].is_string() && r["path"].is_string(), "{r}");
    }
    assert!(
        responses
            .iter()
            .any(|r| r["status"] == 404 && r["path"].as_str().unwrap().contains("<redacted>")),
        "the unknown link's 404, its token redacted: {text}"
    );
    assert_eq!(queued["user_id"].as_i64().map(|_| ()), Some(()), "{queued}");
    let dead = lines
        .iter()
        .find(|l| l["message"] == "email given up (dead letter)")
        .expect("the dead letter's line");
    assert!(dead["error"].as_str().unwrap().contains("550"), "{dead}");
    let serving = lines
        .iter()
        .find(|l| l["message"] == "pwmail serving")
        .unwrap();
    assert!(
        serving["mail"]
            .as_str()
            .unwrap()
            .starts_with("SMTP relay localhost:"),
        "{serving}"
    );
}

/// The keys of a JSON object's top level, in order, duplicates kept
/// (serde_json would keep one of two silently).
fn top_level_keys(line: &str) -> Vec<String> {
    let (mut keys, mut depth, mut in_string, mut escaped) = (Vec::new(), 0, false, false);
    let mut current = String::new();
    let mut expecting_key = false;
    for c in line.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    in_string = false;
                    if depth == 1 && expecting_key {
                        keys.push(std::mem::take(&mut current));
                        expecting_key = false;
                    }
                    continue;
                }
                _ => {}
            }
            if depth == 1 && expecting_key {
                current.push(c);
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => {
                depth += 1;
                expecting_key = c == '{' && depth == 1;
            }
            '}' | ']' => depth -= 1,
            ',' if depth == 1 => expecting_key = true,
            _ => {}
        }
    }
    keys
}

/// A whole walk through the reset page, in both log formats, with debug
/// logs: no line holds any link token, or any part of one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_holds_a_reset_link_in_either_format() {
    const GOOD: &str = "plum trellis quasar lantern";
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let log = d.join("serve.log");
        let store = open_store(d).await;
        let token = seed_admin(&*store).await;
        admin::add_user(&*store, "walker@example.com", false, None, now())
            .await
            .unwrap();
        let serve = common::serve_logging(d, format, &[], &[("PWMAIL_LOG", "trace")], &log);
        let listen = serve.listen.clone();
        let client = reqwest::Client::new();
        assert_eq!(
            reset(&client, &listen, &token, "walker@example.com").await,
            200
        );
        let mail_dir = d.join("pwmail-data/mail");
        let deadline = Instant::now() + Duration::from_secs(30);
        let eml = loop {
            let found = std::fs::read_dir(&mail_dir)
                .ok()
                .and_then(|mut it| it.find_map(|e| e.ok().map(|e| e.path())))
                .filter(|p| p.extension().is_some_and(|x| x == "eml"));
            if let Some(path) = found {
                break std::fs::read_to_string(path).unwrap();
            }
            assert!(Instant::now() < deadline, "no .eml");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let link = link_token(&eml).unwrap();
        let page = format!("http://{listen}/reset/{link}");
        let form = |a: &str, b: &str| {
            client
                .post(&page)
                .form(&[("password", a), ("password_confirm", b)])
                .send()
        };
        let status = |r: reqwest::Response| r.status().as_u16();
        assert_eq!(status(client.get(&page).send().await.unwrap()), 200);
        // Spellings of the link that gateways and proxies make: none serves
        // the page (nor uses the link up), none reaches the log.
        for spelling in [
            format!("/reset//{link}"),
            format!("/reset///{link}"),
            format!("/%72eset/{link}"),
            format!("/reset/./{link}"),
            format!("/RESET/{link}"),
            format!("/reset/%{:02X}{}", link.as_bytes()[0], &link[1..]),
            format!("/api/{link}"),
            format!("/{link}"),
        ] {
            for method in ["GET", "POST"] {
                let answer = raw_request(&listen, method, &spelling).await;
                assert!(
                    answer.starts_with("HTTP/1.1 404 "),
                    "{method} {spelling}: {answer}"
                );
                let page_like = !spelling.starts_with("/api/") && spelling != format!("/{link}");
                if page_like {
                    assert!(
                        answer
                            .to_ascii_lowercase()
                            .contains("content-type: text/html"),
                        "{method} {spelling}: answered in the page's shape: {answer}"
                    );
                }
            }
        }
        assert_eq!(status(form(GOOD, "something else").await.unwrap()), 400);
        assert_eq!(status(form(GOOD, GOOD).await.unwrap()), 200);
        assert_eq!(status(client.get(&page).send().await.unwrap()), 410);
        assert_eq!(status(form(GOOD, GOOD).await.unwrap()), 410);
        let guess = format!("http://{listen}/reset/{}x", &link[..20]);
        assert_eq!(status(client.get(&guess).send().await.unwrap()), 404);
        drop(serve);

        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            !text.contains('\x1b'),
            "{format}: no ANSI colour codes in a log written to a file:\n{text}"
        );
        assert!(
            text.matches("/reset/<redacted>").count() >= 12,
            "{format}: the page's request lines are logged, redacted:\n{text}"
        );
        for (what, secret) in [
            ("link token", link.as_str()),
            ("first half of the link token", &link[..21]),
            ("last half of the link token", &link[22..]),
            ("API token", token.as_str()),
        ] {
            assert!(
                !text.contains(secret),
                "{format}: the {what} appears in the logs"
            );
        }
    }
}

/// One HTTP/1.1 request written as is (a client library would normalise
/// the path); the answer's head and body.
async fn raw_request(listen: &str, method: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(listen).await.unwrap();
    let body = "password=plum+trellis+quasar+lantern&password_confirm=plum+trellis+quasar+lantern";
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: pwmail\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}",
        if method == "POST" { body.len() } else { 0 },
        if method == "POST" { body } else { "" },
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// SQLite (one process holds the data directory's lock): a message a
/// killed process left being sent goes out as soon as the next process
/// starts, not when its lease ends (10 minutes here).
/// Events are written with the change they report, so a kill -9 with
/// events queued and some being delivered loses none: after the restart
/// the receiver has every one, duplicates only among those in delivery at
/// the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_events_queued_loses_none() {
    const N: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("serve.log");
    let store = open_store(d).await;
    let token = seed_admin(&*store).await;
    for i in 0..N {
        admin::add_user(&*store, &format!("u{i}@example.com"), false, None, now())
            .await
            .unwrap();
    }
    let secret = d.join("events.secret");
    std::fs::write(&secret, pwmail_testkit::hook::SECRET).unwrap();
    let receiver = HookReceiver::start().await;
    receiver.set_down(true);
    let (url, secret) = (receiver.url(), secret.display().to_string());
    // The restart ends the leases the killed process held (SQLite: it
    // holds the database alone), so what was in delivery goes again at once.
    let flags = [
        "--events-url",
        &url,
        "--events-secret-file",
        &secret,
        "--events",
        "email.queued,email.sent",
        "--token-rate",
        "1000000/60",
    ];
    let first = serve(d, &flags, &[], &log);
    let listen = first.listen.clone();
    let client = reqwest::Client::new();
    for i in 0..N {
        assert_eq!(
            reset(&client, &listen, &token, &format!("u{i}@example.com")).await,
            200
        );
    }
    // Every email sent, so every event written; none taken yet.
    let deadline = Instant::now() + Duration::from_secs(60);
    let written = loop {
        let events = store.list_events(None, 10_000).await.unwrap();
        if events.len() == 2 * N {
            break events;
        }
        assert!(Instant::now() < deadline, "{} events", events.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(receiver.delivered().is_empty());
    receiver.set_down(false);
    let arrived = receiver.wait_for(40, Duration::from_secs(60)).await;
    assert!(arrived.len() >= 40, "delivery started");
    common::signal(&first.child, "-9");
    drop(first);
    let at_kill = receiver.delivered().len();
    let in_delivery = store
        .list_events(Some(pwmail_store::EventState::Delivering), 10_000)
        .await
        .unwrap()
        .len();
    assert!(at_kill < 2 * N, "killed mid-way ({at_kill} of {})", 2 * N);

    let _second = serve(d, &flags, &[], &log);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut per_id: HashMap<String, usize> = HashMap::new();
    while per_id.len() < 2 * N && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        per_id.clear();
        for r in receiver.delivered() {
            assert!(r.verified);
            *per_id.entry(r.id).or_default() += 1;
        }
    }
    let expected: std::collections::HashSet<String> =
        written.iter().map(|e| e.event_id.clone()).collect();
    let got: std::collections::HashSet<String> = per_id.keys().cloned().collect();
    assert_eq!(
        got, expected,
        "every event written arrived, and nothing else"
    );
    let duplicates: usize = per_id.values().map(|n| n - 1).sum();
    eprintln!(
        "kill -9 after {at_kill} of {} events delivered: {in_delivery} in delivery, \
         {duplicates} duplicates after restart",
        2 * N
    );
    assert!(
        duplicates <= in_delivery,
        "duplicates ({duplicates}) only for events in delivery at the kill ({in_delivery})"
    );
    // Each delivery is settled (forgotten) just after the receiver's 2xx.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !store.list_events(None, 10).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "delivered events are forgotten");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_left_sending_by_kill_9_goes_out_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("serve.log");
    let store = open_store(d).await;
    let token = seed_admin(&*store).await;
    admin::add_user(&*store, "left@example.com", false, None, now())
        .await
        .unwrap();
    // The relay never answers the first DATA: the send hangs, its row
    // stays `sending`.
    let smtp = SmtpServer::start(SmtpOptions {
        script: vec![0],
        ..SmtpOptions::default()
    });
    let smtp_url = format!("smtp://127.0.0.1:{}?tls=none", smtp.port);
    let flags = ["--smtp-url", &smtp_url, "--mail-lease-secs", "600"];
    let first = serve(d, &flags, &[], &log);
    let listen = first.listen.clone();
    let client = reqwest::Client::new();
    assert_eq!(
        reset(&client, &listen, &token, "left@example.com").await,
        200
    );
    // Killed once the relay holds the DATA unanswered (the script's one
    // stall is spent on this send, not the next).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !smtp.log().contains("scripted stall on attempt 1") {
        assert!(Instant::now() < deadline, "the send never reached DATA");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        store
            .list_outbox(Some(OutboxState::Sending), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    common::signal(&first.child, "-9");
    drop(first);
    assert!(smtp.messages().is_empty());

    let _second = serve(d, &flags, &[], &log);
    let arrived = tokio::task::block_in_place(|| smtp.wait_for(1, Duration::from_secs(30)));
    assert_eq!(
        arrived.len(),
        1,
        "the message left sending waited for its lease; log:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(
        header(&arrived[0], "To").as_deref(),
        Some("left@example.com")
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("left being sent are due again now"),
        "{logged}"
    );
}

/// At start, rate-limit state a slower rate left (a lowered `--user-rate`)
/// is cut to the configured rate, and the log says how many keys; a start
/// that cuts nothing says nothing.
#[tokio::test]
async fn a_start_says_when_it_cuts_state_a_slower_rate_left() {
    use pwmail_store::{Rate, RateKey, UserId};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("serve.log");
    {
        // As `--user-rate 1/86400` leaves a user after one email.
        let store = open_store(d).await;
        let slow = Rate {
            period_ms: 86_400_000,
            burst: 1,
        };
        store
            .rate_limit(&RateKey::User(UserId(1)), &slow, now())
            .await
            .unwrap();
    }
    const CUT: &str = "rate-limit state left by a slower rate cut to the current one";
    let since = |from: usize| {
        let text = std::fs::read_to_string(&log).unwrap();
        text[from..].to_string()
    };
    drop(serve(d, &["--user-rate", "1/60"], &[], &log));
    let first = since(0);
    let said: Vec<&str> = first.lines().filter(|l| l.contains(CUT)).collect();
    assert_eq!(said.len(), 1, "{first}");
    assert!(
        said[0].contains("\"keys\":1") && said[0].contains("\"limit\":\"user\""),
        "{}",
        said[0]
    );

    let from = first.len();
    drop(serve(d, &["--user-rate", "1/60"], &[], &log));
    let second = since(from);
    assert!(second.contains("pwmail serving"), "{second}");
    assert!(!second.contains(CUT), "nothing to cut: {second}");
}

/// Traces through a real OTLP/HTTP receiver (protobuf decoded by
/// `opentelemetry-proto`): an API call continues the caller's
/// `traceparent`, its store call is its child; the email's delivery
/// attempt is a trace of its own linked to the call, with the send as its
/// child; the page continues its caller's trace. No span holds the token,
/// and the JSON log lines of the call and of the send carry their ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_an_otlp_receiver_linked_across_the_outbox_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("serve.log");
    let store = open_store(d).await;
    let token = seed_admin(&*store).await;
    admin::add_user(&*store, "ada@example.com", false, None, now())
        .await
        .unwrap();
    let receiver = pwmail_testkit::otlp::OtlpReceiver::start().await;
    let endpoint = receiver.endpoint();
    let envs = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "pwmail-under-test"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let server = serve(d, &[], &envs, &log);
    let (call_trace, call_parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let client = reqwest::Client::new();
    let status = client
        .post(format!(
            "http://{}/api/web/custom/password/admin_reset",
            server.listen
        ))
        .header("Authorization", format!("APIToken {token}"))
        .header("traceparent", format!("00-{call_trace}-{call_parent}-01"))
        .json(&serde_json::json!({ "email": "ada@example.com" }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let mail_dir = d.join("pwmail-data/mail");
    let deadline = Instant::now() + Duration::from_secs(30);
    let link = loop {
        let found = std::fs::read_dir(&mail_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .find_map(|m| link_token(&m));
        if let Some(link) = found {
            break link;
        }
        assert!(Instant::now() < deadline, "no email written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (page_trace, page_parent) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let page = client
        .get(format!("http://{}/reset/{link}", server.listen))
        .header("traceparent", format!("00-{page_trace}-{page_parent}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);

    let named = |spans: &[pwmail_testkit::otlp::Span], name: &str| {
        spans.iter().filter(|s| s.name == name).count()
    };
    let spans = receiver
        .wait_until(Duration::from_secs(30), |spans| {
            named(spans, "mail.send") >= 1 && named(spans, "GET /reset/{token}") >= 1
        })
        .await;
    let shown: Vec<_> = spans
        .iter()
        .map(|s| (&s.name, &s.trace_id, &s.parent_span_id))
        .collect();
    let call = spans
        .iter()
        .find(|s| s.trace_id == call_trace && s.parent_span_id == call_parent)
        .unwrap_or_else(|| panic!("the call continues its traceparent: {shown:?}"));
    assert_eq!(call.name, "reset_password_by_admin", "{shown:?}");
    assert_eq!(call.service, "pwmail-under-test");
    assert!(call.attribute("request_id").is_some_and(|r| !r.is_empty()));
    let stored = spans
        .iter()
        .find(|s| s.name == "store.issue_call")
        .expect("the store call");
    assert_eq!(
        (&stored.trace_id, &stored.parent_span_id),
        (&call.trace_id, &call.span_id),
        "the store call is the call's child"
    );
    let deliver = spans
        .iter()
        .find(|s| s.name == "outbox.deliver")
        .expect("the delivery attempt");
    assert_eq!(
        deliver.links,
        [(call.trace_id.clone(), call.span_id.clone())],
        "the delivery attempt links to the call that queued it"
    );
    assert_ne!(deliver.trace_id, call.trace_id, "a trace of its own");
    let send = spans.iter().find(|s| s.name == "mail.send").unwrap();
    assert_eq!(
        (&send.trace_id, &send.parent_span_id),
        (&deliver.trace_id, &deliver.span_id)
    );
    assert_eq!(send.attribute("transport"), Some("files"));
    let page_span = spans
        .iter()
        .find(|s| s.name == "GET /reset/{token}")
        .unwrap();
    assert_eq!(
        (
            page_span.trace_id.as_str(),
            page_span.parent_span_id.as_str()
        ),
        (page_trace, page_parent)
    );
    for span in &spans {
        assert!(
            !span.raw.contains(&link),
            "a span holds the token: {}",
            span.raw
        );
    }

    // The log lines carry the ids: the call's (its failures, none here)
    // and the send's "email sent".
    let logged = std::fs::read_to_string(&log).unwrap();
    let sent_line = logged
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "email sent")
        .expect("an email sent line");
    assert_eq!(
        sent_line["span"]["trace_id"],
        deliver.trace_id.as_str(),
        "{sent_line}"
    );
    assert_eq!(
        sent_line["span"]["span_id"],
        deliver.span_id.as_str(),
        "{sent_line}"
    );
    common::signal(&server.child, "-TERM");
}
