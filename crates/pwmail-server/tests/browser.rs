//! The whole journey in a real browser: an admin calls the API through the
//! generated client, the email arrives at a real SMTP server, headless
//! Chromium opens its link and sets a new password, and `pwmail user
//! check-password` proves which password works.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{now, open_store, seed_admin, serve};
use pwmail_client::types::SendPasswordEmailRequest;
use pwmail_server::app::users as admin;
use pwmail_server::secrets::password::Hasher;
use pwmail_testkit::browser::Browser;
use pwmail_testkit::{SmtpOptions, SmtpServer, header, link_token};

const OLD: &str = "old horse battery staple";
const NEW: &str = "plum trellis quasar lantern";

/// `pwmail user check-password EMAIL` with `password` on stdin: its exit code.
fn check_password(dir: &Path, email: &str, password: &str) -> i32 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pwmail"))
        .current_dir(dir)
        .args(["user", "check-password", email])
        .env_remove("PWMAIL_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait().unwrap().code().unwrap_or(-1)
}

fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_email_link_browser_form_new_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let smtp = SmtpServer::start(SmtpOptions::default());
    let store = open_store(d).await;
    let token = seed_admin(&*store).await;
    let carol = admin::add_user(&*store, "carol@example.com", false, Some("Carol"), now())
        .await
        .unwrap();
    let old_hash = Hasher::new(1, 0).hash(OLD.into()).await.unwrap();
    store
        .set_password_hash(carol.id, &old_hash, now())
        .await
        .unwrap();

    // Links name the address it bound (no --public-url).
    let serve = serve(d, &["--smtp-url", &smtp.url()], &[], &d.join("serve.log"));
    let public_url = format!("http://{}", serve.listen);

    // The admin asks, through the generated client.
    let client = pwmail_client::with_api_token(&public_url, token.as_str()).unwrap();
    let body = SendPasswordEmailRequest::builder()
        .email("carol@example.com")
        .namespace(Some("system".try_into().unwrap()));
    client
        .send_password_email_system()
        .body(body.clone())
        .send()
        .await
        .expect("200");

    // The email arrives at the SMTP server; the test reads the link in it.
    let messages = tokio::task::block_in_place(|| smtp.wait_for(1, Duration::from_secs(20)));
    assert_eq!(messages.len(), 1);
    assert_eq!(
        header(&messages[0], "To").as_deref(),
        Some("carol@example.com")
    );
    let link = format!("{public_url}/reset/{}", link_token(&messages[0]).unwrap());
    assert!(messages[0].contains(&link), "the email carries {link}");
    assert_eq!(
        check_password(d, "carol@example.com", OLD),
        0,
        "old password works until changed"
    );

    let browser = Browser::start().await;
    browser.goto(&link).await;
    assert_eq!(browser.text("#account").await, "carol@example.com");
    assert_eq!(browser.title().await, "Choose a new password · pwmail");
    let shots = screenshot_dir();
    let form_png = shots.join("reset-form.png");
    browser.screenshot(&form_png).await;

    browser.type_into("#password", NEW).await;
    browser.type_into("#password_confirm", NEW).await;
    browser.click("#submit").await;
    assert_eq!(browser.text("#done").await, "Your password was changed");
    let done_png = shots.join("reset-done.png");
    browser.screenshot(&done_png).await;

    assert_eq!(
        check_password(d, "carol@example.com", NEW),
        0,
        "the new password works"
    );
    assert_eq!(
        check_password(d, "carol@example.com", OLD),
        1,
        "the old one does not"
    );

    browser.goto(&link).await;
    assert_eq!(browser.text("#problem").await, "This link was already used");
    browser.close().await;

    // The "password changed" notice arrives too.
    let messages = tokio::task::block_in_place(|| smtp.wait_for(2, Duration::from_secs(20)));
    assert!(
        messages
            .iter()
            .any(|m| header(m, "Subject").as_deref() == Some("Your pwmail password was changed"))
    );
    for png in [&form_png, &done_png] {
        let bytes = std::fs::read(png).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 2_000,
            "{}",
            png.display()
        );
        eprintln!("screenshot: {}", png.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_password_by_admin_stops_the_old_password_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = open_store(d).await;
    let token = seed_admin(&*store).await;
    let dan = admin::add_user(&*store, "dan@example.com", false, None, now())
        .await
        .unwrap();
    let old_hash = Hasher::new(1, 0).hash(OLD.into()).await.unwrap();
    store
        .set_password_hash(dan.id, &old_hash, now())
        .await
        .unwrap();
    assert_eq!(check_password(d, "dan@example.com", OLD), 0);
    assert_eq!(check_password(d, "dan@example.com", "not it at all"), 1);
    assert_eq!(
        check_password(d, "nobody@example.com", OLD),
        2,
        "errors are not a no"
    );

    let serve = serve(d, &[], &[], &d.join("serve.log"));
    let listen = serve.listen.clone();
    let client =
        pwmail_client::with_api_token(&format!("http://{listen}"), token.as_str()).unwrap();
    let body =
        pwmail_client::types::ResetPasswordByAdminRequest::builder().email("dan@example.com");
    client
        .reset_password_by_admin()
        .body(body.clone())
        .send()
        .await
        .expect("200");
    assert_eq!(
        check_password(d, "dan@example.com", OLD),
        1,
        "invalid at once"
    );
}
