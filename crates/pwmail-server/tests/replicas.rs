//! Three `pwmail serve` replicas and one `pwmail dispatch` on one PostgreSQL,
//! with a real SMTP server: every email exactly once, and the per-user
//! cooldown holding across replicas.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Serve, now, reset, seed_admin, serve};
use pwmail_server::app::users as admin;
use pwmail_testkit::pg::PgSchema;
use pwmail_testkit::{SmtpOptions, SmtpServer, header};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_and_a_dispatcher_send_each_email_once() {
    const N: usize = 5000;
    let schema = PgSchema::create().await;
    let url = schema.url(None);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("replicas.log");

    // `pwmail migrate`, then the users straight into the database.
    let status = Command::new(env!("CARGO_BIN_EXE_pwmail"))
        .args(["migrate", "--database-url", &url])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let store = pwmail_store::open(&url).await.unwrap();
    let token = seed_admin(&*store).await;
    for i in 0..=N {
        admin::add_user(&*store, &format!("r{i}@example.com"), false, None, now())
            .await
            .unwrap();
    }

    let smtp = SmtpServer::start(SmtpOptions::default());
    let shared = [
        "--database-url",
        &url,
        "--smtp-url",
        &smtp.url(),
        "--token-rate",
        "1000000/60",
        "--mail-poll-ms",
        "100",
        "--max-backlog",
        "100000",
    ];
    let replicas: Vec<(String, Serve)> = (0..3)
        .map(|_| {
            let serve = serve(d, &shared, &[], &log);
            (serve.listen.clone(), serve)
        })
        .collect();
    let dispatch_log = std::fs::File::create(d.join("dispatch.log")).unwrap();
    let mut dispatcher = Command::new(env!("CARGO_BIN_EXE_pwmail"))
        .args([
            "dispatch",
            "--database-url",
            &url,
            "--smtp-url",
            &smtp.url(),
            "--mail-poll-ms",
            "100",
        ])
        .stdout(Stdio::null())
        .stderr(dispatch_log)
        .spawn()
        .unwrap();

    // 5,000 calls for 5,000 users, round-robin over the replicas.
    let client = reqwest::Client::new();
    let started = Instant::now();
    let indices: Vec<usize> = (0..N).collect();
    for chunk in indices.chunks(24) {
        let calls = chunk.iter().map(|i| {
            let listen = &replicas[i % 3].0;
            let (client, token) = (&client, token.as_str());
            async move { reset(client, listen, token, &format!("r{i}@example.com")).await }
        });
        for status in futures::future::join_all(calls).await {
            assert_eq!(status, 200);
        }
    }
    let api_took = started.elapsed();
    let messages = tokio::task::block_in_place(|| smtp.wait_for(N, Duration::from_secs(300)));
    let all_took = started.elapsed();
    // Every row settled: nothing more can reach the relay.
    pwmail_store::testing::wait_until_quiet(&*store, Duration::from_secs(60)).await;
    let messages = if messages.len() >= N {
        smtp.messages()
    } else {
        messages
    };
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for m in &messages {
        *per_recipient.entry(header(m, "To").unwrap()).or_default() += 1;
    }
    assert_eq!(per_recipient.len(), N, "every user got an email");
    assert!(per_recipient.values().all(|n| *n == 1), "exactly one each");
    eprintln!(
        "3 replicas + 1 dispatcher on PostgreSQL: {N} calls accepted in {:.1} s ({:.0}/s); \
         all {N} emails delivered after {:.1} s ({:.0}/s end to end)",
        api_took.as_secs_f64(),
        N as f64 / api_took.as_secs_f64(),
        all_took.as_secs_f64(),
        N as f64 / all_took.as_secs_f64()
    );

    // Three simultaneous calls for one user, one per replica, inside the cooldown.
    let target = format!("r{N}@example.com");
    let calls = replicas.iter().map(|(listen, _)| {
        let (client, token, target) = (&client, token.as_str(), &target);
        async move { reset(client, listen, token, target).await }
    });
    let mut statuses = futures::future::join_all(calls).await;
    statuses.sort();
    assert_eq!(
        statuses,
        vec![200, 429, 429],
        "the per-user cooldown holds across replicas"
    );

    let _ = dispatcher.kill();
    let _ = dispatcher.wait();
    drop(replicas);
    schema.drop_schema().await;
}
