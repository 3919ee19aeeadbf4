//! Helpers shared by pwmail's tests: a real SMTP server (aiosmtpd, from the
//! venv `cargo xtask test` prepares) started per test on 127.0.0.1, and small
//! readers for the messages it stores; a delivery-hook receiver (HTTP); a
//! WebDriver client for Chromium.

pub mod browser;
pub mod hook;
pub mod otlp;
pub mod pg;
pub mod proxy;
pub mod ses;
pub mod tls;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python with aiosmtpd: `PWMAIL_TEST_PYTHON`, else `.venv/bin/python`.
pub fn python() -> PathBuf {
    let python = std::env::var_os("PWMAIL_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: run `cargo xtask test`, which creates the venv with aiosmtpd",
        python.display()
    );
    python
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

#[derive(Clone, Debug)]
pub struct SmtpOptions {
    pub tls: SmtpTls,
    /// USER, PASSWORD required by AUTH.
    pub auth: Option<(String, String)>,
    /// Replies to the first DATA commands, e.g. `[451, 451]`; `0` is no
    /// reply at all (the DATA command stalls for a minute).
    pub script: Vec<u16>,
    /// Whether EHLO offers PIPELINING (real relays do).
    pub pipelining: bool,
    /// Recipients starting with this are refused at RCPT with 550.
    pub refuse_rcpt: Option<String>,
}

impl Default for SmtpOptions {
    fn default() -> Self {
        SmtpOptions {
            tls: SmtpTls::None,
            auth: None,
            script: Vec::new(),
            pipelining: true,
            refuse_rcpt: None,
        }
    }
}

/// A running aiosmtpd. Killed on drop.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
    /// The test CA that signed the server's certificate (TLS modes).
    pub ca_file: Option<PathBuf>,
    pub log_file: PathBuf,
    options: SmtpOptions,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    pub fn start(options: SmtpOptions) -> SmtpServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let maildir = dir.path().join("maildir");
        let ready = dir.path().join("ready");
        let ca_file = dir.path().join("ca.pem");
        let log_file = dir.path().join("smtp.log");
        let mut cmd = Command::new(python());
        cmd.arg(workspace().join("crates/pwmail-testkit/smtp/smtp_server.py"))
            // It binds a free port itself and writes it to `ready`.
            .args(["--port", "0"])
            .arg("--maildir")
            .arg(&maildir)
            .arg("--ready-file")
            .arg(&ready)
            .arg("--ca-out")
            .arg(&ca_file)
            .args([
                "--tls-mode",
                match options.tls {
                    SmtpTls::None => "none",
                    SmtpTls::StartTls => "starttls",
                    SmtpTls::Tls => "tls",
                },
            ]);
        if let Some((user, password)) = &options.auth {
            cmd.args(["--auth", &format!("{user}:{password}")]);
        }
        if !options.script.is_empty() {
            let script: Vec<String> = options.script.iter().map(u16::to_string).collect();
            cmd.args(["--script", &script.join(",")]);
        }
        if !options.pipelining {
            cmd.arg("--no-pipelining");
        }
        if let Some(prefix) = &options.refuse_rcpt {
            cmd.args(["--refuse-rcpt", prefix]);
        }
        let log = std::fs::File::create(&log_file).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start aiosmtpd");
        let mut server = SmtpServer {
            child,
            port: 0,
            maildir,
            ca_file: (options.tls != SmtpTls::None).then_some(ca_file),
            log_file,
            options,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready.exists() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "aiosmtpd exited with {status}: {}",
                    std::fs::read_to_string(&server.log_file).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server.port = std::fs::read_to_string(&ready)
            .ok()
            .and_then(|port| port.trim().parse().ok())
            .expect("aiosmtpd wrote its port to the ready file");
        server
    }

    /// The `--smtp-url` that reaches this server (without credentials).
    pub fn url(&self) -> String {
        match self.options.tls {
            SmtpTls::None => format!("smtp://127.0.0.1:{}?tls=none", self.port),
            SmtpTls::StartTls => format!("smtp://localhost:{}?tls=starttls", self.port),
            SmtpTls::Tls => format!("smtps://localhost:{}", self.port),
        }
    }

    /// Every delivered message.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    out.push(text);
                }
            }
        }
        out
    }

    /// Waits until at least `count` messages arrived, or `timeout` passed.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count || Instant::now() >= deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// What the server logged (scripted replies, errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of a header of a raw message (first occurrence, unfolded).
pub fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\n\n").next()?.replace("\r\n", "\n");
    let mut lines = head.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.eq_ignore_ascii_case(name) {
            let mut value = value.trim().to_string();
            while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(next.trim());
                lines.next();
            }
            return Some(value);
        }
    }
    None
}

/// The token of the first `/reset/<token>` link in the message's text.
pub fn link_token(message: &str) -> Option<String> {
    let start = message.find("/reset/")? + "/reset/".len();
    let token: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

/// A DKIM key's algorithm, as `openssl genpkey` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa2048,
    Ed25519,
}

/// A private key made by `openssl genpkey` in `dir` (PKCS#8 PEM), and the
/// DKIM TXT record for it made from `openssl pkey -pubout`: not from
/// pwmail, so a test can hold pwmail's signatures and records against it.
pub fn openssl_dkim_key(dir: &Path, algorithm: KeyAlgorithm) -> (PathBuf, String) {
    use base64::Engine;
    let key = dir.join(format!("dkim-{algorithm:?}.pem"));
    let mut genpkey = Command::new("openssl");
    genpkey.arg("genpkey");
    match algorithm {
        KeyAlgorithm::Rsa2048 => {
            genpkey.args(["-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:2048"])
        }
        KeyAlgorithm::Ed25519 => genpkey.args(["-algorithm", "ed25519"]),
    };
    let made = genpkey
        .arg("-out")
        .arg(&key)
        .status()
        .expect("openssl runs");
    assert!(made.success(), "openssl genpkey");
    let public = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .expect("openssl pkey");
    assert!(public.status.success(), "openssl pkey -pubout");
    let der = public.stdout;
    let b64 = base64::engine::general_purpose::STANDARD;
    let record = match algorithm {
        KeyAlgorithm::Rsa2048 => format!("v=DKIM1; k=rsa; p={}", b64.encode(&der)),
        // RFC 8463: the raw 32-byte key, the end of its SubjectPublicKeyInfo.
        KeyAlgorithm::Ed25519 => {
            format!(
                "v=DKIM1; k=ed25519; p={}",
                b64.encode(&der[der.len() - 32..])
            )
        }
    };
    (key, record)
}

/// dkimpy's verdict on the message in `file`, given `record` as the DNS
/// answer for `name` (`SELECTOR._domainkey.DOMAIN`): whether it verified,
/// and what it said.
pub fn dkimpy_verify(file: &Path, name: &str, record: &str) -> (bool, String) {
    let out = Command::new(python())
        .arg(workspace().join("crates/pwmail-testkit/smtp/dkim_verify.py"))
        .arg(file)
        .arg(name)
        .arg(record)
        .output()
        .expect("dkim_verify.py runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
