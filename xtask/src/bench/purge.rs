//! Scenario e: the retention purge under load. The same API load (wrk, as
//! scenario a) on SQLite against a database holding `rows` sent emails,
//! used links and audit rows per table: young (nothing due) before and
//! after, and aged 400 days in between, so the purge task deletes them
//! (from start, a window at a time) while the load runs. SQLite is the
//! engine where the purge shares the API's single writer: the worst case.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{A_USERS, import_users, metric, start_pwmail, wrk};

const DAY_MS: i64 = 86_400_000;

/// Adds `rows` rows to each aging table of the SQLite database in `dir`,
/// all at time `at` (emails sent, links used, audit rows written then).
fn fill(dir: &Path, rows: u64, at: i64) -> Result<()> {
    const SCRIPT: &str = r#"
import sqlite3, sys
db, n, at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db)
rows = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?) "
c.execute(rows + """INSERT INTO outbox (message_id, kind, recipient, subject, state, attempts,
        created_at, queued_at, sent_at, settled_at, request_id, user_id)
    SELECT 'filled-' || i || '@bench', 'send_password_email', 'user0@example.com', 's', 'sent', 1,
        ?, ?, ?, ?, 'filled-' || i, 1 FROM s""", (n, at, at, at, at))
c.execute(rows + """INSERT INTO reset_links (user_id, token_hash, purpose, created_at, expires_at,
        used_at, request_id)
    SELECT 1, randomblob(32), 'send_password_email', ?, ?, ?, 'filled-' || i FROM s""",
    (n, at, at + 3600000, at))
c.execute(rows + """INSERT INTO audit_log (at, actor_user_id, target_user_id, operation, request_id)
    SELECT ?, 1, 1, 'send_password_email', 'filled-' || i FROM s""", (n, at))
c.commit()
"#;
    let db = dir.join("pwmail-data/pwmail.db");
    let status = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(&db)
        .arg(rows.to_string())
        .arg(at.to_string())
        .status()
        .context("python3, to fill the database")?;
    if !status.success() {
        bail!("filling {} failed", db.display());
    }
    Ok(())
}

fn purged(listen: &str) -> Result<f64> {
    let mut sum = 0.0;
    for table in ["emails", "links", "audit"] {
        sum += metric(
            listen,
            &format!("pwmail_purged_rows_total{{table=\"{table}\"}}"),
        )?
        .unwrap_or(0.0);
    }
    Ok(sum)
}

pub fn under_load(
    pwmail: &Path,
    scratch: &Path,
    smtp_port: u16,
    seconds: u32,
    rows: u64,
) -> Result<serde_json::Value> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let route = "/api/web/custom/namespaces/system/send_password_email";
    let prepare = |name: &str, at: i64| -> Result<std::path::PathBuf> {
        let dir = scratch.join(name);
        std::fs::create_dir_all(&dir)?;
        import_users(pwmail, &dir, None, "user", A_USERS)?;
        fill(&dir, rows, at)?;
        Ok(dir)
    };
    // Three databases: a server prints its admin token only on the first
    // start of a database, and the bench reads it from there.
    let before = prepare("purge-young-before", now)?;
    let aged = prepare("purge-aged", now - 400 * DAY_MS)?;
    let after = prepare("purge-young-after", now)?;
    let mut runs = Vec::new();
    for (label, dir) in [("young", &before), ("aged", &aged), ("young", &after)] {
        let (serve, listen, token) = start_pwmail(
            pwmail,
            dir,
            None,
            Some(smtp_port),
            &["--mail-concurrency", "32"],
        )?;
        let before = purged(&listen)?;
        let result = wrk(
            &format!("http://{listen}{route}"),
            Some(&token),
            seconds,
            scratch,
        )?;
        let during = purged(&listen)? - before;
        drop(serve);
        runs.push((label, result, during));
    }
    let young_rps = (runs[0].1.requests_per_sec + runs[2].1.requests_per_sec) / 2.0;
    let young_p99 = (runs[0].1.p99_ms + runs[2].1.p99_ms) / 2.0;
    let (_, purging, deleted) = &runs[1];
    Ok(json!({
        "scenario": "e. purge under load, SQLite",
        "rows_per_table": rows,
        "requests_per_sec_young": runs.iter().filter(|r| r.0 == "young")
            .map(|r| r.1.requests_per_sec).collect::<Vec<_>>(),
        "requests_per_sec_purging": purging.requests_per_sec,
        "p99_ms_young": young_p99,
        "p99_ms_purging": purging.p99_ms,
        "ratio": purging.requests_per_sec / young_rps,
        "rows_purged_during_load": deleted,
        "non_2xx": runs.iter().map(|r| r.1.non_2xx).sum::<u64>(),
    }))
}
