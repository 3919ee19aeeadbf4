//! Running `pwmail serve` as a real process, for the process-level tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pwmail_store::testing::StoreTestExt;

pub struct Serve {
    pub child: Child,
}

/// A child process killed when the test ends, even by a failed assertion,
/// so a failing test does not leave a server running.
pub struct KillOnDrop(pub Child);

impl std::ops::Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `signal` (`-9`, `-TERM`) to a child process.
pub fn signal(child: &Child, signal: &str) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success(),
        "kill {signal} {pid}"
    );
}

pub fn serve(dir: &Path, listen: &str, extra: &[&str], envs: &[(&str, &str)], log: &Path) -> Serve {
    serve_logging(dir, listen, "json", extra, envs, log)
}

/// As [`serve`], with logs in `format` (`text` or `json`).
pub fn serve_logging(
    dir: &Path,
    listen: &str,
    format: &str,
    extra: &[&str],
    envs: &[(&str, &str)],
    log: &Path,
) -> Serve {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pwmail"));
    cmd.current_dir(dir)
        .args(["serve", "--listen", listen, "--log-format", format])
        .args(extra)
        .env_remove("PWMAIL_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start pwmail serve");
    let serve = Serve { child };
    wait_until_listening(listen);
    serve
}

pub fn wait_until_listening(listen: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(listen).is_err() {
        assert!(
            Instant::now() < deadline,
            "pwmail serve did not listen on {listen}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An admin `ops@example.com` and its API token, straight into the store.
pub async fn seed_admin(store: &dyn pwmail_store::Store) -> String {
    use pwmail_server::app::users;
    users::add_user(store, "ops@example.com", true, None, now())
        .await
        .unwrap();
    users::create_token(store, "ops@example.com", "t", now())
        .await
        .unwrap()
        .expose()
        .to_string()
}

/// ResetPasswordByAdmin against a server on `listen`; the status code.
pub async fn reset(client: &reqwest::Client, listen: &str, token: &str, email: &str) -> u16 {
    client
        .post(format!(
            "http://{listen}/api/web/custom/password/admin_reset"
        ))
        .header("Authorization", format!("APIToken {token}"))
        .json(&serde_json::json!({ "email": email }))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

pub async fn open_store(dir: &Path) -> std::sync::Arc<dyn StoreTestExt> {
    let url = format!("sqlite://{}", dir.join("pwmail-data/pwmail.db").display());
    std::fs::create_dir_all(dir.join("pwmail-data")).unwrap();
    pwmail_store::testing::open(&url).await.unwrap()
}

pub fn now() -> i64 {
    use pwmail_server::clock::Clock;
    pwmail_server::clock::SystemClock.now()
}

/// `pwmail ARGS` in `dir` that must exit by itself (a server that starts
/// when it should refuse would hang the test): its exit code and stderr;
/// killed after 20 s.
pub fn run_to_exit(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_pwmail"))
            .current_dir(dir)
            .args(args)
            .env_remove("PWMAIL_DATABASE_URL")
            .env_remove("PWMAIL_DATA_DIR")
            .env_remove("PWMAIL_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pwmail"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "pwmail {args:?} kept running");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).expect("stderr");
    }
    (status.code(), stderr)
}
