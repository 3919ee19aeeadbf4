//! `cargo xtask conformance`: schemathesis (pinned, from the test venv)
//! against a real `pwmail serve` with an admin token, every check on. Part of
//! `cargo xtask test`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Cases schemathesis must generate, at least.
const MIN_CASES: u64 = 1000;

pub fn run(root: &Path) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(["build", "--bin", "pwmail"])
        .status()?;
    if !status.success() {
        bail!("building pwmail failed");
    }
    let pwmail = root.join("target/debug/pwmail");
    let dir = tempfile::tempdir()?;
    let added = Command::new(&pwmail)
        .current_dir(dir.path())
        .args(["user", "add", "hello@example.com"])
        .env_remove("PWMAIL_DATABASE_URL")
        .output()?;
    if !added.status.success() {
        bail!(
            "pwmail user add: {}",
            String::from_utf8_lossy(&added.stderr)
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut serve = Command::new(&pwmail)
        .current_dir(dir.path())
        .args(["serve", "--listen", &listen, "--user-rate", "1000000/1"])
        .args([
            "--token-rate",
            "1000000/1",
            "--reset-guess-rate",
            "1000000/1",
        ])
        .env_remove("PWMAIL_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
        while std::net::TcpStream::connect(&listen).is_err() {
            if Instant::now() > deadline {
                bail!("pwmail serve did not listen on {listen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
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
        println!("conformance: {generated} generated cases, no failures");
        Ok(())
    })();
    let _ = serve.kill();
    let _ = serve.wait();
    result
}
