//! `pwmail send` as an operator relies on it: killed midway and run again,
//! nobody is emailed twice; Ctrl-C during a Retry-After wait ends at once.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{KillOnDrop, open_store};

fn pwmail(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pwmail"));
    command
        .current_dir(dir)
        .env_remove("PWMAIL_DATABASE_URL")
        .env_remove("PWMAIL_DATA_DIR");
    command
}

/// `pwmail serve` in `dir` on a port it picks, with `extra` flags; its
/// bootstrap token is written to `dir/token`. Returns it and its address.
fn serve(dir: &Path, extra: &[&str]) -> (KillOnDrop, String) {
    let log = dir.join("serve.log");
    let mut child = KillOnDrop(
        pwmail(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let (mut banner, mut token) = (String::new(), String::new());
    stdout.read_line(&mut banner).unwrap();
    stdout.read_line(&mut token).unwrap();
    std::fs::write(dir.join("token"), token.trim()).unwrap();
    let listen = common::serving_address(&mut child.0, &log, 0);
    (child, listen)
}

fn send_args(listen: &str) -> Vec<String> {
    [
        "send",
        "--server",
        &format!("http://{listen}"),
        "--token-file",
        "token",
        "--quiet",
    ]
    .map(String::from)
    .into()
}

fn sigint(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_killed_midway_and_run_again_emails_each_user_exactly_once() {
    const USERS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d).arg("migrate").output().unwrap().status.success());
    let mut csv = String::from("email\n");
    for i in 0..USERS {
        csv.push_str(&format!("k{i}@example.com\n"));
    }
    std::fs::write(d.join("users.csv"), &csv).unwrap();
    let imported = pwmail(d)
        .args(["user", "import", "users.csv"])
        .output()
        .unwrap();
    assert!(imported.status.success());
    let (_server, listen) = serve(d, &[]);
    let store = open_store(d).await;

    let mut first = KillOnDrop(
        pwmail(d)
            .args(send_args(&listen))
            .args(["--from-csv", "users.csv", "--concurrency", "4"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Killed (not interrupted) once some calls went through and others did not.
    let deadline = Instant::now() + Duration::from_secs(60);
    let accepted_before_kill = loop {
        let rows = store.list_outbox(None, 10_000).await.unwrap().len();
        if rows >= 40 {
            break rows;
        }
        assert!(Instant::now() < deadline, "the first run made {rows} calls");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let after_kill = store.list_outbox(None, 10_000).await.unwrap().len();
    assert!(
        after_kill < USERS,
        "the first run was cut short ({after_kill})"
    );

    let again = pwmail(d)
        .args(send_args(&listen))
        .args(["--from-csv", "users.csv", "--concurrency", "4"])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success(),
        "{summary}{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let sent: usize = summary
        .lines()
        .find_map(|l| l.strip_prefix("sent: "))
        .unwrap()
        .parse()
        .unwrap();
    let already: usize = summary
        .lines()
        .find_map(|l| l.strip_prefix("already sent by this run id before: "))
        .map_or(0, |n| n.parse().unwrap());
    assert_eq!(sent + already, USERS, "{summary}");
    // Calls in flight when the client died may still have committed on the
    // server (up to --concurrency of them): the re-run finds those too.
    assert!(
        (after_kill..=after_kill + 4).contains(&already),
        "{after_kill} queued before the re-run: {summary}"
    );

    let rows = store.list_outbox(None, 10_000).await.unwrap();
    let mut per_user: HashMap<String, usize> = HashMap::new();
    for row in &rows {
        *per_user.entry(row.recipient.clone()).or_default() += 1;
    }
    assert_eq!(per_user.len(), USERS);
    assert!(per_user.values().all(|n| *n == 1), "each user queued once");
    // And delivered once: the .eml files, one per user.
    let mail = d.join("pwmail-data/mail");
    let deadline = Instant::now() + Duration::from_secs(60);
    let emails = loop {
        // Finished messages only: one being written is a hidden `.tmp` file.
        let emails: Vec<_> = std::fs::read_dir(&mail)
            .map(|it| {
                it.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        if emails.len() >= USERS || Instant::now() >= deadline {
            break emails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut recipients: HashMap<String, usize> = HashMap::new();
    for email in &emails {
        let text = std::fs::read_to_string(email.path()).unwrap();
        let to = text
            .lines()
            .find_map(|l| l.strip_prefix("To: "))
            .unwrap()
            .to_string();
        *recipients.entry(to).or_default() += 1;
    }
    assert_eq!(recipients.len(), USERS);
    assert!(recipients.values().all(|n| *n == 1));
    eprintln!(
        "kill and re-run: {USERS} users; {accepted_before_kill}+ accepted before kill -9, \
         {after_kill} when it died; re-run sent {sent}, replayed {already}; \
         {} .eml files, {} recipients, none twice",
        emails.len(),
        recipients.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_a_retry_after_wait_ends_it_and_sends_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d).arg("migrate").output().unwrap().status.success());
    assert!(
        pwmail(d)
            .args(["user", "add", "wait@example.com"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let (_server, listen) = serve(d, &["--user-rate", "1/60"]);
    let store = open_store(d).await;
    let first = pwmail(d)
        .args(send_args(&listen))
        .args(["--email", "wait@example.com"])
        .output()
        .unwrap();
    assert!(first.status.success());

    // A fresh run (another key) meets the 60 s cooldown and waits.
    let mut waiting = KillOnDrop(
        pwmail(d)
            .args(send_args(&listen))
            .args(["--email", "wait@example.com", "--run-id", "new"])
            .args(["--report", "report.json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // It has been refused once (429) when the server counted the refusal.
    let metrics = format!("http://{listen}/metrics");
    let refused = r#"pwmail_api_requests_total{operation="send_password_email",status="429"}"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        if text.lines().any(|l| l.starts_with(refused)) {
            break;
        }
        assert!(Instant::now() < deadline, "no 429 yet");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let interrupted = Instant::now();
    sigint(&waiting.0);
    let status = loop {
        if let Some(status) = waiting.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            interrupted.elapsed() < Duration::from_secs(10),
            "still waiting out Retry-After after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = interrupted.elapsed();
    assert!(!status.success(), "an email was not sent: non-zero exit");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut waiting.0.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(
        stdout.contains("not attempted (interrupted): 1"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["not_attempted"], 1);

    // Nothing more was sent, then or later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(store.list_outbox(None, 100).await.unwrap().len(), 1);
    eprintln!("Ctrl-C during a 60 s Retry-After wait: exited after {took:?}");
}

/// A server that accepts connections and never answers: every call stays in
/// flight.
fn silent_server() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

#[test]
fn a_second_ctrl_c_abandons_calls_in_flight_and_reports_them_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("token"), "pwm_test").unwrap();
    let (listener, addr) = silent_server();
    let mut send = KillOnDrop(
        pwmail(d)
            .args(send_args(&addr))
            .args(["--email", "stuck@example.com", "--report", "report.json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The call is in flight once its connection is accepted (held open).
    let (_held, _) = listener.accept().unwrap();
    sigint(&send);
    // The first Ctrl-C lets the call in flight finish: still running.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        send.try_wait().unwrap().is_none(),
        "waits for the call in flight"
    );
    sigint(&send);
    let interrupted = Instant::now();
    let status = loop {
        if let Some(status) = send.try_wait().unwrap() {
            break status;
        }
        assert!(
            interrupted.elapsed() < Duration::from_secs(10),
            "a second Ctrl-C abandons the call"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(!status.success());
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut send.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(stdout.contains("unknown (abandoned in flight"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["unknown"], 1, "{report}");
    assert_eq!(report["failures"][0]["email"], "stuck@example.com");
}

/// `--ttl-secs` and `--return-to` send through pwmail's own operation: each
/// link lives that long and remembers the page; the run id names them, so
/// the same command again replays, and a refused `--return-to` says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_options_reach_every_link_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d).arg("migrate").output().unwrap().status.success());
    std::fs::write(
        d.join("users.csv"),
        "email\na@example.com\nb@example.com\nc@example.com\n",
    )
    .unwrap();
    let imported = pwmail(d)
        .args(["user", "import", "users.csv"])
        .output()
        .unwrap();
    assert!(imported.status.success());
    let (_server, listen) = serve(
        d,
        &[
            "--return-to-origin",
            "https://app.example.com",
            "--user-rate",
            "1000/1",
        ],
    );
    let run = |extra: &[&str]| {
        pwmail(d)
            .args(send_args(&listen))
            .args(["--from-csv", "users.csv", "--operation", "reset"])
            .args(extra)
            .output()
            .unwrap()
    };
    let options = [
        "--ttl-secs",
        "600",
        "--return-to",
        "https://app.example.com/x",
    ];
    let first = run(&options);
    let out = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(
        first.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(out.contains("sent: 3"), "{out}");

    let store = open_store(d).await;
    let rows = store.list_outbox(None, 100).await.unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(row.kind, pwmail_store::MessageKind::ResetPasswordByAdmin);
        assert_eq!(
            row.link_expires_at.map(|at| at - row.created_at),
            Some(600_000),
            "{row:?}"
        );
    }

    let again = run(&options);
    let out = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(again.status.success(), "{out}");
    assert!(
        out.contains("already sent by this run id before: 3"),
        "the same command replays: {out}"
    );
    assert_eq!(store.list_outbox(None, 100).await.unwrap().len(), 3);

    let refused = run(&[
        "--return-to",
        "https://evil.example.com/",
        "--run-id",
        "new",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!refused.status.success(), "{text}");
    assert!(
        text.contains("origin https://evil.example.com is not allowed"),
        "{text}"
    );
    assert_eq!(store.list_outbox(None, 100).await.unwrap().len(), 3);
}

/// `--locale` gives the whole run one language, over each user's own; a
/// malformed tag stops the run before it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_locale_writes_every_email_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d).arg("migrate").output().unwrap().status.success());
    std::fs::write(
        d.join("users.csv"),
        "email,locale\na@example.com,de\nb@example.com,\n",
    )
    .unwrap();
    let imported = pwmail(d)
        .args(["user", "import", "users.csv"])
        .output()
        .unwrap();
    assert!(imported.status.success());
    let (_server, listen) = serve(d, &["--user-rate", "1000/1"]);
    let run = |extra: &[&str]| {
        pwmail(d)
            .args(send_args(&listen))
            .args(["--from-csv", "users.csv"])
            .args(extra)
            .output()
            .unwrap()
    };
    let bad = run(&["--locale", "fr_FR"]);
    let err = String::from_utf8_lossy(&bad.stderr).to_string();
    assert!(!bad.status.success());
    assert!(
        err.contains("\"fr_FR\" is not a BCP 47 language tag"),
        "{err}"
    );
    assert!(
        !String::from_utf8_lossy(&bad.stdout).contains("run id"),
        "refused before the run starts"
    );

    let sent = run(&["--locale", "fr"]);
    let out = String::from_utf8_lossy(&sent.stdout).to_string();
    assert!(sent.status.success(), "{out}");
    assert!(out.contains("sent: 2"), "{out}");
    let mail = d.join("pwmail-data/mail");
    let deadline = Instant::now() + Duration::from_secs(20);
    let subjects = loop {
        let subjects: Vec<String> = std::fs::read_dir(&mail)
            .map(|entries| {
                entries
                    .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                    .filter_map(|raw| {
                        let message = mail_parser::MessageParser::default().parse(&raw[..])?;
                        Some(message.subject()?.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        if subjects.len() >= 2 || Instant::now() > deadline {
            break subjects;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        subjects, ["Définissez votre mot de passe pwmail"; 2],
        "the German user's email too is French"
    );
}

/// A CSV naming an address twice emails it once and says so (not "already
/// sent by this run id"); `--run-id new` says how to run it again; without
/// a terminal (no bar) and without --quiet, a Retry-After wait is a line
/// on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_rows_fresh_run_ids_and_waits_are_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d).arg("migrate").output().unwrap().status.success());
    for email in ["one@example.com", "two@example.com"] {
        assert!(
            pwmail(d)
                .args(["user", "add", email])
                .output()
                .unwrap()
                .status
                .success()
        );
    }
    let (_server, listen) = serve(d, &["--user-rate", "1/60"]);
    let store = open_store(d).await;
    std::fs::write(
        d.join("users.csv"),
        "email\none@example.com\ntwo@example.com\nOne@Example.com\n",
    )
    .unwrap();
    let done = pwmail(d)
        .args(send_args(&listen))
        .args(["--from-csv", "users.csv"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&done.stdout);
    assert!(done.status.success(), "{out}");
    assert!(out.contains("sent: 2"), "{out}");
    assert!(
        out.contains("duplicate rows (the address came earlier in the input; emailed once): 1"),
        "{out}"
    );
    assert!(!out.contains("already sent"), "{out}");
    assert_eq!(store.list_outbox(None, 100).await.unwrap().len(), 2);

    // A fresh run id meets the 60 s cooldown: no bar here, so a line.
    let mut args = send_args(&listen);
    args.retain(|a| a != "--quiet");
    let mut waiting = KillOnDrop(
        pwmail(d)
            .args(&args)
            .args(["--email", "one@example.com", "--run-id", "new"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(waiting.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let id = first
        .strip_prefix("run id: ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(
        first.contains(&format!("run it again with --run-id {id}")),
        "{first}"
    );
    let mut stderr = BufReader::new(waiting.0.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("pwmail send: waiting ")
            && line.contains(" s before trying one@example.com again: "),
        "{line}"
    );
    sigint(&waiting.0);
    let _ = waiting.0.wait();
}
