//! Developer tasks for the pwmail workspace. `cargo xtask codegen [--check]`.

mod bench;
mod codegen;
mod conformance;
mod mutants;
mod vendor;

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask codegen [--check]\n       cargo xtask test [-- CARGO TEST ARGS]\n       cargo xtask conformance\n       cargo xtask bench [--quick]\n       cargo xtask mutants [--in-diff [BASE]] [--shard K/N]\n       cargo xtask vendor-check [--bless]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["codegen"] => report(codegen::run(&workspace_root(), codegen::Mode::Write)),
        ["codegen", "--check"] => report(codegen::run(&workspace_root(), codegen::Mode::Check)),
        ["test", rest @ ..] => test(rest),
        ["bench"] => report(bench::run(&workspace_root(), false)),
        ["bench", "--quick"] => report(bench::run(&workspace_root(), true)),
        ["mutants", rest @ ..] => report(mutants::run(&workspace_root(), rest)),
        ["vendor-check"] => report(vendor::run(&workspace_root(), false)),
        ["vendor-check", "--bless"] => report(vendor::run(&workspace_root(), true)),
        ["conformance"] => report(
            ensure_test_venv(&workspace_root()).and_then(|()| conformance::run(&workspace_root())),
        ),
        _ => usage(),
    }
}

/// The whole test suite: every crate's unit, contract and round-trip tests.
/// First it makes sure the Python venv with the tests' SMTP server exists.
fn test(extra: &[&str]) -> ExitCode {
    if let Err(e) = ensure_test_venv(&workspace_root()) {
        eprintln!("error: preparing the test venv: {e:#}");
        return ExitCode::FAILURE;
    }
    // Without PostgreSQL a few dozen tests would each fail with a panic;
    // one line up front says why, as `.ci/run` does.
    if let Err(e) = check_postgres() {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    // Chromium is for one test: without it, everything else still runs and
    // that test fails saying what to install.
    if let Err(e) = ensure_chromium() {
        eprintln!("warning: Chromium for the browser test: {e:#}; that test will fail");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let extra = extra.strip_prefix(&["--"]).unwrap_or(extra);
    let run = run_counting(
        std::process::Command::new(cargo)
            .current_dir(workspace_root())
            .args(["test", "--workspace", "--no-fail-fast"])
            .args(extra),
    );
    let (tests_passed, counts) = match run {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("error: running cargo test: {e}");
            (false, (0, 0))
        }
    };
    // The conformance run against the OpenAPI document comes last, so the
    // test runner's summary above stays the one that counts the tests.
    let conformance = conformance::run(&workspace_root());
    if let Err(e) = &conformance {
        eprintln!("error: conformance: {e:#}");
    }
    // One closing line for the whole suite (cargo's last summary line is
    // often an empty doc-test run).
    println!(
        "\ntests: {} passed, {} failed",
        counts.0,
        counts.1 + u64::from(conformance.is_err())
    );
    if tests_passed && conformance.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs cargo test, echoing its output, and adds up its "test result" lines.
fn run_counting(cmd: &mut std::process::Command) -> anyhow::Result<(bool, (u64, u64))> {
    use std::io::BufRead;
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let number = |word: &str| -> u64 {
                rest.split(';')
                    .find_map(|part| part.trim().strip_suffix(word))
                    .and_then(|n| n.trim().rsplit(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            };
            passed += number(" passed");
            failed += number(" failed");
        }
    }
    Ok((child.wait()?.success(), (passed, failed)))
}

/// `.venv` with the pinned packages of the tests' SMTP server (aiosmtpd).
/// Rebuilt when the requirements file changes.
fn ensure_test_venv(root: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::{Context, bail};
    let requirements = root.join("crates/pwmail-testkit/smtp/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).context("reading requirements")?;
    let venv = root.join(".venv");
    let stamp = venv.join("pwmail-requirements.txt");
    if std::fs::read_to_string(&stamp).is_ok_and(|have| have == wanted) {
        return Ok(());
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let run = |cmd: &mut std::process::Command| -> anyhow::Result<()> {
        let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
        if !status.success() {
            bail!("{cmd:?} failed with {status}");
        }
        Ok(())
    };
    eprintln!(
        "xtask: creating {} with {}",
        venv.display(),
        requirements.display()
    );
    run(std::process::Command::new(&python)
        .args(["-m", "venv", "--clear"])
        .arg(&venv))?;
    run(std::process::Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements))?;
    std::fs::write(&stamp, wanted)?;
    Ok(())
}

/// Debian's Chromium and chromedriver, for the reset-page browser test:
/// installed with apt-get when missing and we are root, else explained.
/// Whether the tests' PostgreSQL (`PWMAIL_TEST_POSTGRES`, else
/// 127.0.0.1:5432) accepts a connection.
fn check_postgres() -> anyhow::Result<()> {
    let url = std::env::var("PWMAIL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let authority = url
        .split_once("://")
        .map_or(url.as_str(), |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&host_port)
        .ok()
        .into_iter()
        .flatten()
        .any(|addr| {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5)).is_ok()
        });
    if reachable {
        Ok(())
    } else {
        anyhow::bail!(
            "no PostgreSQL answers at {host_port} ({url}); the tests need it \
             (start it, or set PWMAIL_TEST_POSTGRES to another)"
        )
    }
}

fn ensure_chromium() -> anyhow::Result<()> {
    use anyhow::bail;
    let present = |p: &str| std::path::Path::new(p).exists();
    if present("/usr/bin/chromium") && present("/usr/bin/chromedriver") {
        return Ok(());
    }
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !root {
        bail!(
            "install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        );
    }
    eprintln!("xtask: installing chromium and chromium-driver with apt-get");
    for args in [
        &["update", "-qq"][..],
        &["install", "-y", "-qq", "chromium", "chromium-driver"][..],
    ] {
        let status = std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?;
        if !status.success() {
            bail!("apt-get {} failed with {status}", args.join(" "));
        }
    }
    Ok(())
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    // xtask lives one level below the workspace root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}
