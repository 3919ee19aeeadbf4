//! Amazon SES for tests: moto's server mode (`smtp/ses_server.py`) on
//! 127.0.0.1, with the sending domain verified, recording every request.
//! What SES "sent" is read back from moto's own state
//! (`/moto-api/data.json`, `ses.RawMessage[].raw_data`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{python, workspace};

/// The credentials tests sign with (moto checks none).
pub const ACCESS_KEY_ID: &str = "AKIDPWMAILTEST";
pub const SECRET_ACCESS_KEY: &str = "pwmail-test-secret-access-key";
pub const REGION: &str = "us-east-1";

pub struct SesServer {
    child: Child,
    pub port: u16,
    record: PathBuf,
    log_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl SesServer {
    /// With `domain` verified for sending (`None`: nothing verified, so
    /// SES answers `MessageRejected`).
    pub fn start(domain: Option<&str>) -> SesServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let ready = dir.path().join("ready");
        let record = dir.path().join("requests.jsonl");
        let log_file = dir.path().join("moto.log");
        let mut cmd = Command::new(python());
        cmd.arg(workspace().join("crates/pwmail-testkit/smtp/ses_server.py"))
            .arg("--ready-file")
            .arg(&ready)
            .arg("--record")
            .arg(&record)
            .args(["--region", REGION]);
        if let Some(domain) = domain {
            cmd.args(["--verify-domain", domain]);
        }
        let log = std::fs::File::create(&log_file).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start moto");
        let mut server = SesServer {
            child,
            port: 0,
            record,
            log_file,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("moto exited with {status}: {}", server.log());
            }
            assert!(Instant::now() < deadline, "moto did not start within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        server.port = std::fs::read_to_string(&ready)
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .expect("moto wrote its port");
        server
    }

    /// The `--ses-endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The raw MIME of every message SES accepted.
    pub async fn messages(&self) -> Vec<String> {
        let url = format!("{}/moto-api/data.json", self.endpoint());
        let data: serde_json::Value = reqwest::get(url)
            .await
            .expect("moto answers")
            .json()
            .await
            .expect("data.json");
        data["ses"]["RawMessage"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|m| m["raw_data"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until at least `count` messages were accepted.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages().await;
            if messages.len() >= count || Instant::now() >= deadline {
                return messages;
            }
            // data.json holds every message: read it seldom, not to load
            // the server being measured.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Every request moto served, one JSON object each (its recorder's
    /// lines: method, url, headers, body).
    pub fn recorded(&self) -> Vec<String> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// botocore's verdict on a recorded request's SigV4 signature.
    pub fn sigv4_check(&self, recorded: &str) -> (bool, String) {
        let out = Command::new(python())
            .arg(workspace().join("crates/pwmail-testkit/smtp/sigv4_check.py"))
            .args([recorded, ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION])
            .output()
            .expect("sigv4_check.py runs");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }
}

impl Drop for SesServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
