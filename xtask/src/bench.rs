//! `cargo xtask bench [--quick]`: measured, never asserted. Every comparison
//! runs in the same invocation on the same machine.
//!
//! Scenario a: the HTTP ceiling (a bare dropshot server on the same route,
//! `examples/ceiling.rs`) against `pwmail serve` on SQLite and on PostgreSQL,
//! same load generator (wrk) and concurrency; requests/s, p50, p99, the ratio
//! to the ceiling (measured before each pwmail row and after the last; each
//! row against the mean of the two beside it), and the peak RSS (VmHWM) of
//! each `pwmail serve`, and its CPU time per accepted call (and
//! PostgreSQL's), which repeats better than requests/s.
//! pwmail's emails go to Postfix's `smtp-sink`, so sending runs too; the
//! emails delivered during the run are reported beside the requests
//! accepted (whether delivery keeps up with the API).
//! Scenario b: users imported, `pwmail send --from-csv`, time until smtp-sink
//! accepted every email, against `smtp-source` into the same smtp-sink.
//! Scenario d: reset POSTs all at once (`bench/reset_storm.py`).
//! Scenario e: the retention purge under the same load (`bench/purge.rs`).
//! Scenario c (instructions per call): `bench/callgrind.rs`. SQLite rows
//! also give the writer's writes per commit and busy share (`/metrics`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

mod callgrind;
mod procfs;
mod purge;

use procfs::peak_rss_mib;

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

fn wait_listening(addr: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on {addr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn ensure_tools() -> Result<()> {
    let missing = ["/usr/bin/wrk", "/usr/sbin/smtp-sink", "/usr/bin/valgrind"]
        .iter()
        .any(|p| !Path::new(p).exists());
    if !missing {
        return Ok(());
    }
    eprintln!("bench: installing wrk, postfix (for smtp-sink) and valgrind with apt-get");
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "wrk", "postfix", "valgrind"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !status.success() {
        bail!("apt-get install wrk postfix valgrind failed; install them and retry");
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

/// The arguments of `pwmail serve` in every scenario: limits out of the
/// way, mail to smtp-sink on `smtp_port` (None: the scenario's `extra`
/// says where).
fn serve_args(listen: &str, smtp_port: Option<u16>, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["serve", "--listen", listen]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend(smtp_port.map(|port| format!("--smtp-url=smtp://127.0.0.1:{port}?tls=none")));
    args.extend(
        [
            "--user-rate",
            "1000000000/1",
            "--token-rate",
            "1000000000/1",
            "--max-backlog",
            "1000000000",
        ]
        .iter()
        .map(|a| a.to_string()),
    );
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// Spawns a prepared `pwmail serve` command; reads its banner and admin
/// token and waits (up to `startup`) until it listens on `listen`.
fn spawn_serve(
    mut serve: Command,
    dir: &Path,
    listen: &str,
    startup: Duration,
) -> Result<(Killed, String)> {
    serve
        .current_dir(dir)
        .env_remove("PWMAIL_DATABASE_URL")
        .env("PWMAIL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("serve.log"))?);
    let mut child = serve.spawn().context("starting pwmail serve")?;
    let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
    let (mut banner, mut token) = (String::new(), String::new());
    stdout.read_line(&mut banner)?;
    stdout.read_line(&mut token)?;
    wait_listening(listen, startup)
        .with_context(|| format!("pwmail serve: see {}", dir.join("serve.log").display()))?;
    Ok((Killed(child), token.trim().to_string()))
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
    let mut serve = pwmail_command(pwmail, dir, database_url, &[]);
    serve.args(serve_args(&listen, smtp_port, extra));
    let (child, token) = spawn_serve(serve, dir, &listen, Duration::from_secs(30))?;
    Ok((child, listen, token))
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
    let sink = Killed(
        Command::new("smtp-sink")
            .args(["-u", "nobody", &format!("127.0.0.1:{smtp_port}"), "500"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting smtp-sink")?,
    );
    wait_listening(&format!("127.0.0.1:{smtp_port}"), Duration::from_secs(30))?;
    let route = "/api/web/custom/namespaces/system/send_password_email";

    let mut rows = Vec::new();
    // The ceiling runs beside each pwmail row (see the module doc): this
    // machine's speed drifts from minute to minute.
    let ceiling_addr = format!("127.0.0.1:{}", free_port()?);
    let _ceiling_server = Killed(
        Command::new(release.join("examples/ceiling"))
            .arg(&ceiling_addr)
            .spawn()
            .context("starting the ceiling server")?,
    );
    wait_listening(&ceiling_addr, Duration::from_secs(30))?;
    let ceiling_url = format!("http://{ceiling_addr}{route}");
    let measure_ceiling = || wrk(&ceiling_url, None, seconds, scratch.path());
    let mut ceilings = vec![measure_ceiling()?];

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
        let before = writer_counters(&listen)?;
        let threads_before = procfs::threads_cpu(serve.0.id());
        let postgres_before = procfs::named_cpu("postgres");
        let wrk_before = procfs::waited_children_cpu();
        let sent_before = sent_count(&listen)?;
        let result = wrk(
            &format!("http://{listen}{route}"),
            Some(&token),
            seconds,
            scratch.path(),
        )?;
        let wrk_cpu = procfs::waited_children_cpu() - wrk_before;
        // Accepting is half the job: what the dispatcher delivered while
        // the API was under load says whether delivery keeps up.
        let sent_per_sec = (sent_count(&listen)? - sent_before) as f64 / f64::from(seconds);
        let writer = writer_window(before, writer_counters(&listen)?);
        // PostgreSQL's own processes (its backends do the SQL): with the
        // server's threads, where the run's CPU went.
        let postgres_cpu = url.map(|_| procfs::named_cpu("postgres") - postgres_before);
        let mut threads = procfs::threads_cpu(serve.0.id());
        for (name, cpu) in &threads_before {
            if let Some(now) = threads.get_mut(name) {
                *now -= cpu;
            }
        }
        let rss = peak_rss_mib(serve.0.id());
        drop(serve);
        // CPU per accepted call repeats from run to run better than req/s
        // on this machine: the number to compare two builds by.
        let calls = result.requests_per_sec * f64::from(seconds);
        let per_call_us = |cpu_secs: f64| cpu_secs * 1e6 / calls;
        let serve_cpu_us = per_call_us(threads.values().sum::<f64>());
        let postgres_cpu_us = postgres_cpu.map(per_call_us);
        ceilings.push(measure_ceiling()?);
        let beside = &ceilings[ceilings.len() - 2..];
        let ceiling = beside.iter().map(|c| c.requests_per_sec).sum::<f64>() / 2.0;
        rows.push(json!({
            "scenario": name,
            "requests_per_sec": result.requests_per_sec,
            "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "non_2xx": result.non_2xx,
            "ratio_to_ceiling": result.requests_per_sec / ceiling,
            "ceiling_requests_per_sec": ceiling,
            "peak_rss_mib": rss,
            "writer_batch": writer["writer_batch"],
            "writer_busy_share": writer["writer_busy_share"],
            "writer_commit_share": writer["writer_commit_share"],
            "writes_per_fsync": writer["writes_per_fsync"],
            "writer_sync_share": writer["writer_sync_share"],
            "serve_cpu_secs_by_thread": threads,
            "postgres_cpu_secs": postgres_cpu,
            "wrk_cpu_secs": wrk_cpu,
            "serve_cpu_us_per_call": serve_cpu_us,
            "postgres_cpu_us_per_call": postgres_cpu_us,
            "sent_per_sec": sent_per_sec,
        }));
    }
    let mean =
        |f: fn(&WrkResult) -> f64| ceilings.iter().map(f).sum::<f64>() / ceilings.len() as f64;
    rows.insert(
        0,
        json!({
            "scenario": "a. HTTP ceiling (bare dropshot)",
            "requests_per_sec": mean(|c| c.requests_per_sec),
            "p50_ms": mean(|c| c.p50_ms), "p99_ms": mean(|c| c.p99_ms),
            "non_2xx": ceilings.iter().map(|c| c.non_2xx).sum::<u64>(),
            "ratio_to_ceiling": 1.0,
            "runs_requests_per_sec": ceilings.iter().map(|c| c.requests_per_sec).collect::<Vec<_>>(),
        }),
    );
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
    let purge = purge::under_load(
        &pwmail,
        scratch.path(),
        smtp_port,
        seconds,
        if quick { 100_000 } else { 300_000 },
    )?;
    let onboarding = onboarding(&pwmail, scratch.path(), smtp_port, sink.0.id(), users, 20)?;
    let storm = reset_storm(&pwmail, root, scratch.path(), resets)?;
    let counted = callgrind::instructions_per_call(
        &pwmail,
        &release.join("examples/ceiling"),
        scratch.path(),
        smtp_port,
        if quick { 300 } else { 1_000 },
    )?;

    println!(
        "\n{:<34} {:>10} {:>9} {:>9} {:>8} {:>9} {:>10} {:>7} {:>6} {:>7} {:>8}",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "non-2xx",
        "ratio",
        "peak RSS",
        "batch",
        "busy",
        "commit",
        "w/fsync"
    );
    for row in &rows {
        if row.get("requests_per_sec").is_none() {
            continue;
        }
        let or_dash = |v: Option<f64>, digits: usize| {
            v.map(|v| format!("{v:.digits$}"))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{:<34} {:>10.0} {:>9.2} {:>9.2} {:>8} {:>9.3} {:>10} {:>7} {:>6} {:>7} {:>8}",
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
            or_dash(row["writer_batch"].as_f64(), 1),
            or_dash(row["writer_busy_share"].as_f64(), 2),
            or_dash(row["writer_commit_share"].as_f64(), 2),
            or_dash(row["writes_per_fsync"].as_f64(), 1),
        );
    }
    let runs: Vec<String> = ceilings
        .iter()
        .map(|c| format!("{:.0}", c.requests_per_sec))
        .collect();
    println!(
        "a. ceiling runs, one before each pwmail row and one after the last (each row's \
         ratio is to the mean of the two beside it): {}",
        runs.join(", ")
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for row in &rows {
        let Some(threads) = row["serve_cpu_secs_by_thread"].as_object() else {
            continue;
        };
        let serve: f64 = threads.values().filter_map(|v| v.as_f64()).sum();
        let postgres = row["postgres_cpu_secs"]
            .as_f64()
            .map(|s| format!(", postgres {s:.1}"))
            .unwrap_or_default();
        let postgres_per_call = row["postgres_cpu_us_per_call"]
            .as_f64()
            .map(|us| format!(", postgres {us:.0}"))
            .unwrap_or_default();
        println!(
            "{}: CPU seconds: pwmail {serve:.1}{postgres}, wrk {:.1} (of {:.0} on {cores} cores); \
             per accepted call: pwmail {:.0} us{postgres_per_call}; emails delivered meanwhile {:.0}/s",
            row["scenario"].as_str().unwrap_or_default(),
            row["wrk_cpu_secs"].as_f64().unwrap_or_default(),
            f64::from(seconds) * cores as f64,
            row["serve_cpu_us_per_call"].as_f64().unwrap_or_default(),
            row["sent_per_sec"].as_f64().unwrap_or_default(),
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
    // Null (no SQLite writer) prints as "-".
    let count = |k: &str| {
        onboarding[k]
            .as_f64()
            .map_or("-".into(), |v| format!("{v:.1}"))
    };
    let share = |k: &str| {
        onboarding[k]
            .as_f64()
            .map_or("-".into(), |v| format!("{:.0} %", v * 100.0))
    };
    println!(
        "{:<34} {:>10} per commit, writer busy {} (in COMMIT {}); {} writes per fsync, fsyncing {}",
        "SQLite writer",
        count("writer_batch"),
        share("writer_busy_share"),
        share("writer_commit_share"),
        count("writes_per_fsync"),
        share("writer_sync_share"),
    );
    println!(
        "{:<34} {}",
        "CPU seconds while it ran", onboarding["cpu_secs"]
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
    println!(
        "\ne. purge under load (SQLite, {} rows per table aged 400 days, deleted from start):\n\
         {:<34} {:>10.0} req/s, p99 {:.2} ms ({} rows purged during the load)\n\
         {:<34} {:>10.0} req/s, p99 {:.2} ms (mean of the runs before and after)\n\
         {:<34} {:>10.3}",
        purge["rows_per_table"],
        "while purging",
        f(&purge, "requests_per_sec_purging"),
        f(&purge, "p99_ms_purging"),
        purge["rows_purged_during_load"],
        "nothing due",
        purge["requests_per_sec_young"]
            .as_array()
            .map(|r| r.iter().filter_map(|v| v.as_f64()).sum::<f64>() / 2.0)
            .unwrap_or_default(),
        f(&purge, "p99_ms_young"),
        "ratio",
        f(&purge, "ratio"),
    );
    println!(
        "\nc. instructions per accepted call (callgrind, {} calls, SQLite, delivery included)\n\
         {:<34} {:>14.0}\n{:<34} {:>14.0}\n{:<34} {:>14.3}",
        counted["calls"],
        "pwmail serve",
        f(&counted, "pwmail_instructions_per_call"),
        "bare dropshot ceiling",
        f(&counted, "ceiling_instructions_per_request"),
        "ratio",
        f(&counted, "ratio_to_ceiling"),
    );
    rows.push(onboarding);
    rows.push(purge);
    rows.push(storm);
    rows.push(counted);
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

/// The value of the first line of `/metrics` that starts with `series`
/// (a name, or a name with its labels).
fn metric(listen: &str, series: &str) -> Result<Option<f64>> {
    let out = Command::new("curl")
        .args(["-s", &format!("http://{listen}/metrics")])
        .output()
        .context("curl /metrics")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find(|l| {
            l.strip_prefix(series)
                .is_some_and(|rest| rest.starts_with([' ', '{']) || series.ends_with('}'))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok()))
}

/// `pwmail_mail_send_attempts_total{outcome="sent"}` from `/metrics`.
fn sent_count(listen: &str) -> Result<u64> {
    Ok(metric(listen, "pwmail_mail_send_attempts_total{outcome=\"sent\"}")?.unwrap_or(0.0) as u64)
}

/// SQLite's writer counters at one moment.
#[derive(Clone, Copy, Default)]
struct WriterCounters {
    batches: f64,
    writes: f64,
    busy_secs: f64,
    commit_secs: f64,
    syncs: f64,
    sync_secs: f64,
    at: Option<Instant>,
}

fn writer_counters(listen: &str) -> Result<WriterCounters> {
    Ok(WriterCounters {
        batches: metric(listen, "pwmail_store_writer_batches_total")?.unwrap_or(0.0),
        writes: metric(listen, "pwmail_store_writer_writes_total")?.unwrap_or(0.0),
        busy_secs: metric(listen, "pwmail_store_writer_busy_seconds")?.unwrap_or(0.0),
        commit_secs: metric(listen, "pwmail_store_writer_commit_seconds")?.unwrap_or(0.0),
        syncs: metric(listen, "pwmail_store_writer_syncs_total")?.unwrap_or(0.0),
        sync_secs: metric(listen, "pwmail_store_writer_sync_seconds")?.unwrap_or(0.0),
        at: Some(Instant::now()),
    })
}

/// Writes per commit and per fsync, the writer's busy share and its sync
/// thread's between two readings (nulls when there is no writer, as on
/// PostgreSQL).
fn writer_window(before: WriterCounters, after: WriterCounters) -> serde_json::Value {
    let batches = after.batches - before.batches;
    let wall = match (before.at, after.at) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    if batches <= 0.0 || wall <= 0.0 {
        return json!({
            "writer_batch": null, "writer_busy_share": null, "writer_commit_share": null,
            "writes_per_fsync": null, "writer_sync_share": null
        });
    }
    json!({
        "writer_batch": (after.writes - before.writes) / batches,
        "writer_busy_share": (after.busy_secs - before.busy_secs) / wall,
        "writer_commit_share": (after.commit_secs - before.commit_secs) / wall,
        "writes_per_fsync": (after.writes - before.writes) / (after.syncs - before.syncs).max(1.0),
        "writer_sync_share": (after.sync_secs - before.sync_secs) / wall,
    })
}

/// Scenario b: `users` users imported, then `pwmail send --from-csv` against
/// `pwmail serve`, whose emails go to smtp-sink over `sessions` SMTP
/// connections; against smtp-source's own rate into the same smtp-sink
/// (same message size, same sessions).
fn onboarding(
    pwmail: &Path,
    scratch: &Path,
    smtp_port: u16,
    sink_pid: u32,
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
    let serve_pid = serve.0.id();
    let writer_before = writer_counters(&listen)?;
    let serve_cpu_before = procfs::threads_cpu(serve_pid);
    let sink_cpu_before = procfs::process_cpu(sink_pid).unwrap_or(0.0);
    let client_cpu_before = procfs::waited_children_cpu();
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
    let client_cpu = procfs::waited_children_cpu() - client_cpu_before;
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
    let writer = writer_window(writer_before, writer_counters(&listen)?);
    // Where the CPU went while the run lasted, by process and by the
    // server's thread names (the writer thread is SQLite's writes; the
    // tokio workers run the API and the dispatcher's SMTP conversations).
    let mut serve_threads = procfs::threads_cpu(serve_pid);
    for (name, cpu) in &serve_cpu_before {
        if let Some(now) = serve_threads.get_mut(name) {
            *now -= cpu;
        }
    }
    let sink_cpu = procfs::process_cpu(sink_pid).unwrap_or(0.0) - sink_cpu_before;
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
        "writer_batch": writer["writer_batch"],
        "writer_busy_share": writer["writer_busy_share"],
        "writer_commit_share": writer["writer_commit_share"],
        "writes_per_fsync": writer["writes_per_fsync"],
        "writer_sync_share": writer["writer_sync_share"],
        "cpu_secs": {
            "pwmail_send_client": client_cpu,
            "pwmail_serve_threads": serve_threads,
            "smtp_sink": sink_cpu,
            "wall_secs_times_2_cores": 2.0 * delivered_secs,
        },
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
