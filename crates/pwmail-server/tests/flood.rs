//! A flood of idle and half-sent connections against `pwmail serve` held to
//! 1024 open files (soft and hard, so raising soft to hard cannot undo it):
//! every hostile socket is closed within the client timeout plus a margin,
//! the accept loop does not spin on `EMFILE`, the operator listener's
//! `/livez` answers throughout, and the API serves once the flood is gone.
//! Its own binary: it opens 1,300 sockets.

mod common;

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::KillOnDrop;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const IDLE: usize = 1100;
const HALF_BODY: usize = 200;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
/// Slack for a busy two-core machine: connects that wait in the listen
/// backlog, 1,300 closes.
const MARGIN: Duration = Duration::from_secs(15);

/// This process may open what the flood needs.
fn raise_own_nofile_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain rlimit calls with valid pointers.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(
        limit.rlim_cur >= 4096,
        "the test needs ~1,400 descriptors; the hard limit is {}",
        limit.rlim_cur
    );
}

/// A field of the first JSON log line whose message is `message`.
fn logged(log: &str, message: &str, field: &str) -> Option<String> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == message)
        .and_then(|v| v[field].as_str().map(str::to_owned))
}

/// Reads until the server closes `stream`; `true` if it did within `limit`.
async fn closed_within(mut stream: TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_and_half_sent_connections_is_shed_and_probes_keep_answering() {
    raise_own_nofile_limit();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.log");
    let out_path = dir.path().join("serve.out");
    let mut command = Command::new(env!("CARGO_BIN_EXE_pwmail"));
    command
        .current_dir(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ops-listen",
            "127.0.0.1:0",
            "--client-timeout-secs",
            &CLIENT_TIMEOUT.as_secs().to_string(),
            "--log-format",
            "json",
        ])
        .env_remove("PWMAIL_DATABASE_URL")
        .env_remove("PWMAIL_CONFIG")
        .env("PWMAIL_LOG", "info,dropshot=warn")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap());
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let _serve = KillOnDrop(command.spawn().expect("start pwmail serve"));

    // Both addresses come from the log: the ports are the kernel's choice.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (listen, ops) = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let (Some(listen), Some(ops)) = (
            logged(&log, "pwmail serving", "listen"),
            logged(
                &log,
                "operator endpoints (/livez, /readyz, /metrics)",
                "ops_listen",
            ),
        ) {
            break (listen, ops);
        }
        assert!(Instant::now() < deadline, "serve did not start: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(
        logged(&log, "open-file limit", "soft").as_deref(),
        None,
        "numbers, not strings"
    );
    let token = std::fs::read_to_string(&out_path)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("pwm_"))
        .expect("the bootstrap token on stdout")
        .to_string();

    // Probes on the operator listener, every 200 ms, all through the flood.
    let probing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probes = tokio::spawn({
        let probing = std::sync::Arc::clone(&probing);
        let url = format!("http://{ops}/livez");
        async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let mut answered = 0;
            let mut failed = Vec::new();
            while probing.load(std::sync::atomic::Ordering::Relaxed) {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => answered += 1,
                    Ok(r) => failed.push(format!("status {}", r.status())),
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (answered, failed)
        }
    });

    let opened_at = Instant::now();
    let head = "POST /reset/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\np";
    // The half-sent ones first, so that they are among those accepted.
    let connects = (0..HALF_BODY + IDLE).map(|i| {
        let listen = listen.clone();
        async move {
            let mut stream = TcpStream::connect(&listen).await.ok()?;
            if i < HALF_BODY {
                // A refused connection may already be closed.
                let _ = stream.write_all(head.as_bytes()).await;
            }
            Some(stream)
        }
    });
    let streams: Vec<TcpStream> = futures::future::join_all(connects)
        .await
        .into_iter()
        .flatten()
        .collect();
    eprintln!(
        "{} of {} hostile connections opened in {:?}",
        streams.len(),
        IDLE + HALF_BODY,
        opened_at.elapsed()
    );
    let limit = CLIENT_TIMEOUT + MARGIN;
    let closed = futures::future::join_all(
        streams
            .into_iter()
            .map(|s| closed_within(s, limit.saturating_sub(opened_at.elapsed()))),
    )
    .await;
    let still_open = closed.iter().filter(|c| !**c).count();
    eprintln!(
        "all hostile connections closed {:?} after they were opened",
        opened_at.elapsed()
    );
    assert_eq!(still_open, 0, "connections the server kept past {limit:?}");

    // The flood is gone: the API serves.
    let response = reqwest::Client::new()
        .post(format!(
            "http://{listen}/api/web/custom/password/admin_reset"
        ))
        .header("Authorization", format!("APIToken {token}"))
        .json(&serde_json::json!({ "email": "admin@pwmail.localhost" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    probing.store(false, std::sync::atomic::Ordering::Relaxed);
    let (answered, failed) = probes.await.unwrap();
    assert!(failed.is_empty(), "probes that failed: {failed:?}");
    assert!(answered >= 5, "only {answered} probes ran");

    let metrics = reqwest::get(format!("http://{ops}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let accept_errors = log.matches("accept error").count();
    assert!(
        accept_errors <= 1,
        "the accept loop logged {accept_errors} errors:\n{log}"
    );
    assert!(
        metrics.contains("pwmail_connections_timed_out_total"),
        "{metrics}"
    );
    eprintln!(
        "{}",
        metrics
            .lines()
            .filter(|l| l.starts_with("pwmail_connections") || l.starts_with("pwmail_accept"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
