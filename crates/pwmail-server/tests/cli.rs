//! The `pwmail` binary as an operator uses it: admin commands, then `serve`
//! on the embedded defaults answering the seed page's request.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pwmail(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pwmail"))
        .current_dir(dir)
        .args(args)
        .env_remove("PWMAIL_DATABASE_URL")
        .env_remove("PWMAIL_DATA_DIR")
        .output()
        .expect("run pwmail");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn user_and_token_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, out, _) = pwmail(
        d,
        &["user", "add", "ops@example.com", "--admin", "--name", "Ops"],
    );
    assert!(ok);
    assert!(out.contains("added user ops@example.com"), "{out}");
    assert!(
        d.join("pwmail-data/pwmail.db").exists(),
        "embedded default location"
    );

    let (ok, _, err) = pwmail(d, &["user", "add", "OPS@example.com"]);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let (ok, _, err) = pwmail(d, &["user", "add", "not-an-email"]);
    assert!(!ok);
    assert!(err.contains("invalid email"), "{err}");

    let (ok, out, _) = pwmail(d, &["token", "create", "ops@example.com"]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "only the token on stdout: {out:?}");
    assert!(
        lines[0].starts_with("pwm_") && lines[0].len() == 47,
        "{out}"
    );

    let (ok, out, _) = pwmail(d, &["token", "list", "ops@example.com"]);
    assert!(
        ok && out.contains("live") && !out.contains(lines[0]),
        "{out}"
    );
    let id = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (ok, out, _) = pwmail(d, &["token", "revoke", &id]);
    assert!(ok, "{out}");
    let (ok, out, _) = pwmail(d, &["token", "list", "ops@example.com"]);
    assert!(ok && out.contains("revoked"), "{out}");
    let (ok, _, err) = pwmail(d, &["token", "revoke", &id]);
    assert!(!ok && err.contains("no live API token"), "{err}");

    let (ok, out, _) = pwmail(d, &["user", "disable", "ops@example.com"]);
    assert!(ok, "{out}");
    let (ok, out, _) = pwmail(d, &["user", "list"]);
    assert!(ok && out.contains("disabled"), "{out}");

    // --database-url wins over --data-dir.
    let other = d.join("elsewhere.db");
    let url = format!("sqlite://{}", other.display());
    let (ok, _, _) = pwmail(d, &["user", "add", "x@example.com", "--database-url", &url]);
    assert!(ok && other.exists());
}

#[test]
fn serve_answers_the_seed_request_and_writes_the_eml() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["user", "add", "hello@example.com"]).0);

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pwmail"))
        .current_dir(d)
        .args(["serve", "--listen", &listen])
        .env_remove("PWMAIL_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    assert!(
        banner.contains("Created bootstrap admin admin@pwmail.localhost"),
        "{banner}"
    );
    let mut token = String::new();
    stdout.read_line(&mut token).unwrap();
    let token = token.trim().to_string();
    assert!(token.starts_with("pwm_"), "{token}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sent = client
                .post(format!(
                    "http://{listen}/api/web/custom/namespaces/system/send_password_email"
                ))
                .header("Authorization", format!("APIToken {token}"))
                .header("Content-Type", "application/json")
                .body(r#"{ "email": "hello@example.com", "namespace": "system" }"#)
                .send()
                .await;
            match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    assert_eq!(response.text().await.unwrap(), "{}");
                    break status;
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("server never answered: {e}"),
            }
        }
    });
    assert_eq!(status, 200);

    let mail_dir = d.join("pwmail-data/mail");
    let answered = Instant::now();
    let eml = loop {
        let found = std::fs::read_dir(&mail_dir)
            .ok()
            .and_then(|mut it| it.find_map(|e| e.ok().map(|e| e.path())))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"));
        if let Some(path) = found {
            break std::fs::read_to_string(path).unwrap();
        }
        assert!(
            answered.elapsed() < Duration::from_secs(2),
            "no .eml within 2 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(eml.contains("To: hello@example.com"), "{eml}");
    assert!(
        eml.contains("http://127.0.0.1:8080/reset/"),
        "link from --public-url default"
    );

    // SIGTERM stops it cleanly.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}
