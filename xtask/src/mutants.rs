//! `cargo xtask mutants [--in-diff [BASE]] [--shard K/N]`: cargo-mutants
//! over the code whose bugs users would feel first — the product's rules
//! (`app/`), secrets, the retry policy and the rate-limit arithmetic — each
//! mutant tested by the binaries that cover that code, not the whole suite.
//! Prints caught / missed / unviable and the missed list. Not in CI: a
//! full run is ~300 mutants at 1–2 minutes each on two cores; `--shard`
//! spreads it over sittings, `--in-diff` takes what a change touched;
//! arguments after `--` go to cargo-mutants (`--in-place` reuses this
//! checkout's build instead of building a copy from scratch).

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// The files mutated.
const FILES: &[&str] = &[
    "crates/pwmail-server/src/app/**/*.rs",
    "crates/pwmail-server/src/secrets/**/*.rs",
    "crates/pwmail-server/src/outbox/retry.rs",
    "crates/pwmail-store/src/gcra.rs",
];

/// The tests each mutant runs, whichever package it is in (cargo-mutants
/// would otherwise test only the mutated package): the workspace's unit
/// tests, the store suite on both engines, and the contract binaries that
/// call these rules.
const TEST_ARGS: &[&str] = &[
    "--lib",
    "--test",
    "suite",
    "--test",
    "contract",
    "--test",
    "idempotency",
    "--test",
    "reset_page",
    // The outages: a database that does not answer is 503 on both sides
    // (a few seconds).
    "--test",
    "postgres",
    // The operator's commands, through the binary (about 10 s).
    "--test",
    "cli",
];

pub fn run(root: &Path, args: &[&str]) -> Result<()> {
    let installed = Command::new("cargo")
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        bail!("cargo-mutants is not installed: cargo install cargo-mutants --locked");
    }
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .args(["mutants", "--no-shuffle", "--timeout", "600"])
        .arg("--test-workspace=true");
    for file in FILES {
        cmd.args(["--file", file]);
    }
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        match *first {
            "--shard" => {
                let (shard, tail) = tail.split_first().context("--shard K/N")?;
                cmd.args(["--shard", shard]);
                rest = tail;
            }
            "--in-diff" => {
                let (base, tail) = match tail.split_first() {
                    Some((base, tail)) if !base.starts_with("--") => (*base, tail),
                    _ => ("origin/main", tail),
                };
                let diff = root.join("target/mutants-in.diff");
                let out = Command::new("git")
                    .current_dir(root)
                    .args(["diff", base])
                    .output()
                    .context("git diff")?;
                if !out.status.success() {
                    bail!("git diff {base}: {}", String::from_utf8_lossy(&out.stderr));
                }
                std::fs::create_dir_all(root.join("target"))?;
                std::fs::write(&diff, &out.stdout)?;
                cmd.arg("--in-diff").arg(&diff);
                rest = tail;
            }
            // The rest goes to cargo-mutants as it is (`--in-place`,
            // `--baseline=skip`, …).
            "--" => {
                cmd.args(tail);
                rest = &[];
            }
            other => bail!(
                "unknown argument {other:?}: --in-diff [BASE], --shard K/N, -- CARGO-MUTANTS ARGS"
            ),
        }
    }
    cmd.arg("--").args(TEST_ARGS);
    // cargo-mutants exits 2 when a mutant is missed and 3 when one timed
    // out: the summary below is the result then. 1 (usage) and 4 (the
    // unmutated tree fails its tests) mean nothing was measured.
    let status = cmd.status().context("running cargo mutants")?;
    if matches!(status.code(), Some(1) | Some(4) | None) {
        bail!("cargo mutants failed ({status}); mutants.out/log has the details");
    }
    let out = root.join("mutants.out");
    let list = |name: &str| -> Vec<String> {
        std::fs::read_to_string(out.join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (caught, missed, unviable, timeout) = (
        list("caught.txt"),
        list("missed.txt"),
        list("unviable.txt"),
        list("timeout.txt"),
    );
    println!(
        "\nmutants: {} caught, {} missed, {} unviable, {} timed out (cargo mutants: {status})",
        caught.len(),
        missed.len(),
        unviable.len(),
        timeout.len()
    );
    for m in &missed {
        println!("missed: {m}");
    }
    Ok(())
}
