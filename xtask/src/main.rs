//! Developer tasks for the pwmail workspace. `cargo xtask codegen [--check]`.

mod codegen;

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: cargo xtask codegen [--check]\n       cargo xtask test [-- CARGO TEST ARGS]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["codegen"] => report(codegen::run(&workspace_root(), codegen::Mode::Write)),
        ["codegen", "--check"] => report(codegen::run(&workspace_root(), codegen::Mode::Check)),
        ["test", rest @ ..] => test(rest),
        _ => usage(),
    }
}

/// The whole test suite: every crate's unit, contract and round-trip tests.
fn test(extra: &[&str]) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let extra = extra.strip_prefix(&["--"]).unwrap_or(extra);
    let status = std::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: running cargo test: {e}");
            ExitCode::FAILURE
        }
    }
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
