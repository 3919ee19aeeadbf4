//! `cargo xtask bench [--quick]`: measured, never asserted. Every comparison
//! runs in the same invocation on the same machine.
//!
//! Scenario a: the HTTP ceiling (a bare dropshot server on the same route,
//! `examples/ceiling.rs`) against `pwmail serve` on SQLite and on PostgreSQL,
//! same load generator (wrk) and concurrency; requests/s, p50, p99, the ratio
//! to the ceiling. Scenario c: peak RSS (VmHWM) of each `pwmail serve`.
//! pwmail's emails go to Postfix's `smtp-sink`, so sending runs too.
//! Scenario b: users imported, `pwmail send --from-csv`, time until smtp-sink
//! accepted every email, against `smtp-source` into the same smtp-sink.
//! Scenario d: reset POSTs all at once (`bench/reset_storm.py`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

const CONNECTIONS: u32 = 32;
/// Scenario a's calls go round this many users (`user0@example.com`, …), so
/// the load is many admins' onboarding, not one user's row hammered.
const A_USERS: usize = 10_000;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_listening(addr: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on {addr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn ensure_tools() -> Result<()> {
    let missing = ["/usr/bin/wrk", "/usr/sbin/smtp-sink"]
        .iter()
        .any(|p| !Path::new(p).exists());
    if !missing {
        return Ok(());
    }
    eprintln!("bench: installing wrk and postfix (for smtp-sink) with apt-get");
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "wrk", "postfix"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !status.success() {
        bail!("apt-get install wrk postfix failed; install them and retry");
    }
    Ok(())
}

struct WrkResult {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

fn parse_duration_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

fn wrk(url: &str, token: Option<&str>, seconds: u32, scratch: &Path) -> Result<WrkResult> {
    let script = scratch.join("post.lua");
    let auth = token
        .map(|t| format!("wrk.headers[\"Authorization\"] = \"APIToken {t}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n{auth}\
             local n = 0\n\
             request = function()\n\
               n = n + 1\n\
               return wrk.format(nil, nil, nil, \
                 '{{\"email\":\"user' .. (n % {A_USERS}) .. '@example.com\",\"namespace\":\"system\"}}')\n\
             end\n"
        ),
    )?;
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(url)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix).map(|v| v.trim().to_string()))
    };
    let requests_per_sec = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no Requests/sec in wrk output:\n{text}"))?;
    let p50_ms = field("50%")
        .and_then(|v| parse_duration_ms(&v))
        .context("no p50")?;
    let p99_ms = field("99%")
        .and_then(|v| parse_duration_ms(&v))
        .context("no p99")?;
    let non_2xx = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(WrkResult {
        requests_per_sec,
        p50_ms,
        p99_ms,
        non_2xx,
    })
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// `pwmail ARGS…` on `database_url` (None: SQLite in `dir`).
fn pwmail_command(pwmail: &Path, dir: &Path, database_url: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(pwmail);
    cmd.current_dir(dir)
        .env_remove("PWMAIL_DATABASE_URL")
        .args(args);
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    cmd
}

/// Writes `PREFIX0@example.com` … as `dir/users.csv` and imports them with
/// `pwmail user import`; returns the CSV's path and the tool's summary line.
fn import_users(
    pwmail: &Path,
    dir: &Path,
    database_url: Option<&str>,
    prefix: &str,
    count: usize,
) -> Result<(PathBuf, String)> {
    let csv = dir.join("users.csv");
    let mut text = String::with_capacity(count * 32);
    text.push_str("email\n");
    for i in 0..count {
        text.push_str(&format!("{prefix}{i}@example.com\n"));
    }
    std::fs::write(&csv, text)?;
    let csv_arg = csv.display().to_string();
    // Admin commands need a database that exists.
    let migrated = pwmail_command(pwmail, dir, database_url, &["migrate"]).output()?;
    if !migrated.status.success() {
        bail!(
            "pwmail migrate failed: {}",
            String::from_utf8_lossy(&migrated.stderr)
        );
    }
    let imported =
        pwmail_command(pwmail, dir, database_url, &["user", "import", &csv_arg]).output()?;
    if !imported.status.success() {
        bail!(
            "pwmail user import failed: {}",
            String::from_utf8_lossy(&imported.stderr)
        );
    }
    let summary = String::from_utf8_lossy(&imported.stdout).trim().to_string();
    Ok((csv, summary))
}

/// `pwmail serve` (release) on `database_url` (None: SQLite in `dir`).
fn start_pwmail(
    pwmail: &Path,
    dir: &Path,
    database_url: Option<&str>,
    smtp_port: Option<u16>,
    extra: &[&str],
) -> Result<(Killed, String, String)> {
    let listen = format!("127.0.0.1:{}", free_port()?);
    let mut serve = pwmail_command(pwmail, dir, database_url, &["serve", "--listen", &listen]);
    serve
        .args(smtp_port.map(|port| format!("--smtp-url=smtp://127.0.0.1:{port}?tls=none")))
        .args([
            "--user-rate",
            "1000000000/1",
            "--token-rate",
            "1000000000/1",
        ])
        .args(["--max-backlog", "1000000000"])
        .args(extra)
        .env("PWMAIL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("serve.log"))?);
    let mut child = serve.spawn().context("starting pwmail serve")?;
    let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
    let (mut banner, mut token) = (String::new(), String::new());
    stdout.read_line(&mut banner)?;
    stdout.read_line(&mut token)?;
    wait_listening(&listen)
        .with_context(|| format!("pwmail serve: see {}", dir.join("serve.log").display()))?;
    Ok((Killed(child), listen, token.trim().to_string()))
}

pub fn run(root: &Path, quick: bool) -> Result<()> {
    ensure_tools()?;
    let seconds = if quick { 3 } else { 10 };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "pwmail-server",
            "--bin",
            "pwmail",
            "--example",
            "ceiling",
        ])
        .status()?;
    if !status.success() {
        bail!("release build failed");
    }
    let release = root.join("target/release");
    let pwmail: PathBuf = release.join("pwmail");
    let scratch = tempfile::tempdir()?;

    let smtp_port = free_port()?;
    let _sink = Killed(
        Command::new("smtp-sink")
            .args(["-u", "nobody", &format!("127.0.0.1:{smtp_port}"), "500"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting smtp-sink")?,
    );
    wait_listening(&format!("127.0.0.1:{smtp_port}"))?;
    let route = "/api/web/custom/namespaces/system/send_password_email";

    let mut rows = Vec::new();
    let ceiling_addr = format!("127.0.0.1:{}", free_port()?);
    let ceiling = {
        let _server = Killed(
            Command::new(release.join("examples/ceiling"))
                .arg(&ceiling_addr)
                .spawn()
                .context("starting the ceiling server")?,
        );
        wait_listening(&ceiling_addr)?;
        wrk(
            &format!("http://{ceiling_addr}{route}"),
            None,
            seconds,
            scratch.path(),
        )?
    };
    rows.push(json!({
        "scenario": "a. HTTP ceiling (bare dropshot)",
        "requests_per_sec": ceiling.requests_per_sec,
        "p50_ms": ceiling.p50_ms, "p99_ms": ceiling.p99_ms, "non_2xx": ceiling.non_2xx,
        "ratio_to_ceiling": 1.0,
    }));

    let sqlite_dir = scratch.path().join("sqlite");
    std::fs::create_dir_all(&sqlite_dir)?;
    let pg_schema = format!("pwmail_bench_{}", std::process::id());
    let pg_base = "postgres://postgres@127.0.0.1:5432/test";
    let pg_url = format!("{pg_base}?options[search_path]={pg_schema}");
    let pg_ready = Command::new("psql")
        .args([pg_base, "-q", "-c", &format!("CREATE SCHEMA {pg_schema}")])
        .output()
        .is_ok_and(|o| o.status.success());
    let pg_dir = scratch.path().join("pg");
    std::fs::create_dir_all(&pg_dir)?;
    let mut targets: Vec<(&str, &Path, Option<&str>)> =
        vec![("a. pwmail serve, SQLite", sqlite_dir.as_path(), None)];
    if pg_ready {
        targets.push((
            "a. pwmail serve, PostgreSQL",
            pg_dir.as_path(),
            Some(pg_url.as_str()),
        ));
    } else {
        eprintln!("bench: no PostgreSQL at {pg_base}; skipping that row");
    }
    for (name, dir, url) in targets {
        import_users(&pwmail, dir, url, "user", A_USERS)?;
        let (serve, listen, token) = start_pwmail(
            &pwmail,
            dir,
            url,
            Some(smtp_port),
            &["--mail-concurrency", "32"],
        )?;
        let result = wrk(
            &format!("http://{listen}{route}"),
            Some(&token),
            seconds,
            scratch.path(),
        )?;
        let rss = peak_rss_mib(serve.0.id());
        rows.push(json!({
            "scenario": name,
            "requests_per_sec": result.requests_per_sec,
            "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "non_2xx": result.non_2xx,
            "ratio_to_ceiling": result.requests_per_sec / ceiling.requests_per_sec,
            "peak_rss_mib": rss,
        }));
        drop(serve);
    }
    if pg_ready {
        let _ = Command::new("psql")
            .args([
                pg_base,
                "-q",
                "-c",
                &format!("DROP SCHEMA {pg_schema} CASCADE"),
            ])
            .output();
    }

    let (users, resets) = if quick {
        (5_000, 300)
    } else {
        (100_000, 1_000)
    };
    let onboarding = onboarding(&pwmail, scratch.path(), smtp_port, users, 20)?;
    let storm = reset_storm(&pwmail, root, scratch.path(), resets)?;

    println!(
        "\n{:<34} {:>10} {:>9} {:>9} {:>8} {:>9} {:>10}",
        "scenario", "req/s", "p50 ms", "p99 ms", "non-2xx", "ratio", "peak RSS"
    );
    for row in &rows {
        if row.get("requests_per_sec").is_none() {
            continue;
        }
        println!(
            "{:<34} {:>10.0} {:>9.2} {:>9.2} {:>8} {:>9.3} {:>10}",
            row["scenario"].as_str().unwrap_or_default(),
            row["requests_per_sec"].as_f64().unwrap_or_default(),
            row["p50_ms"].as_f64().unwrap_or_default(),
            row["p99_ms"].as_f64().unwrap_or_default(),
            row["non_2xx"].as_u64().unwrap_or_default(),
            row["ratio_to_ceiling"].as_f64().unwrap_or_default(),
            row["peak_rss_mib"]
                .as_f64()
                .map(|m| format!("{m:.1} MiB"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or_default();
    println!(
        "\nb. bulk onboarding: {} users, {} SMTP sessions, {}-byte messages\n\
         {:<34} {:>10.1} s (API accepted all after {:.1} s)\n\
         {:<34} {:>10.1} s\n\
         {:<34} {:>10.0} emails/s vs {:.0}/s: ratio {:.3}; peak RSS {:.1} MiB",
        users,
        onboarding["smtp_sessions"],
        onboarding["message_bytes"],
        "pwmail send -> all in smtp-sink",
        f(&onboarding, "all_delivered_secs"),
        f(&onboarding, "api_accepted_all_secs"),
        "smtp-source -> smtp-sink (ceiling)",
        f(&onboarding, "smtp_source_secs"),
        "rate",
        f(&onboarding, "emails_per_sec"),
        f(&onboarding, "smtp_source_per_sec"),
        f(&onboarding, "ratio_to_ceiling"),
        f(&onboarding, "peak_rss_mib"),
    );
    println!(
        "\nd. {} reset POSTs at once: {} passwords set, {} told busy (503), \
         all answered in {:.1} s: {:.1} hashes/s, p50 {:.0} ms, p99 {:.0} ms, peak RSS {:.1} MiB",
        resets,
        storm["password_set"],
        storm["busy_503"],
        f(&storm, "all_answered_secs"),
        f(&storm, "hashes_per_sec"),
        f(&storm, "p50_ms"),
        f(&storm, "p99_ms"),
        f(&storm, "peak_rss_mib"),
    );
    rows.push(onboarding);
    rows.push(storm);
    let out = root.join("bench/results.json");
    std::fs::create_dir_all(out.parent().context("bench dir")?)?;
    let doc = json!({
        "quick": quick,
        "load": format!("wrk -t1 -c{CONNECTIONS} -d{seconds}s, POST SendPasswordEmail"),
        "scenarios": rows,
    });
    std::fs::write(&out, serde_json::to_vec_pretty(&doc)?)?;
    println!("\nwrote {}", out.display());
    Ok(())
}

/// `pwmail_mail_send_attempts_total{outcome="sent"}` from `/metrics`.
fn sent_count(listen: &str) -> Result<u64> {
    let out = Command::new("curl")
        .args(["-s", &format!("http://{listen}/metrics")])
        .output()
        .context("curl /metrics")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find(|l| l.starts_with("pwmail_mail_send_attempts_total{outcome=\"sent\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0) as u64)
}

/// Scenario b: `users` users imported, then `pwmail send --from-csv` against
/// `pwmail serve`, whose emails go to smtp-sink over `sessions` SMTP
/// connections; against smtp-source's own rate into the same smtp-sink
/// (same message size, same sessions).
fn onboarding(
    pwmail: &Path,
    scratch: &Path,
    smtp_port: u16,
    users: usize,
    sessions: u32,
) -> Result<serde_json::Value> {
    let dir = scratch.join("onboarding");
    std::fs::create_dir_all(&dir)?;
    let (csv, summary) = import_users(pwmail, &dir, None, "user", users)?;
    eprintln!("bench b: {summary}");

    // The message pwmail sends, for smtp-source's message size.
    let preview = Command::new(pwmail)
        .args(["mail", "preview", "--kind", "send-password-email"])
        .args(["--to", "user0@example.com"])
        .output()?;
    let message_bytes = preview.stdout.len().max(1);

    let ceiling_started = Instant::now();
    let source = Command::new("smtp-source")
        .args(["-s", &sessions.to_string(), "-m", &users.to_string()])
        .args(["-l", &message_bytes.to_string()])
        .args(["-f", "bench@example.com", "-t", "user@example.com"])
        .arg(format!("127.0.0.1:{smtp_port}"))
        .output()
        .context("running smtp-source")?;
    if !source.status.success() {
        bail!(
            "smtp-source failed: {}",
            String::from_utf8_lossy(&source.stderr)
        );
    }
    let ceiling_secs = ceiling_started.elapsed().as_secs_f64();

    let sessions_arg = sessions.to_string();
    let (serve, listen, token) = start_pwmail(
        pwmail,
        &dir,
        None,
        Some(smtp_port),
        &[
            "--smtp-pool-size",
            &sessions_arg,
            "--mail-concurrency",
            &sessions_arg,
        ],
    )?;
    let started = Instant::now();
    let send = Command::new(pwmail)
        .args(["send", "--server", &format!("http://{listen}")])
        .arg("--from-csv")
        .arg(&csv)
        .args(["--concurrency", "64", "--quiet"])
        .env("PWMAIL_TOKEN", &token)
        .output()
        .context("running pwmail send")?;
    let accepted_secs = started.elapsed().as_secs_f64();
    if !send.status.success() {
        bail!(
            "pwmail send failed: {}{}",
            String::from_utf8_lossy(&send.stdout),
            String::from_utf8_lossy(&send.stderr)
        );
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut sent = sent_count(&listen)?;
    while sent < users as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        sent = sent_count(&listen)?;
    }
    let delivered_secs = started.elapsed().as_secs_f64();
    let rss = peak_rss_mib(serve.0.id());
    drop(serve);
    let rate = sent as f64 / delivered_secs;
    let ceiling_rate = users as f64 / ceiling_secs;
    Ok(json!({
        "scenario": "b. bulk onboarding",
        "users": users,
        "smtp_sessions": sessions,
        "message_bytes": message_bytes,
        "api_accepted_all_secs": accepted_secs,
        "delivered": sent,
        "all_delivered_secs": delivered_secs,
        "emails_per_sec": rate,
        "smtp_source_secs": ceiling_secs,
        "smtp_source_per_sec": ceiling_rate,
        "ratio_to_ceiling": rate / ceiling_rate,
        "peak_rss_mib": rss,
    }))
}

/// Scenario d: `users` reset links, then every one submitted at once (one
/// connection each); argon2id runs `--hash-concurrency` at a time behind a
/// bounded queue.
fn reset_storm(
    pwmail: &Path,
    root: &Path,
    scratch: &Path,
    users: usize,
) -> Result<serde_json::Value> {
    let dir = scratch.join("resets");
    let mail_dir = dir.join("mail");
    std::fs::create_dir_all(&mail_dir)?;
    let (csv, _) = import_users(pwmail, &dir, None, "reset", users)?;
    let mail_dir_arg = mail_dir.display().to_string();
    let (serve, listen, token) = start_pwmail(
        pwmail,
        &dir,
        None,
        None,
        &[
            "--mail-dir",
            &mail_dir_arg,
            "--public-url",
            "http://127.0.0.1",
        ],
    )?;
    let send = Command::new(pwmail)
        .args(["send", "--server", &format!("http://{listen}")])
        .arg("--from-csv")
        .arg(&csv)
        .args(["--concurrency", "32", "--quiet"])
        .env("PWMAIL_TOKEN", &token)
        .output()?;
    if !send.status.success() {
        bail!("pwmail send failed");
    }
    // The storm script waits for the links to appear in the mail directory.
    let python = root.join(".venv/bin/python");
    let python = if python.exists() {
        python
    } else {
        PathBuf::from("python3")
    };
    let out = Command::new(python)
        .arg(root.join("bench/reset_storm.py"))
        .args([&listen, &mail_dir_arg, &users.to_string()])
        .output()
        .context("running bench/reset_storm.py")?;
    if !out.status.success() {
        bail!(
            "reset_storm.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut result: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reset_storm.py output")?;
    result["scenario"] = json!("d. reset POSTs, all at once");
    result["peak_rss_mib"] = json!(peak_rss_mib(serve.0.id()));
    drop(serve);
    Ok(result)
}
