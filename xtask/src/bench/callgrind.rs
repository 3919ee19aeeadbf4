//! Scenario c: instructions per accepted call, counted by callgrind, which
//! repeats from run to run where times on a shared machine do not.
//!
//! `pwmail serve` (SQLite, mail to smtp-sink) runs under
//! `valgrind --tool=callgrind`; one client sends `calls` SendPasswordEmail
//! calls one at a time on one keep-alive connection; once smtp-sink has
//! every email the server is stopped with SIGINT. The same with no calls
//! gives what starting and stopping cost; the difference over `calls` is
//! one call's instructions, its delivery included. The bare dropshot
//! ceiling is counted the same way.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{Killed, free_port, import_users, sent_count, serve_args, spawn_serve, wait_listening};

const ROUTE: &str = "/api/web/custom/namespaces/system/send_password_email";
/// Users in each run's database; at least the calls of the largest run.
const CALLS_USERS: usize = 1_000;

/// `calls` POSTs on one connection; fails unless every answer is 200.
fn send_calls(listen: &str, token: Option<&str>, calls: usize) -> Result<()> {
    if calls == 0 {
        return Ok(());
    }
    let script = r#"
import http.client, json, sys
host, port = sys.argv[1].rsplit(":", 1)
token, calls, route = sys.argv[2], int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection(host, int(port))
bad = 0
for i in range(calls):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "APIToken " + token
    body = json.dumps({"email": f"user{i}@example.com", "namespace": "system"})
    conn.request("POST", route, body, headers)
    answer = conn.getresponse()
    answer.read()
    bad += answer.status != 200
print(bad)
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            listen,
            token.unwrap_or(""),
            &calls.to_string(),
            ROUTE,
        ])
        .output()
        .context("running the call loop")?;
    let bad = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || bad != "0" {
        bail!(
            "call loop: {bad} calls not answered 200: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Stops `child` with SIGINT (callgrind writes its counts on the way out)
/// and returns the total of `out`.
fn stop_and_count(mut child: Killed, out: &Path) -> Result<u64> {
    Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.0.try_wait()?.is_none() {
        if Instant::now() > deadline {
            bail!("the process under callgrind did not stop within 120 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text =
        std::fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no totals in {}", out.display()))
}

fn valgrind(out: &Path) -> Command {
    let mut cmd = Command::new("valgrind");
    cmd.args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out.display()));
    cmd
}

/// Total instructions of one `pwmail serve` run that answers `calls` calls,
/// on a database of its own (the first start prints the admin token).
fn pwmail_run(pwmail: &Path, scratch: &Path, smtp_port: u16, calls: usize) -> Result<u64> {
    let dir = scratch.join(format!("callgrind-{calls}"));
    std::fs::create_dir_all(&dir)?;
    // As many users as the largest run calls, so both runs start alike.
    import_users(pwmail, &dir, None, "user", CALLS_USERS)?;
    let dir = dir.as_path();
    let out = dir.join(format!("callgrind.{calls}.out"));
    let listen = format!("127.0.0.1:{}", free_port()?);
    let mut serve = valgrind(&out);
    serve
        .arg(pwmail)
        .args(serve_args(&listen, Some(smtp_port), &[]));
    let (child, token) = spawn_serve(serve, dir, &listen, Duration::from_secs(120))?;
    send_calls(&listen, Some(&token), calls)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while sent_count(&listen)? < calls as u64 {
        if Instant::now() > deadline {
            bail!("callgrind run: not every email reached smtp-sink within 600 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop_and_count(child, &out)
}

fn ceiling_run(ceiling: &Path, dir: &Path, calls: usize) -> Result<u64> {
    let out = dir.join(format!("callgrind.ceiling.{calls}.out"));
    let listen = format!("127.0.0.1:{}", free_port()?);
    let mut server = valgrind(&out);
    server
        .arg(ceiling)
        .arg(&listen)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = Killed(
        server
            .spawn()
            .context("starting the ceiling under callgrind")?,
    );
    wait_listening(&listen, Duration::from_secs(120))?;
    send_calls(&listen, None, calls)?;
    stop_and_count(child, &out)
}

pub fn instructions_per_call(
    pwmail: &Path,
    ceiling: &Path,
    scratch: &Path,
    smtp_port: u16,
    calls: usize,
) -> Result<serde_json::Value> {
    if calls > CALLS_USERS {
        bail!("{calls} calls need more than {CALLS_USERS} users");
    }
    let idle = pwmail_run(pwmail, scratch, smtp_port, 0)?;
    let busy = pwmail_run(pwmail, scratch, smtp_port, calls)?;
    let dir = scratch.join("callgrind-ceiling");
    std::fs::create_dir_all(&dir)?;
    let ceiling_idle = ceiling_run(ceiling, &dir, 0)?;
    let ceiling_busy = ceiling_run(ceiling, &dir, calls)?;
    let per_call = busy.saturating_sub(idle) as f64 / calls as f64;
    let ceiling_per_call = ceiling_busy.saturating_sub(ceiling_idle) as f64 / calls as f64;
    Ok(json!({
        "scenario": "c. instructions per accepted call (callgrind)",
        "calls": calls,
        "pwmail_instructions_per_call": per_call,
        "ceiling_instructions_per_request": ceiling_per_call,
        "ratio_to_ceiling": ceiling_per_call / per_call,
    }))
}
