//! The `pwmail` binary as a new operator meets it: a wrong directory, a
//! second server, a closed pipe, odd bytes, `--help`, broken templates, the
//! packaged unit and settings file. Each surprise an operator reported is a
//! test here.

use std::io::{BufRead, BufReader, Read as _};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{KillOnDrop, run_to_exit};

mod common;

fn pwmail() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pwmail"));
    command
        .env_remove("PWMAIL_DATABASE_URL")
        .env_remove("PWMAIL_DATA_DIR")
        .env_remove("PWMAIL_CONFIG");
    command
}

fn run(dir: &Path, args: &[&str]) -> Output {
    pwmail().current_dir(dir).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `pwmail ARGS` (a `serve` on port 0, or a config file saying so) in
/// `dir`, logging to `dir/serve.log`; returns once it serves, with the
/// address it logged.
fn serve_in(dir: &std::path::Path, args: &[&str]) -> (KillOnDrop, String) {
    let log = dir.join("serve.log");
    let (stderr, from) = common::append_to(&log);
    let mut child = KillOnDrop(
        pwmail()
            .current_dir(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    let listen = common::serving_address(&mut child.0, &log, from);
    (child, listen)
}

#[test]
fn admin_and_read_only_commands_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [
        vec!["user", "add", "a@example.com"],
        vec!["user", "list"],
        vec!["token", "list", "a@example.com"],
        vec!["outbox", "list"],
    ] {
        let out = run(d, &args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("no pwmail database at pwmail-data/pwmail.db"),
            "{args:?}: {err}"
        );
    }
    let out = run(d, &["outbox", "list", "--data-dir", "/nonexistent/pwmail"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no pwmail database at /nonexistent/pwmail/pwmail.db"),
        "{}",
        text(&out.stderr)
    );
    assert!(!Path::new("/nonexistent/pwmail").exists());
    assert!(
        std::fs::read_dir(d).unwrap().next().is_none(),
        "nothing was created in the working directory"
    );

    // `migrate` creates it; then the same command works.
    assert!(run(d, &["migrate"]).status.success());
    let out = run(d, &["user", "add", "a@example.com"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_second_server_on_one_sqlite_database_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (first, _) = serve_in(d, &["serve", "--listen", "127.0.0.1:0"]);
    let (code, err) = run_to_exit(d, &["serve", "--listen", "127.0.0.1:0"]);
    assert_ne!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!("another pwmail server (PID {})", first.0.id())),
        "{err}"
    );
    assert!(err.contains("PostgreSQL"), "points at replicas: {err}");
    // Admin commands still work beside the running server.
    let listed = run(d, &["user", "list"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let (code, err) = run_to_exit(d, &["dispatch"]);
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("another pwmail server"), "{err}");

    // Once the first is gone, a new one starts.
    drop(first);
    let (third, _) = serve_in(d, &["serve", "--listen", "127.0.0.1:0"]);
    drop(third);
}

#[test]
fn a_closed_pipe_ends_listing_quietly_and_odd_bytes_are_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(run(d, &["migrate"]).status.success());
    // More rows than a pipe buffer holds, so the writer meets the closed end.
    let mut csv = String::from("email\n");
    for i in 0..3000 {
        csv.push_str(&format!("user{i}@example.com\n"));
    }
    std::fs::write(d.join("users.csv"), csv).unwrap();
    assert!(run(d, &["user", "import", "users.csv"]).status.success());

    let mut child = pwmail()
        .current_dir(d)
        .args(["user", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader (like `head -1`) is gone now.
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(first.contains("email"), "{first}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(0), "{err}");

    use std::os::unix::ffi::OsStrExt as _;
    let out = pwmail()
        .current_dir(d)
        .args(["user", "add", "x@example.com", "--name"])
        .arg(std::ffi::OsStr::from_bytes(b"\xff\xfe"))
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(2), "a usage error: {err}");
    assert!(err.contains("invalid UTF-8"), "{err}");
}

#[test]
fn help_describes_every_argument_and_mistakes_get_pointed_answers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let help = |args: &[&str]| text(&run(d, args).stdout);
    let user_add = help(&["user", "add", "--help"]);
    assert!(user_add.contains("The user's email address"), "{user_add}");
    let import = help(&["user", "import", "--help"]);
    assert!(import.contains("`email` column"), "{import}");
    let show = help(&["outbox", "show", "--help"]);
    assert!(show.contains("from `pwmail outbox list`"), "{show}");
    let list = help(&["outbox", "list", "--help"]);
    assert!(
        list.contains("Only messages in this state") && list.contains("newest first"),
        "{list}"
    );
    let preview = help(&["mail", "preview", "--help"]);
    assert!(
        preview.contains("Which message to render") && preview.contains("Recipient address"),
        "{preview}"
    );
    let send = help(&["send", "--help"]);
    assert!(send.contains("--token <TOKEN>"), "{send}");

    let out = run(d, &["serve", "--port", "9090"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--listen 127.0.0.1:9090"), "{err}");

    let out = run(d, &["send", "--server", "http://127.0.0.1:1"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--email") && err.contains("--from-csv"),
        "{err}"
    );

    let out = run(
        d,
        &[
            "send",
            "--server",
            "http://127.0.0.1:1",
            "--email",
            "a@example.com",
            "--token-file",
            "/nonexistent/token",
        ],
    );
    assert!(
        text(&out.stderr).contains("--token-file /nonexistent/token"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn listen_takes_a_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let (_serve, listen) = serve_in(dir.path(), &["serve", "--listen", "localhost:0"]);
    // localhost resolves to loopback (v4 or v6 first, as the resolver says).
    let addr: std::net::SocketAddr = listen.parse().unwrap();
    assert!(addr.ip().is_loopback(), "{listen}");
    assert!(std::net::TcpStream::connect(addr).is_ok(), "{listen}");
}

#[test]
fn broken_templates_stop_serve_and_preview_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, err) = run_to_exit(
        d,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--template-dir",
            "/nonexistent/templates",
        ],
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains("--template-dir /nonexistent/templates"),
        "{err}"
    );

    let templates = d.join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(
        templates.join("send_password_email.txt"),
        "Hi\n{{ nmae }}\n",
    )
    .unwrap();
    let t = templates.to_str().unwrap();
    let (code, err) = run_to_exit(
        d,
        &["serve", "--listen", "127.0.0.1:0", "--template-dir", t],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("send_password_email.txt:2"), "{err}");

    let out = run(
        d,
        &[
            "mail",
            "preview",
            "--kind",
            "send-password-email",
            "--to",
            "a@example.com",
            "--template-dir",
            t,
        ],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("`nmae` is undefined"), "{err}");
    assert_eq!(err.matches("`nmae` is undefined").count(), 1, "once: {err}");

    std::fs::remove_file(templates.join("send_password_email.txt")).unwrap();
    std::fs::write(templates.join("send_password_emial.txt"), "x").unwrap();
    let (code, err) = run_to_exit(
        d,
        &["serve", "--listen", "127.0.0.1:0", "--template-dir", t],
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains("unknown template file \"send_password_emial.txt\""),
        "{err}"
    );
}

#[test]
fn version_names_the_git_revision() {
    let out = run(Path::new("."), &["--version"]);
    let version = text(&out.stdout);
    assert!(
        version.starts_with(&format!("pwmail {} (git ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(head.status.success(), "the tests run in a git checkout");
    let head = text(&head.stdout);
    assert!(version.contains(head.trim()), "{version} vs {head}");
}

#[test]
fn the_systemd_unit_is_hardened_and_runs_a_command_that_parses() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../packaging/pwmail.service"
    ))
    .unwrap();
    for directive in [
        "DynamicUser=yes",
        "StateDirectory=pwmail",
        "StateDirectoryMode=0700",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "UMask=0077",
        "PrivateTmp=yes",
    ] {
        assert!(
            unit.lines().any(|l| l.trim() == directive),
            "{directive} missing"
        );
    }
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    assert_eq!(args, ["--config", "%d/pwmail.toml", "serve"]);
    // The same command line, with a settings file of our own, starts a server.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pwmail.toml"), "listen = \"127.0.0.1:0\"\n").unwrap();
    let _serve = serve_in(dir.path(), &["--config", "pwmail.toml", "serve"]);
}
