//! `cargo xtask conformance`: schemathesis (pinned, from the test venv)
//! against a real `pwmail serve` with an admin token, every check on. Part of
//! `cargo xtask test`.
//!
//! The run imports [`USERS`] users, and `conformance/hooks.py` points three
//! in four valid generated addresses at them, so success responses are
//! checked too; the server's own `/metrics` then says how many 200s each
//! operation answered, and too few fail the run.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Cases schemathesis must generate, at least.
const MIN_CASES: u64 = 1000;
/// Checked 200 responses each POST operation must have, at least.
const MIN_SUCCESSES: u64 = 100;
/// Users the run imports for the hooks to name.
const USERS: usize = 300;
const USER_EMAIL: &str = "user{}@conformance.example";
/// The addresses the document's request examples name.
const EXAMPLE_USERS: &[&str] = &["hello@example.com"];
const POST_OPERATIONS: &[&str] = &[
    "send_password_email",
    "reset_password_by_admin",
    "create_reset_link",
];
/// The origin the run allows `return_to` under (hooks.py maps onto it).
const RETURN_TO_ORIGIN: &str = "https://app.conformance.example";
const ALL_OPERATIONS: &[&str] = &[
    "send_password_email",
    "reset_password_by_admin",
    "create_reset_link",
    "get_password_email_status",
];

/// Builds `pwmail` and returns the executable cargo reports, wherever
/// `CARGO_TARGET_DIR` or the configuration puts it.
fn build_pwmail(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(&cargo)
        .current_dir(root)
        .args([
            "build",
            "--bin",
            "pwmail",
            "--message-format",
            "json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        bail!("building pwmail failed");
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "pwmail")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo reported no pwmail executable")
}

pub fn run(root: &Path) -> Result<()> {
    let pwmail = build_pwmail(root)?;
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("users.csv");
    let mut rows = String::from("email\n");
    for i in 0..USERS {
        rows.push_str(&USER_EMAIL.replace("{}", &i.to_string()));
        rows.push('\n');
    }
    for email in EXAMPLE_USERS {
        rows.push_str(email);
        rows.push('\n');
    }
    std::fs::write(&csv, rows)?;
    // Admin commands need a database that exists.
    let migrated = Command::new(&pwmail)
        .current_dir(dir.path())
        .arg("migrate")
        .env_remove("PWMAIL_DATABASE_URL")
        .output()?;
    if !migrated.status.success() {
        bail!(
            "pwmail migrate: {}",
            String::from_utf8_lossy(&migrated.stderr)
        );
    }
    let imported = Command::new(&pwmail)
        .current_dir(dir.path())
        .args(["user", "import"])
        .arg(&csv)
        .env_remove("PWMAIL_DATABASE_URL")
        .output()?;
    if !imported.status.success() {
        bail!(
            "pwmail user import: {}",
            String::from_utf8_lossy(&imported.stderr)
        );
    }
    // Port 0: the server binds a free port itself and logs it (no port is
    // freed and bound again, which a parallel process could take between).
    let log = dir.path().join("serve.log");
    let mut serve = Command::new(&pwmail)
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--user-rate", "1000000/1"])
        .args(["--return-to-origin", RETURN_TO_ORIGIN])
        .args([
            "--token-rate",
            "1000000/1",
            "--reset-guess-rate",
            "1000000/1",
        ])
        .env_remove("PWMAIL_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting pwmail serve")?;
    let result = (|| -> Result<()> {
        let mut stdout = BufReader::new(serve.stdout.take().context("serve stdout")?);
        let (mut banner, mut token) = (String::new(), String::new());
        stdout.read_line(&mut banner)?;
        stdout.read_line(&mut token)?;
        let token = token.trim();
        if !token.starts_with("pwm_") {
            bail!("pwmail serve printed no bootstrap token: {banner:?}");
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let listen = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let serving = text
                .lines()
                .filter(|l| l.contains("\"pwmail serving\""))
                .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
            if let Some(listen) = serving.as_ref().and_then(|v| v["listen"].as_str()) {
                break listen.to_string();
            }
            if Instant::now() > deadline {
                bail!("pwmail serve did not start: {text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = Command::new(root.join(".venv/bin/st"))
            .current_dir(root)
            .args([
                "run",
                "openapi/pwmail.yaml",
                "--url",
                &format!("http://{listen}"),
            ])
            .args(["--header", &format!("Authorization: APIToken {token}")])
            // Fixed seed and no example database: every run generates the
            // same cases, whatever earlier runs found.
            .args(["--checks", "all", "--max-examples", "400", "--seed", "1"])
            .args(["--generation-database", "none"])
            .env("PYTHONPATH", root.join("xtask/conformance"))
            .env("SCHEMATHESIS_HOOKS", "hooks")
            .env("PWMAIL_CONFORMANCE_RETURN_TO", RETURN_TO_ORIGIN)
            .env("PWMAIL_CONFORMANCE_USERS", USERS.to_string())
            .env("PWMAIL_CONFORMANCE_EMAIL", USER_EMAIL)
            .stderr(Stdio::inherit())
            .output()
            .context("running schemathesis")?;
        let text = String::from_utf8_lossy(&output.stdout);
        print!("{text}");
        if !output.status.success() {
            bail!("schemathesis reported failures");
        }
        let generated = text
            .lines()
            .find(|l| l.contains(" generated,"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .context("schemathesis printed no case count")?;
        if generated < MIN_CASES {
            bail!("schemathesis generated {generated} cases, fewer than {MIN_CASES}");
        }
        let metrics = scrape(&listen)?;
        let successes: Vec<(&str, u64)> = ALL_OPERATIONS
            .iter()
            .map(|op| (*op, answered(&metrics, op, 200)))
            .collect();
        for (op, n) in &successes {
            println!("conformance: {op}: {n} responses 200 checked against the document");
        }
        for (op, n) in &successes {
            if POST_OPERATIONS.contains(op) && *n < MIN_SUCCESSES {
                bail!("{op} answered 200 only {n} times; at least {MIN_SUCCESSES} must be checked");
            }
        }
        println!("conformance: {generated} generated cases, no failures");
        Ok(())
    })();
    let _ = serve.kill();
    let _ = serve.wait();
    result
}

/// `GET /metrics` of the server on `listen`, over a plain socket.
fn scrape(listen: &str) -> Result<String> {
    let mut stream = std::net::TcpStream::connect(listen)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("no HTTP response from /metrics")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("/metrics answered {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_string())
}

/// How many calls of `operation` the server answered with `status`.
fn answered(metrics: &str, operation: &str, status: u16) -> u64 {
    let series =
        format!("pwmail_api_requests_total{{operation=\"{operation}\",status=\"{status}\"}}");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series)?.trim().parse::<f64>().ok())
        .map_or(0, |n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_counter_from_prometheus_text() {
        let text = "# TYPE pwmail_api_requests_total counter\n\
            pwmail_api_requests_total{operation=\"send_password_email\",status=\"200\"} 123\n\
            pwmail_api_requests_total{operation=\"send_password_email\",status=\"404\"} 7\n";
        assert_eq!(answered(text, "send_password_email", 200), 123);
        assert_eq!(answered(text, "send_password_email", 404), 7);
        assert_eq!(answered(text, "reset_password_by_admin", 200), 0);
    }
}
