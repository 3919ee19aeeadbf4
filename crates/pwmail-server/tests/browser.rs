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
    assert_eq!(
        browser.text("#account").await,
        "For the account carol@example.com."
    );
    assert_eq!(
        browser.attribute("html", "lang").await.as_deref(),
        Some("en")
    );
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

/// Each user's page in their language, as Chromium shows it: the form and
/// the done page in German, Arabic (right to left) and Japanese, with a
/// screenshot of each (`target/tmp/browser/reset-{form,done}-LANG.png`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_in_three_languages_one_right_to_left() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = open_store(d).await;
    let token = seed_admin(&*store).await;
    // (user, locale, the form's heading, the done page's heading, direction)
    let users = [
        (
            "greta@example.com",
            "de",
            "Neues Passwort wählen",
            "Ihr Passwort wurde geändert",
            "ltr",
        ),
        (
            "amal@example.com",
            "ar",
            "اختر كلمة مرور جديدة",
            "تغيّرت كلمة مرورك",
            "rtl",
        ),
        (
            "yui@example.com",
            "ja",
            "新しいパスワードを選ぶ",
            "パスワードが変更されました",
            "ltr",
        ),
    ];
    for (email, locale, ..) in users {
        let draft = admin::UserDraft {
            email: email.into(),
            name: None,
            locale: Some(locale.into()),
        };
        admin::add(&*store, &draft, false, now()).await.unwrap();
    }
    let serve = serve(d, &[], &[], &d.join("serve.log"));
    let public_url = format!("http://{}", serve.listen);
    let client = pwmail_client::with_api_token(&public_url, token.as_str()).unwrap();
    let browser = Browser::start().await;
    let shots = screenshot_dir();
    for (email, locale, form_heading, done_heading, dir) in users {
        client
            .send_password_email_system()
            .body(
                SendPasswordEmailRequest::builder()
                    .email(email)
                    .namespace(Some("system".try_into().unwrap())),
            )
            .send()
            .await
            .expect("200");
        let text = wait_for_link_email(&d.join("pwmail-data/mail"), email).await;
        let link = format!("{public_url}/reset/{}", link_token(&text).unwrap());

        browser.goto(&link).await;
        assert_eq!(
            browser.attribute("html", "lang").await.as_deref(),
            Some(locale)
        );
        assert_eq!(browser.attribute("html", "dir").await.as_deref(), Some(dir));
        assert_eq!(browser.computed("main", "direction").await, dir);
        assert_eq!(browser.text("h2").await, form_heading);
        let form_png = shots.join(format!("reset-form-{locale}.png"));
        browser.screenshot(&form_png).await;
        // A rule broken (the browser checks the length itself): the form
        // again, the reason in the user's language.
        browser.type_into("#password", NEW).await;
        browser
            .type_into("#password_confirm", "another long passphrase")
            .await;
        browser.click("#submit").await;
        let error = browser.text("#error").await;
        assert!(!error.is_ascii(), "{locale}: {error}");
        browser.type_into("#password", NEW).await;
        browser.type_into("#password_confirm", NEW).await;
        browser.click("#submit").await;
        assert_eq!(browser.text("#done").await, done_heading);
        assert_eq!(browser.attribute("html", "dir").await.as_deref(), Some(dir));
        let done_png = shots.join(format!("reset-done-{locale}.png"));
        browser.screenshot(&done_png).await;
        for png in [&form_png, &done_png] {
            let bytes = std::fs::read(png).unwrap();
            assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 2_000);
            eprintln!("screenshot: {}", png.display());
        }
    }
    browser.close().await;
}

/// The text of the link email `.eml` in `dir` to `to`, decoded by an
/// independent MIME parser, waiting up to 20 s for it.
async fn wait_for_link_email(dir: &Path, to: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let paths = std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_else(|_| Vec::new());
        for path in paths {
            let Ok(raw) = std::fs::read(&path) else {
                continue;
            };
            let Some(message) = mail_parser::MessageParser::default().parse(&raw[..]) else {
                continue;
            };
            let address = message
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address());
            let text = message.body_text(0).unwrap_or_default();
            if address == Some(to) && text.contains("/reset/") {
                return text.into_owned();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no link email to {to}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
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
