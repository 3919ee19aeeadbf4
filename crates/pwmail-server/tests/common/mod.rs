//! Running `pwmail serve` as a real process, for the process-level tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pwmail_store::testing::StoreTestExt;

pub struct Serve {
    pub child: Child,
    /// The address it listens on (`host:port`), as it logged it.
    pub listen: String,
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

/// `pwmail serve` in `dir` on `--listen 127.0.0.1:0` (the system picks the
/// port; no test frees a port and binds it again), stderr appended to
/// `log`; returns once it serves, with the address it logged.
pub fn serve(dir: &Path, extra: &[&str], envs: &[(&str, &str)], log: &Path) -> Serve {
    serve_logging(dir, "json", extra, envs, log)
}

/// As [`serve`], with logs in `format` (`text` or `json`).
pub fn serve_logging(
    dir: &Path,
    format: &str,
    extra: &[&str],
    envs: &[(&str, &str)],
    log: &Path,
) -> Serve {
    let (file, from) = append_to(log);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pwmail"));
    cmd.current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", format])
        .args(extra)
        .env_remove("PWMAIL_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start pwmail serve");
    let listen = serving_address(&mut child, log, from);
    Serve { child, listen }
}

/// `log` opened for a server's stderr (appended: a restarted server shares
/// it), and where the new server's lines begin (for [`serving_address`]).
pub fn append_to(log: &Path) -> (std::fs::File, u64) {
    let from = std::fs::metadata(log).map_or(0, |m| m.len());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    (file, from)
}

/// The address of the "pwmail serving" line a server writes to `log` after
/// byte `from`, in either log format; waits up to 20 s for it.
pub fn serving_address(child: &mut Child, log: &Path, from: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read(log).unwrap_or_default();
        let text = String::from_utf8_lossy(&text[(from as usize).min(text.len())..]).into_owned();
        if let Some(line) = text.lines().find(|l| l.contains("pwmail serving")) {
            for (marker, end) in [("\"listen\":\"", '"'), ("listen=", ' ')] {
                if let Some(start) = line.find(marker) {
                    let rest = &line[start + marker.len()..];
                    return rest.split(end).next().unwrap_or(rest).to_string();
                }
            }
            panic!("no address in {line:?}");
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("pwmail serve exited with {status}:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "pwmail serve did not start:\n{text}"
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
    users::create_token(store, "ops@example.com", "t", false, now())
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
