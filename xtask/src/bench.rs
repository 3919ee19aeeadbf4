//! `cargo xtask bench [--quick]`: measured, never asserted. Every comparison
//! runs in the same invocation on the same machine.
//!
//! Scenario a: the HTTP ceiling (a bare dropshot server on the same route,
//! `examples/ceiling.rs`) against `pwmail serve` on SQLite and on PostgreSQL,
//! same load generator (wrk) and concurrency; requests/s, p50, p99, the ratio
//! to the ceiling. Scenario c: peak RSS (VmHWM) of each `pwmail serve`.
//! pwmail's emails go to Postfix's `smtp-sink`, so sending runs too.
//! Not measured yet: b (100k onboarding against smtp-source) and d (reset
//! POSTs under 1,000 concurrent submissions).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

const CONNECTIONS: u32 = 32;

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
             wrk.body = '{{\"email\":\"bench@example.com\",\"namespace\":\"system\"}}'\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n{auth}"
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

/// `pwmail serve` (release) on `database_url` (None: SQLite in `dir`).
fn start_pwmail(
    pwmail: &Path,
    dir: &Path,
    database_url: Option<&str>,
    smtp_port: u16,
) -> Result<(Killed, String, String)> {
    let db = |cmd: &mut Command| {
        cmd.current_dir(dir).env_remove("PWMAIL_DATABASE_URL");
        if let Some(url) = database_url {
            cmd.args(["--database-url", url]);
        }
    };
    let mut add = Command::new(pwmail);
    add.args(["user", "add", "bench@example.com"]);
    db(&mut add);
    if !add.output()?.status.success() {
        bail!("pwmail user add failed");
    }
    let listen = format!("127.0.0.1:{}", free_port()?);
    let mut serve = Command::new(pwmail);
    serve
        .args(["serve", "--listen", &listen])
        .args([
            "--smtp-url",
            &format!("smtp://127.0.0.1:{smtp_port}?tls=none"),
        ])
        .args([
            "--user-rate",
            "1000000000/1",
            "--token-rate",
            "1000000000/1",
        ])
        .args(["--max-backlog", "1000000000", "--mail-concurrency", "32"])
        .env("PWMAIL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    db(&mut serve);
    let mut child = serve.spawn().context("starting pwmail serve")?;
    let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
    let (mut banner, mut token) = (String::new(), String::new());
    stdout.read_line(&mut banner)?;
    stdout.read_line(&mut token)?;
    wait_listening(&listen)?;
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
        let (serve, listen, token) = start_pwmail(&pwmail, dir, url, smtp_port)?;
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

    println!(
        "\n{:<34} {:>10} {:>9} {:>9} {:>8} {:>9} {:>10}",
        "scenario", "req/s", "p50 ms", "p99 ms", "non-2xx", "ratio", "peak RSS"
    );
    for row in &rows {
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
    let out = root.join("bench/results.json");
    std::fs::create_dir_all(out.parent().context("bench dir")?)?;
    let doc = json!({
        "quick": quick,
        "load": format!("wrk -t1 -c{CONNECTIONS} -d{seconds}s, POST SendPasswordEmail"),
        "scenarios": rows,
        "not_measured": ["b. 100k onboarding vs smtp-source", "d. reset POSTs under 1,000 concurrent submissions"],
    });
    std::fs::write(&out, serde_json::to_vec_pretty(&doc)?)?;
    println!("\nwrote {}", out.display());
    Ok(())
}
