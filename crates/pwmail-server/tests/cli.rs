//! The `pwmail` binary as an operator uses it: admin commands, then `serve`
//! on the embedded defaults answering the seed page's request.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{KillOnDrop, run_to_exit};

mod common;

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

/// A fresh database in `d` (`pwmail migrate`) holding the admin
/// ops@example.com; its URL.
fn with_ops_admin(d: &Path) -> String {
    assert!(pwmail(d, &["migrate"]).0);
    assert!(pwmail(d, &["user", "add", "ops@example.com", "--admin"]).0);
    format!("sqlite://{}", d.join("pwmail-data/pwmail.db").display())
}

/// ops@example.com calling with a token of theirs.
async fn ops_actor(store: &dyn pwmail_store::Store) -> pwmail_store::Actor {
    let admin = store
        .find_user_by_email("ops@example.com")
        .await
        .unwrap()
        .unwrap();
    let token = store
        .create_api_token(admin.id, &pwmail_store::TokenHash([1; 32]), "t", false, 0)
        .await
        .unwrap();
    pwmail_store::Actor {
        user: admin.id,
        token_id: token.id,
    }
}

/// `pwmail audit list --json ARGS`: one object per row, newest first.
fn audit_json(d: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["audit", "list", "--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = pwmail(d, &all);
    assert!(ok, "{args:?}: {err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn user_and_token_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
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

    let (ok, help_desk, _) = pwmail(
        d,
        &[
            "token",
            "create",
            "ops@example.com",
            "--label",
            "help-desk",
            "--reveal-links",
        ],
    );
    assert!(ok && help_desk.starts_with("pwm_"), "{help_desk}");

    let (ok, out, _) = pwmail(d, &["token", "list", "ops@example.com"]);
    assert!(
        ok && out.contains("live") && !out.contains(lines[0]),
        "{out}"
    );
    // Which token may receive links in answers, and which may not.
    let rights: Vec<(&str, &str)> = out
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[1], cols[3])
        })
        .collect();
    assert_eq!(
        rights,
        [("cli", "-"), ("help-desk", "reveal-links")],
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
    // Adding it again says why it is refused.
    let (ok, _, err) = pwmail(d, &["user", "add", "OPS@example.com"]);
    assert!(!ok);
    assert!(err.contains("already exists (disabled)"), "{err}");

    // --database-url wins over --data-dir; an admin command does not create
    // a database, it says there is none (exit status 2).
    let other = d.join("elsewhere.db");
    let url = format!("sqlite://{}", other.display());
    let out = Command::new(env!("CARGO_BIN_EXE_pwmail"))
        .current_dir(d)
        .args(["user", "add", "x@example.com", "--database-url", &url])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("no pwmail database at {}", other.display())),
        "{err}"
    );
    assert!(!other.exists(), "nothing created");
    assert!(pwmail(d, &["migrate", "--database-url", &url]).0);
    let (ok, _, _) = pwmail(d, &["user", "add", "x@example.com", "--database-url", &url]);
    assert!(ok && other.exists());
}

#[test]
fn user_import_adds_a_csv_of_users_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
    assert!(pwmail(d, &["user", "add", "old@example.com"]).0);
    let mut csv = String::from("name,email\n");
    for i in 0..300 {
        csv.push_str(&format!("User {i},u{i}@example.com\n"));
    }
    csv.push_str("Old,OLD@example.com\n");
    std::fs::write(d.join("users.csv"), &csv).unwrap();
    let (ok, out, err) = pwmail(d, &["user", "import", "users.csv"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("imported 300 user(s), 1 already present"),
        "{out}"
    );
    let (_, list, _) = pwmail(d, &["user", "list"]);
    assert_eq!(list.matches("@example.com").count(), 301, "{list}");
    // The `name` column is read: names greet users in their emails.
    let url = format!("sqlite://{}", d.join("pwmail-data/pwmail.db").display());
    let named = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = pwmail_store::open(&url).await.unwrap();
        store.find_user_by_email("u7@example.com").await.unwrap()
    });
    assert_eq!(named.unwrap().name.as_deref(), Some("User 7"));

    // One bad address anywhere: nothing is added.
    std::fs::write(
        d.join("bad.csv"),
        "email\nnew1@example.com\nnot-an-email\nnew2@example.com\n",
    )
    .unwrap();
    let (ok, _, err) = pwmail(d, &["user", "import", "bad.csv"]);
    assert!(!ok);
    assert!(err.contains("invalid email \"not-an-email\""), "{err}");
    let (_, list, _) = pwmail(d, &["user", "list"]);
    assert!(!list.contains("new1@example.com"), "{list}");

    // Names reach emails: no line breaks, no text-direction overrides, at
    // most 256 characters; the failing line is named, nothing is added.
    for (name, says) in [
        ("Eve\r\nSubject: urgent", "U+000D"),
        ("Eve\u{202E}moc.live", "U+202E"),
        (&"x".repeat(257) as &str, "at most 256"),
    ] {
        let mut csv = String::from("email,name\nfine@example.com,Fine\n");
        csv.push_str(&format!("eve@example.com,\"{name}\"\n"));
        std::fs::write(d.join("names.csv"), &csv).unwrap();
        let (ok, _, err) = pwmail(d, &["user", "import", "names.csv"]);
        assert!(!ok, "{name:?} imported");
        assert!(
            err.contains("line 3") && err.contains(says),
            "{name:?}: {err}"
        );
        let (ok, _, err) = pwmail(d, &["user", "add", "eve@example.com", "--name", name]);
        assert!(!ok, "{name:?} added");
        assert!(err.contains(says), "{name:?}: {err}");
    }
    let (ok, _, err) = pwmail(
        d,
        &[
            "user",
            "add",
            "long@example.com",
            "--name",
            &"x".repeat(256),
        ],
    );
    assert!(ok, "256 characters are allowed: {err}");
    let (_, list, _) = pwmail(d, &["user", "list"]);
    assert!(
        !list.contains("fine@example.com") && !list.contains("eve@example.com"),
        "{list}"
    );
}

#[test]
fn users_get_a_language_from_add_and_import_and_a_malformed_tag_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
    let (ok, _, err) = pwmail(d, &["user", "add", "de@example.com", "--locale", "de-at"]);
    assert!(ok, "{err}");
    let (ok, _, err) = pwmail(d, &["user", "add", "bad@example.com", "--locale", "de_AT"]);
    assert!(!ok);
    assert!(
        err.contains("\"de_AT\" is not a BCP 47 language tag"),
        "{err}"
    );
    std::fs::write(
        d.join("users.csv"),
        "email,name,locale\nja@example.com,Jun,ja\nnone@example.com,None,\n",
    )
    .unwrap();
    let (ok, _, err) = pwmail(d, &["user", "import", "users.csv"]);
    assert!(ok, "{err}");
    std::fs::write(
        d.join("bad.csv"),
        "email,locale\nfine@example.com,fr\nworse@example.com,!!\n",
    )
    .unwrap();
    let (ok, _, err) = pwmail(d, &["user", "import", "bad.csv"]);
    assert!(
        !ok && err.contains("line 3") && err.contains("\"!!\""),
        "{err}"
    );

    let url = format!("sqlite://{}", d.join("pwmail-data/pwmail.db").display());
    let locales = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = pwmail_store::open(&url).await.unwrap();
        let users = store.list_users().await.unwrap();
        users
            .into_iter()
            .map(|u| (u.email, u.locale))
            .collect::<Vec<_>>()
    });
    let locale = |email: &str| {
        locales
            .iter()
            .find(|(e, _)| e == email)
            .map(|(_, l)| l.clone())
    };
    // Kept in the canonical spelling; the tag itself, not its catalog.
    assert_eq!(locale("de@example.com"), Some(Some("de-AT".into())));
    assert_eq!(locale("ja@example.com"), Some(Some("ja".into())));
    assert_eq!(locale("none@example.com"), Some(None));
    assert_eq!(
        locale("fine@example.com"),
        None,
        "nothing of a bad file added"
    );
    let (_, list, _) = pwmail(d, &["user", "list"]);
    assert!(list.contains("de-AT"), "{list}");
}

/// `pwmail serve` in `dir` with `args` (which give `--listen 127.0.0.1:0`
/// or its config-file twin) and `envs`; its bootstrap token and the address
/// it logged.
fn start_serve(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> (KillOnDrop, String, String) {
    let log = dir.join("serve.log");
    let (stderr, from) = common::append_to(&log);
    let mut command = Command::new(env!("CARGO_BIN_EXE_pwmail"));
    command
        .current_dir(dir)
        .args(args)
        .env_remove("PWMAIL_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = KillOnDrop(command.spawn().expect("start serve"));
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
    let listen = common::serving_address(&mut child.0, &log, from);
    (child, token, listen)
}

/// The seed page's request, sent until the server answers; its status.
fn send_seed_request(listen: &str, token: &str) -> u16 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
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
    })
}

/// The first `.eml` file to appear in `mail_dir`.
fn wait_for_eml(mail_dir: &Path) -> String {
    let started = Instant::now();
    loop {
        let found = std::fs::read_dir(mail_dir)
            .ok()
            .and_then(|mut it| it.find_map(|e| e.ok().map(|e| e.path())))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"));
        if let Some(path) = found {
            return std::fs::read_to_string(path).unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no .eml within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_answers_the_seed_request_and_writes_the_eml() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
    assert!(pwmail(d, &["user", "add", "hello@example.com"]).0);

    // The address comes from the config file (port 0: the system picks).
    std::fs::write(d.join("pwmail.toml"), "listen = \"127.0.0.1:0\"\n").unwrap();
    let (mut child, token, listen) = start_serve(d, &["--config", "pwmail.toml", "serve"], &[]);
    assert_eq!(send_seed_request(&listen, &token), 200);

    let eml = wait_for_eml(&d.join("pwmail-data/mail"));
    assert!(eml.contains("To: hello@example.com"), "{eml}");
    assert!(
        eml.contains(&format!("http://{listen}/reset/")),
        "with no --public-url, links point at the address served: {eml}"
    );

    // SIGTERM stops it cleanly.
    common::signal(&child, "-TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn serve_renders_with_the_templates_of_template_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
    assert!(pwmail(d, &["user", "add", "hello@example.com"]).0);
    std::fs::create_dir(d.join("templates")).unwrap();
    std::fs::write(
        d.join("templates/send_password_email.subject.txt"),
        "Reset for {{ email }} at {{ product }}",
    )
    .unwrap();
    let (_child, token, listen) = start_serve(
        d,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--template-dir",
            "templates",
        ],
        &[],
    );
    assert_eq!(send_seed_request(&listen, &token), 200);
    let eml = wait_for_eml(&d.join("pwmail-data/mail"));
    assert!(
        eml.contains("Subject: Reset for hello@example.com at pwmail"),
        "{eml}"
    );
    assert!(eml.contains("expires in 24 hours"), "built-in body kept");
}

#[test]
fn serve_takes_the_smtp_password_from_its_environment_variable() {
    const PASSWORD: &str = "env-Pa55-for-smtp";
    let smtp = pwmail_testkit::SmtpServer::start(pwmail_testkit::SmtpOptions {
        auth: Some(("mailer".into(), PASSWORD.into())),
        ..pwmail_testkit::SmtpOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
    assert!(pwmail(d, &["user", "add", "hello@example.com"]).0);
    let smtp_url = format!("smtp://mailer@127.0.0.1:{}?tls=none", smtp.port);
    let (_child, token, listen) = start_serve(
        d,
        &["serve", "--listen", "127.0.0.1:0", "--smtp-url", &smtp_url],
        &[("PWMAIL_SMTP_PASSWORD", PASSWORD)],
    );
    assert_eq!(send_seed_request(&listen, &token), 200);
    let messages = smtp.wait_for(1, Duration::from_secs(30));
    assert_eq!(messages.len(), 1, "delivered after AUTH: {}", smtp.log());
    assert!(messages[0].contains("To: hello@example.com"));
}

#[test]
fn serve_refuses_bad_settings_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (args, expected) in [
        (
            vec!["--link-ttl-secs", "299"],
            "--link-ttl-secs must be between 300 and 604800 seconds, got 299",
        ),
        (
            vec!["--link-ttl-secs", "604801"],
            "--link-ttl-secs must be between 300 and 604800 seconds, got 604801",
        ),
        (
            vec!["--smtp-url", "smtp://relay.example.com?tls=none"],
            "refusing unencrypted SMTP to non-loopback host relay.example.com",
        ),
    ] {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend(args.iter().copied());
        let (ok, _, err) = pwmail(d, &all);
        assert!(!ok, "{args:?} was accepted");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(
            !err.contains("listening"),
            "refused before it listened: {args:?}: {err}"
        );
    }
    // The bounds themselves are accepted.
    for (ttl, says) in [
        ("300", "expires in 5 minutes"),
        ("604800", "expires in 7 days"),
    ] {
        let (ok, out, err) = pwmail(
            d,
            &[
                "mail",
                "preview",
                "--kind",
                "send-password-email",
                "--to",
                "a@example.com",
                "--link-ttl-secs",
                ttl,
            ],
        );
        assert!(ok, "{ttl}: {err}");
        assert!(out.contains(says), "{ttl}: {out}");
    }
}

#[test]
fn flags_beat_variables_which_beat_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("pwmail.toml"),
        "product_name = \"FileCo\"\nsupport_contact = \"help@file.example\"\nlink_ttl_secs = 3600\n",
    )
    .unwrap();
    let preview = |extra: &[&str], envs: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pwmail"));
        command
            .current_dir(d)
            .args(["--config", "pwmail.toml", "mail", "preview"])
            .args(["--kind", "send-password-email", "--to", "a@example.com"])
            .args(extra)
            .env_remove("PWMAIL_PRODUCT_NAME");
        for (k, v) in envs {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = preview(&[], &[]);
    assert!(out.contains("Subject: Set your FileCo password"), "{out}");
    assert!(out.contains("help@file.example"), "{out}");
    assert!(out.contains("expires in 1 hour"), "{out}");

    let out = preview(&[], &[("PWMAIL_PRODUCT_NAME", "EnvCo")]);
    assert!(out.contains("Subject: Set your EnvCo password"), "{out}");
    assert!(
        out.contains("help@file.example"),
        "the rest still from the file"
    );

    let out = preview(
        &["--product-name", "FlagCo"],
        &[("PWMAIL_PRODUCT_NAME", "EnvCo")],
    );
    assert!(out.contains("Subject: Set your FlagCo password"), "{out}");
}

#[test]
fn config_file_typos_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "lisen = \"127.0.0.1:1\"\n").unwrap();
    let (ok, _, err) = pwmail(dir.path(), &["--config", "bad.toml", "user", "list"]);
    assert!(!ok);
    assert!(err.contains("unknown setting \"lisen\""), "{err}");
}

#[test]
fn mail_preview_prints_the_rendered_message() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = pwmail(
        dir.path(),
        &[
            "mail",
            "preview",
            "--kind",
            "reset-password-by-admin",
            "--to",
            "a@example.com",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("Subject: Your pwmail password was reset"),
        "{out}"
    );
    assert!(out.contains("To: a@example.com"));
    assert!(out.contains("multipart/alternative"));
    assert!(out.contains("http://127.0.0.1:8080/reset/EXAMPLE-TOKEN"));

    // An operator's template replaces the built-in one.
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(
        templates.join("password_changed.subject.txt"),
        "Changed: {{ email }}",
    )
    .unwrap();
    let (ok, out, _) = pwmail(
        dir.path(),
        &[
            "mail",
            "preview",
            "--kind",
            "password-changed",
            "--to",
            "b@example.com",
            "--template-dir",
            "templates",
        ],
    );
    assert!(ok);
    assert!(out.contains("Subject: Changed: b@example.com"), "{out}");
    assert!(out.contains("was changed at"), "built-in body kept");

    // The reset page's templates live under page/: a misspelt variable in
    // one stops serve at start, naming the file and line; so does a file
    // there that is no page template.
    let pages = templates.join("page");
    std::fs::create_dir(&pages).unwrap();
    let serve = || {
        let args = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--template-dir",
            "templates",
        ];
        run_to_exit(dir.path(), &args)
    };
    std::fs::write(
        pages.join("form.html"),
        "{% extends \"page/base.html\" %}{% block content %}\n{{ emial }}{% endblock %}",
    )
    .unwrap();
    let (code, err) = serve();
    assert_ne!(code, Some(0));
    assert!(
        err.contains("page/form.html:2") && err.contains("`emial` is undefined"),
        "{err}"
    );
    assert!(!err.contains("pwmail serving"), "refused at start: {err}");
    std::fs::remove_file(pages.join("form.html")).unwrap();
    std::fs::write(pages.join("from.html"), "typo").unwrap();
    let (code, err) = serve();
    assert_ne!(code, Some(0));
    assert!(err.contains("unknown page template \"from.html\""), "{err}");
    std::fs::remove_file(pages.join("from.html")).unwrap();

    // A dispatcher writes the link emails it sends, so it checks the
    // templates before it starts, as serve does.
    let (ok, _, err) = pwmail(dir.path(), &["dispatch", "--template-dir", "missing"]);
    assert!(!ok);
    assert!(err.contains("--template-dir missing"), "{err}");
    assert!(
        !err.contains("pwmail dispatching"),
        "refused at start: {err}"
    );
}

#[test]
fn outbox_commands_show_and_requeue_dead_messages() {
    use pwmail_store::{
        CallerCharge, Claim, CompleteReset, IssueLink, LinkPurpose, MessageKind, NewMessage, Rate,
        Settlement, TokenHash,
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = with_ops_admin(d);
    assert!(pwmail(d, &["user", "add", "u@example.com"]).0);
    let message = |id: &str, kind| NewMessage {
        message_id: id.into(),
        kind,
        recipient: "u@example.com".into(),
        content: pwmail_store::Content::Rendered {
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
        },
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A link email and a "password changed" notice, both given up.
    let (link_email, notice) = runtime.block_on(async {
        let store = pwmail_store::open(&url).await.unwrap();
        let actor = ops_actor(&*store).await;
        let user = store
            .find_user_by_email("u@example.com")
            .await
            .unwrap()
            .unwrap();
        for (hash, id, now) in [(2, "m1@example.com", 0), (3, "m2@example.com", 10)] {
            store
                .issue_link(&IssueLink {
                    actor,
                    target: user.id,
                    purpose: LinkPurpose::SendPasswordEmail,
                    link_hash: TokenHash([hash; 32]),
                    expires_at: 10_000,
                    caller: CallerCharge::Pending(Rate {
                        period_ms: 1,
                        burst: 1_000,
                    }),
                    cooldown: Rate {
                        period_ms: 1,
                        burst: 1,
                    },
                    message: message(id, MessageKind::SendPasswordEmail),
                    reveal: false,
                    request_id: format!("req-{hash}"),
                    idempotency: None,
                    now,
                })
                .await
                .unwrap();
        }
        store
            .complete_reset(&CompleteReset {
                link_hash: TokenHash([3; 32]),
                password_phc: "$argon2id$stub".into(),
                notice: message("m3@example.com", MessageKind::PasswordChanged),
                request_id: "req-page".into(),
                now: 20,
            })
            .await
            .unwrap();
        let claimed = store
            .claim_outbox(&Claim {
                owner: "w".into(),
                now: 20,
                lease_ms: 1000,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(claimed.len(), 3);
        let dead = Settlement::Dead {
            error: "550 mailbox unavailable".into(),
            at: 21,
            suppress: false,
        };
        for m in &claimed {
            assert!(store.settle_outbox(m.id, "w", &dead).await.unwrap());
        }
        let id_of = |mid: &str| {
            claimed
                .iter()
                .find(|m| m.message.message_id == mid)
                .unwrap()
                .id
        };
        (id_of("m1@example.com"), id_of("m3@example.com"))
    });

    let (ok, out, _) = pwmail(d, &["outbox", "list", "--state", "dead"]);
    assert!(
        ok && out.contains("u@example.com") && out.contains("550 mailbox unavailable"),
        "{out}"
    );
    // Columns line up under their headers, whatever the kind's length.
    let lines: Vec<&str> = out.lines().collect();
    for column in ["kind", "queued", "last error"] {
        let at = lines[0].find(column).unwrap();
        for row in &lines[1..] {
            assert_ne!(&row[at..at + 1], " ", "{column} starts at {at}:\n{out}");
            assert_eq!(&row[at - 1..at], " ", "{column} starts at {at}:\n{out}");
        }
    }
    let (ok, out, _) = pwmail(d, &["outbox", "show", &link_email.to_string()]);
    assert!(ok, "{out}");
    assert!(
        out.contains("state:        dead") && out.contains("request id:   req-2"),
        "{out}"
    );
    assert!(out.contains("<m1@example.com>"), "{out}");
    // A dead link email is not sent again: its link was revoked.
    let (ok, _, err) = pwmail(d, &["outbox", "retry", &link_email.to_string()]);
    assert!(
        !ok && err.contains("its link was revoked")
            && err.contains("pwmail send --email u@example.com"),
        "{err}"
    );
    // A dead notice is.
    let (ok, out, _) = pwmail(d, &["outbox", "retry", &notice.to_string()]);
    assert!(ok && out.contains("requeued"), "{out}");
    let (ok, out, _) = pwmail(d, &["outbox", "show", &notice.to_string()]);
    assert!(
        ok && out.contains("state:        queued") && out.contains("attempts:     0"),
        "{out}"
    );
    let (ok, _, err) = pwmail(d, &["outbox", "retry", &notice.to_string()]);
    assert!(!ok && err.contains("is not dead"), "{err}");
    // The audit log of the same calls, as an operator reads it: newest
    // first, times in RFC 3339, one JSON object per line.
    let rows = audit_json(d, &[]);
    let seen: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["at"].as_str().unwrap(),
                r["operation"].as_str().unwrap(),
                r["request_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("1970-01-01T00:00:00.020Z", "password_changed", "req-page"),
            ("1970-01-01T00:00:00.010Z", "send_password_email", "req-3"),
            ("1970-01-01T00:00:00.000Z", "send_password_email", "req-2"),
        ],
        "{rows:?}"
    );
    assert_eq!(rows[1]["actor_email"], "ops@example.com", "{rows:?}");
    assert_eq!(rows[1]["target_email"], "u@example.com", "{rows:?}");
    assert!(
        rows[0].get("actor_email").is_none(),
        "the page has no actor: {rows:?}"
    );
    // Filters: one call, a time window, a user, and how many.
    let listed = |args: &[&str]| -> Vec<String> {
        audit_json(d, args)
            .iter()
            .map(|row| row["request_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(listed(&["--request-id", "req-3"]), ["req-3"]);
    assert_eq!(
        listed(&[
            "--since",
            "1970-01-01T00:00:00.005Z",
            "--until",
            "1970-01-01T00:00:00.020Z"
        ]),
        ["req-3"]
    );
    assert_eq!(listed(&["--user", "ops@example.com"]), ["req-3", "req-2"]);
    assert_eq!(
        listed(&["--user", "U@example.com", "--limit", "1"]),
        ["req-page"]
    );
    // The table names the actor by email and token.
    let (ok, out, _) = pwmail(d, &["audit", "list"]);
    assert!(
        ok && out.contains("ops@example.com (token") && out.contains("req-page"),
        "{out}"
    );
    // Mistakes say so.
    let (ok, _, err) = pwmail(d, &["audit", "list", "--user", "nobody@example.com"]);
    assert!(
        !ok && err.contains("no user with email nobody@example.com"),
        "{err}"
    );
    let (ok, _, err) = pwmail(d, &["audit", "list", "--since", "yesterday"]);
    assert!(!ok && err.contains("RFC 3339"), "{err}");
    let (ok, _, err) = pwmail(
        d,
        &[
            "audit",
            "list",
            "--since",
            "2026-12-07T00:00:00Z",
            "--until",
            "2026-12-06T00:00:00Z",
        ],
    );
    assert!(
        !ok && err.contains("--since must be before --until"),
        "{err}"
    );
}

#[test]
fn audit_list_shows_refusals_and_purge_deletes_what_aged() {
    use pwmail_store::{AuditOutcome, Refusal};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = with_ops_admin(d);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = pwmail_store::open(&url).await.unwrap();
        let actor = ops_actor(&*store).await;
        for (at, address, outcome) in [
            (10, "ghost@example.com", AuditOutcome::NoSuchUser),
            (20, "ops@example.com", AuditOutcome::KeyReused),
        ] {
            store
                .record_refusal(&Refusal {
                    at,
                    actor,
                    target: (outcome == AuditOutcome::KeyReused).then_some(actor.user),
                    address: address.into(),
                    operation: "reset_password_by_admin",
                    request_id: format!("req-{at}"),
                    idempotency_key: None,
                    outcome,
                })
                .await
                .unwrap();
        }
    });
    let listed = |args: &[&str]| -> Vec<(String, String, String)> {
        audit_json(d, args)
            .iter()
            .map(|row| {
                let text = |key: &str| row[key].as_str().unwrap_or("-").to_string();
                (text("request_id"), text("outcome"), text("target_email"))
            })
            .collect()
    };
    let row = |id: &str, outcome: &str, target: &str| {
        (id.to_string(), outcome.to_string(), target.to_string())
    };
    assert_eq!(
        listed(&["--outcome", "refused"]),
        [
            row("req-20", "key_reused", "ops@example.com"),
            row("req-10", "no_such_user", "ghost@example.com"),
        ]
    );
    assert_eq!(
        listed(&["--outcome", "no_such_user"]),
        [row("req-10", "no_such_user", "ghost@example.com")]
    );
    assert!(listed(&["--outcome", "ok"]).is_empty());
    // An address no user has finds the refusals that asked for it.
    assert_eq!(
        listed(&["--user", "Ghost@example.com"]),
        [row("req-10", "no_such_user", "ghost@example.com")]
    );
    let (ok, out, _) = pwmail(d, &["audit", "list"]);
    assert!(ok && out.contains("no_such_user"), "{out}");
    let (ok, _, err) = pwmail(d, &["audit", "list", "--outcome", "denied"]);
    assert!(
        !ok && err.contains("expected refused or one of ok, not_admin"),
        "{err}"
    );

    // Both rows are from 1970: past any retention. A dry run counts them
    // and deletes nothing; a purge deletes them.
    let (ok, out, err) = pwmail(d, &["purge", "--dry-run"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "would delete 0 sent or dead emails, 0 used, revoked or expired links, 2 audit rows \
         (kept 30 days, audit rows 365 days)"
    );
    assert_eq!(listed(&[]).len(), 2);
    let (ok, _, err) = pwmail(d, &["purge", "--audit-retain-days", "0"]);
    assert!(!ok && err.contains("--audit-retain-days"), "{err}");
    let (ok, out, err) = pwmail(d, &["purge", "--audit-retain-days", "7"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("deleted 0 sent or dead emails, 0 used, revoked or expired links, 2 audit rows (kept 30 days, audit rows 7 days)"),
        "{out}"
    );
    assert!(listed(&[]).is_empty());
    let (ok, out, _) = pwmail(d, &["purge", "--dry-run"]);
    assert!(
        ok && out.starts_with("would delete 0 sent or dead emails, 0 used"),
        "{out}"
    );
}

#[test]
fn send_tool_sends_from_csv_retries_after_429_and_reports_failures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
    for i in 0..5 {
        assert!(pwmail(d, &["user", "add", &format!("s{i}@example.com")]).0);
    }
    let (mut child, token, listen) = start_serve(
        d,
        &["serve", "--listen", "127.0.0.1:0", "--user-rate", "1/4"],
        &[],
    );
    std::fs::write(d.join("token"), &token).unwrap();

    // s0 was just emailed by another run: this run's first call for s0 meets
    // the 4 s per-user cooldown (429 with Retry-After) and is retried; s0's
    // second row has the same Idempotency-Key and is answered from the
    // first (no second email); one unknown user; one malformed address.
    let out = Command::new(env!("CARGO_BIN_EXE_pwmail"))
        .current_dir(d)
        .args(["send", "--server", &format!("http://{listen}")])
        .args([
            "--email",
            "s0@example.com",
            "--token-file",
            "token",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        d.join("users.csv"),
        "name,email\nA,s0@example.com\nF,s0@example.com\nB,s1@example.com\nC,s2@example.com\n\
         D,s3@example.com\nE,s4@example.com\nG,ghost@example.com\nH,not-an-email\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pwmail"))
        .current_dir(d)
        .args([
            "send",
            "--server",
            &format!("http://{listen}"),
            "--from-csv",
            "users.csv",
            "--token-file",
            "token",
            "--concurrency",
            "1",
            "--report",
            "failures.json",
            "--quiet",
        ])
        .output()
        .unwrap();
    let stdout_text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "failures make the exit status non-zero"
    );
    assert!(stdout_text.starts_with("run id: "), "{stdout_text}");
    assert!(stdout_text.contains("sent: 5"), "{stdout_text}");
    // The address twice in the file: emailed once, and said so (not
    // "already sent by this run id before").
    assert!(
        stdout_text
            .contains("duplicate rows (the address came earlier in the input; emailed once): 1"),
        "{stdout_text}"
    );
    assert!(!stdout_text.contains("already sent"), "{stdout_text}");
    assert!(stdout_text.contains("failed: 2"), "{stdout_text}");
    assert!(
        stdout_text.contains("HTTP 404 no such user: 1"),
        "{stdout_text}"
    );
    assert!(
        stdout_text.contains("invalid input: 1 (lines 9)"),
        "{stdout_text}"
    );
    assert!(
        stdout_text.contains("retries after 429/503: 1"),
        "{stdout_text}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it waited for Retry-After"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("failures.json")).unwrap()).unwrap();
    assert_eq!(report["sent"], 5);
    assert_eq!(report["duplicates"], 1);
    let failures = report["failures"].as_array().unwrap();
    let ghost = failures
        .iter()
        .find(|f| f["email"] == "ghost@example.com")
        .unwrap();
    assert_eq!(
        (ghost["status"].as_u64(), ghost["code"].as_i64()),
        (Some(404), Some(5))
    );
    let bad = failures
        .iter()
        .find(|f| f["email"] == "not-an-email")
        .unwrap();
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid input (line 9)"),
        "{bad}"
    );

    // The same command again: every address was settled by the first run,
    // so nobody is emailed again.
    let out = Command::new(env!("CARGO_BIN_EXE_pwmail"))
        .current_dir(d)
        .args(["send", "--server", &format!("http://{listen}")])
        .args([
            "--from-csv",
            "users.csv",
            "--token-file",
            "token",
            "--quiet",
        ])
        .output()
        .unwrap();
    let again = String::from_utf8_lossy(&out.stdout);
    assert!(again.contains("sent: 0"), "{again}");
    assert!(
        again.contains("already sent by this run id before: 5"),
        "{again}"
    );
    assert!(
        again.contains("duplicate rows (the address came earlier in the input; emailed once): 1"),
        "{again}"
    );

    // A report named *.csv is CSV: a header, then one row per failure.
    let out = Command::new(env!("CARGO_BIN_EXE_pwmail"))
        .current_dir(d)
        .args(["send", "--server", &format!("http://{listen}")])
        .args(["--email", "ghost@example.com", "--token-file", "token"])
        .args(["--report", "failures.csv", "--quiet"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let csv = std::fs::read_to_string(d.join("failures.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "email,status,code,message", "{csv}");
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].starts_with("ghost@example.com,404,5,"), "{csv}");

    // One address, ResetPasswordByAdmin, token from the environment.
    let out = Command::new(env!("CARGO_BIN_EXE_pwmail"))
        .current_dir(d)
        .args([
            "send",
            "--server",
            &format!("http://{listen}"),
            "--email",
            "s3@example.com",
        ])
        .args(["--operation", "reset", "--quiet", "--max-retries", "5"])
        .env("PWMAIL_TOKEN", token.trim())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sent: 1"));

    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_data_dir_and_every_file_holding_links_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
    assert!(pwmail(d, &["user", "add", "hello@example.com"]).0);
    let (_child, token, listen) = start_serve(d, &["serve", "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(send_seed_request(&listen, &token), 200);
    wait_for_eml(&d.join("pwmail-data/mail"));
    let data = d.join("pwmail-data");
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&data.join("mail")), 0o700, "mail dir");
    for file in ["pwmail.db", "pwmail.db-wal", "pwmail.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    for eml in std::fs::read_dir(data.join("mail")).unwrap() {
        let path = eml.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[test]
fn serve_warns_about_an_existing_data_dir_others_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
    assert!(pwmail(d, &["user", "add", "hello@example.com"]).0);
    let data = d.join("pwmail-data");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = d.join("serve.err");
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_pwmail"))
            .current_dir(d)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("PWMAIL_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    common::serving_address(&mut child.0, &log, 0);
    let _ = child.kill();
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(
        err.contains("readable by other users") && err.contains("pwmail-data"),
        "{err}"
    );
}

#[test]
fn serve_speaks_https_and_send_trusts_the_ca_file_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
    let pair = pwmail_testkit::tls::TestCa::new("cli").issue(d);
    assert!(pwmail(d, &["user", "add", "u@example.com"]).0);
    let (cert, key) = (pair.cert.to_str().unwrap(), pair.key.to_str().unwrap());
    let (_child, token, listen) = start_serve(
        d,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ],
        &[],
    );
    std::fs::write(d.join("token"), &token).unwrap();
    let send = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pwmail"))
            .current_dir(d)
            .args(["send", "--server", &format!("https://{listen}")])
            .args([
                "--email",
                "u@example.com",
                "--token-file",
                "token",
                "--quiet",
            ])
            .args(extra)
            .output()
            .unwrap()
    };

    // The system roots alone do not know the private CA: refused, and the
    // report says why.
    let out = send(&["--report", "untrusted.json"]);
    assert!(!out.status.success());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("untrusted.json")).unwrap()).unwrap();
    let message = report["failures"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("certificate") && message.contains("UnknownIssuer"),
        "{message}"
    );

    let out = send(&["--ca-file", pair.ca.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("sent: 1"), "{stdout}");
    let eml = wait_for_eml(&d.join("pwmail-data/mail"));
    assert!(
        eml.contains(&format!("https://{listen}/reset/")),
        "with TLS on and no --public-url, links are https: {eml}"
    );
}

#[test]
fn serve_refuses_a_tls_pair_that_cannot_work_and_says_which_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = pwmail_testkit::tls::TestCa::new("cli");
    let good = ca.issue(d);
    let other = ca.issue_with(d, "other", |_| {});
    let expired = ca.issue_with(d, "expired", |p| {
        p.not_before = pwmail_testkit::tls::date_time_ymd(2020, 1, 1);
        p.not_after = pwmail_testkit::tls::date_time_ymd(2021, 1, 1);
    });
    let s = |p: &std::path::PathBuf| p.to_str().unwrap().to_string();
    let listen = "127.0.0.1:0".to_string();
    let cases: [(Vec<String>, &str); 5] = [
        (
            vec![d.join("missing.crt").to_str().unwrap().into(), s(&good.key)],
            "reading the TLS certificate",
        ),
        // An endless file is refused after 1 MiB, not read until memory ends.
        (vec!["/dev/zero".into(), s(&good.key)], "larger than 1 MiB"),
        (
            vec![s(&good.cert), s(&other.key)],
            "does not belong to the certificate",
        ),
        (
            vec![s(&expired.cert), s(&expired.key)],
            "expired at 2021-01-01",
        ),
        (vec![s(&good.key), s(&good.key)], "holds no PEM certificate"),
    ];
    for ([cert, key], wanted) in cases.map(|(files, wanted)| {
        let [cert, key]: [String; 2] = files.try_into().unwrap();
        ([cert, key], wanted)
    }) {
        let (code, stderr) = run_to_exit(
            d,
            &[
                "serve",
                "--listen",
                &listen,
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
            ],
        );
        assert_ne!(code, Some(0), "{cert} + {key} must not start");
        assert!(stderr.contains(wanted), "{wanted:?} in: {stderr}");
        assert!(
            !d.join("pwmail-data").exists(),
            "refused before the data directory is created"
        );
    }
    // So is a template directory that is not there.
    let (code, stderr) = run_to_exit(
        d,
        &[
            "serve",
            "--listen",
            &listen,
            "--template-dir",
            d.join("no-such-templates").to_str().unwrap(),
        ],
    );
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("no-such-templates"), "{stderr}");
    assert!(!d.join("pwmail-data").exists(), "nothing created: {stderr}");
    // One without the other is a usage error.
    let (code, stderr) = run_to_exit(
        d,
        &["serve", "--listen", &listen, "--tls-cert", &s(&good.cert)],
    );
    assert!(code != Some(0) && stderr.contains("--tls-key"), "{stderr}");
}

/// A file that is not a CSV of addresses (`/dev/zero`: one endless line)
/// is refused as soon as its first line passes 64 KiB, by `user import` and
/// `send --from-csv` alike, instead of being read into memory.
#[test]
fn csv_input_is_streamed_and_an_endless_line_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, stderr) = run_to_exit(d, &["migrate"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = run_to_exit(d, &["user", "import", "/dev/zero"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("a line longer than 64 KiB"), "{stderr}");
    let token = d.join("token");
    std::fs::write(&token, "pwm_x").unwrap();
    let (code, stderr) = run_to_exit(
        d,
        &[
            "send",
            "--server",
            "http://127.0.0.1:9",
            "--token-file",
            token.to_str().unwrap(),
            "--from-csv",
            "/dev/zero",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("a line longer than 64 KiB"), "{stderr}");
}

/// A TLS key other users can read is named in a warning at start (the
/// server still starts: the operator decides).
#[test]
fn serve_warns_about_a_tls_key_others_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pair = pwmail_testkit::tls::TestCa::new("cli").issue(d);
    std::fs::set_permissions(&pair.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (cert, key) = (pair.cert.to_str().unwrap(), pair.key.to_str().unwrap());
    let (_child, _token, _listen) = start_serve(
        d,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ],
        &[],
    );
    let log = std::fs::read_to_string(d.join("serve.log")).unwrap();
    let warning = log
        .lines()
        .find(|l| l.contains("readable by other users") && l.contains(key))
        .unwrap_or_else(|| panic!("no warning naming {key}:\n{log}"));
    assert!(warning.contains("644"), "{warning}");
    assert!(
        warning.contains("it is the TLS private key") && !warning.contains("reset links"),
        "{warning}"
    );
}

/// So are a DKIM key and the hook's secret file.
#[test]
fn serve_warns_about_a_dkim_key_and_hook_secret_others_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, _) = pwmail_testkit::openssl_dkim_key(d, pwmail_testkit::KeyAlgorithm::Ed25519);
    let secret = d.join("hook.secret");
    std::fs::write(&secret, pwmail_testkit::hook::SECRET).unwrap();
    for file in [&key, &secret] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let (key, secret) = (key.to_str().unwrap(), secret.to_str().unwrap());
    let (_child, _token, _listen) = start_serve(
        d,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dkim-key",
            key,
            "--dkim-selector",
            "s1",
            "--mail-from",
            "pwmail <no-reply@pwmail.test>",
            "--mail-webhook-url",
            "http://127.0.0.1:9/hook",
            "--mail-webhook-secret-file",
            secret,
        ],
        &[],
    );
    let log = std::fs::read_to_string(d.join("serve.log")).unwrap();
    for file in [key, secret] {
        let warning = log
            .lines()
            .find(|l| l.contains("readable by other users") && l.contains(file))
            .unwrap_or_else(|| panic!("no warning naming {file}:\n{log}"));
        assert!(warning.contains("640"), "{warning}");
        assert!(warning.contains("it holds a secret"), "{warning}");
    }
    // The start line says DKIM is on, never the key.
    let serving = log.lines().find(|l| l.contains("pwmail serving")).unwrap();
    assert!(
        serving.contains("ed25519-sha256") && serving.contains("s1"),
        "{serving}"
    );
    assert!(!log.contains("PRIVATE KEY") && !log.contains(&pwmail_testkit::hook::SECRET[6..]));
}

/// A template that fails for one user (here: only for a user named
/// "Broken") makes that user's email dead, with its link revoked and the
/// template's error recorded; another user's email from the same templates
/// goes out.
#[test]
fn a_template_failing_for_one_user_makes_that_email_dead_and_revokes_its_link() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
    assert!(pwmail(d, &["user", "add", "hello@example.com"]).0);
    assert!(
        pwmail(
            d,
            &["user", "add", "broken@example.com", "--name", "Broken"]
        )
        .0
    );
    std::fs::create_dir(d.join("templates")).unwrap();
    std::fs::write(
        d.join("templates/send_password_email.txt"),
        "{% if name == \"Broken\" %}{{ name | int }}{% endif %}Reset: {{ link }}\n",
    )
    .unwrap();
    let (_child, token, listen) = start_serve(
        d,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--template-dir",
            "templates",
        ],
        &[],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for email in ["broken@example.com", "hello@example.com"] {
            let response = client
                .post(format!(
                    "http://{listen}/api/web/custom/namespaces/system/send_password_email"
                ))
                .header("Authorization", format!("APIToken {token}"))
                .json(&serde_json::json!({ "email": email, "namespace": "system" }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{email}");
        }
        let store = common::open_store(d).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let dead = loop {
            let dead = store
                .list_outbox(Some(pwmail_store::OutboxState::Dead), 10)
                .await
                .unwrap();
            if !dead.is_empty() {
                break dead;
            }
            assert!(Instant::now() < deadline, "the broken email never died");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].recipient, "broken@example.com");
        assert_eq!(dead[0].attempts, 1, "not retried: {:?}", dead[0]);
        let error = dead[0].last_error.as_deref().unwrap_or_default();
        assert!(error.contains("send_password_email.txt"), "{error}");
        let broken = store
            .find_user_by_email("broken@example.com")
            .await
            .unwrap()
            .unwrap();
        let audit = store.audit_entries(broken.id).await.unwrap();
        assert_eq!(audit.len(), 1);
        let held = store.outbox_held(dead[0].id).await.unwrap();
        assert_eq!(held, "", "a dead email lets go of its link");
        // Its link is revoked, as another SQLite reader (Python's) sees it.
        let query = format!(
            "import sqlite3; c = sqlite3.connect('file:{}?mode=ro', uri=True); \
             print(c.execute('SELECT count(*), count(revoked_at) FROM reset_links \
             WHERE user_id = {}').fetchone())",
            d.join("pwmail-data/pwmail.db").display(),
            broken.id.0
        );
        let out = std::process::Command::new("python3")
            .args(["-c", &query])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "(1, 1)",
            "{out:?}"
        );
    });
    let eml = wait_for_eml(&d.join("pwmail-data/mail"));
    assert!(eml.contains("To: hello@example.com"), "{eml}");
    assert!(eml.contains("Reset: http://"), "{eml}");
}

/// `mail preview --locale` writes the message in that language (and
/// `--default-locale` is the language without it); a malformed tag is
/// refused.
#[test]
fn mail_preview_writes_the_language_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let preview = |extra: &[&str]| {
        let mut args = vec![
            "mail",
            "preview",
            "--kind",
            "reset-password-by-admin",
            "--to",
            "a@example.com",
        ];
        args.extend_from_slice(extra);
        pwmail(dir.path(), &args)
    };
    let subject = |raw: &str| {
        mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .and_then(|m| m.subject().map(str::to_string))
            .unwrap_or_default()
    };
    let (ok, out, err) = preview(&["--locale", "fr-CA"]);
    assert!(ok, "{err}");
    assert_eq!(
        subject(&out),
        "Votre mot de passe pwmail a été réinitialisé"
    );
    let (ok, out, err) = preview(&["--default-locale", "ja"]);
    assert!(ok, "{err}");
    assert_eq!(subject(&out), "pwmail のパスワードがリセットされました");
    let (ok, out, _) = preview(&[]);
    assert!(ok);
    assert_eq!(subject(&out), "Your pwmail password was reset");
    let (ok, _, err) = preview(&["--locale", "fr_CA"]);
    assert!(!ok);
    assert!(
        err.contains("\"fr_CA\" is not a BCP 47 language tag"),
        "{err}"
    );
}

/// A port nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `pwmail mail test` sends one message through each transport now and
/// says what answered; a refusal or an unreachable relay is an error
/// (exit status 1) that says which and whether the dispatcher would retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_test_sends_one_message_through_each_transport() {
    use pwmail_testkit::hook::{Answer, HookReceiver, SECRET};
    use pwmail_testkit::{SmtpOptions, SmtpServer, header};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let run = |args: Vec<String>| {
        let d = d.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                pwmail(&d, &args)
            })
            .await
            .unwrap()
        }
    };
    let test = |extra: &[&str]| {
        let mut args: Vec<String> = ["mail", "test", "--to", "ops@example.com"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };

    // SMTP: the relay's answer is printed; the message arrived.
    let smtp = SmtpServer::start(SmtpOptions::default());
    let url = smtp.url();
    let (ok, out, err) = run(test(&["--smtp-url", &url])).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "sent to ops@example.com through SMTP relay 127.0.0.1:{}",
            smtp.port
        )),
        "{out}"
    );
    assert!(out.contains("answer: 250"), "{out}");
    let arrived = smtp.messages();
    assert_eq!(arrived.len(), 1);
    assert_eq!(
        header(&arrived[0], "Subject").as_deref(),
        Some("pwmail mail test")
    );
    assert_eq!(
        header(&arrived[0], "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );

    // A 550 is refused for good; a closed port might work later.
    let refusing = SmtpServer::start(SmtpOptions {
        script: vec![550],
        ..SmtpOptions::default()
    });
    let url = refusing.url();
    let (ok, _, err) = run(test(&["--smtp-url", &url])).await;
    assert!(!ok);
    assert!(
        err.contains("550") && err.contains("a permanent failure: the dispatcher would give it up"),
        "{err}"
    );
    let url = format!("smtp://127.0.0.1:{}?tls=none", closed_port());
    let (ok, _, err) = run(test(&["--smtp-url", &url])).await;
    assert!(!ok);
    assert!(
        err.contains("Connection refused") && err.contains("a temporary failure"),
        "{err}"
    );

    // The hook: a signed POST of kind `test`.
    let receiver = HookReceiver::start().await;
    receiver.script([Answer {
        body: "queued as 42".into(),
        ..Answer::status(200)
    }]);
    let secret = d.join("hook.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let (ok, out, err) = run(test(&[
        "--mail-webhook-url",
        &receiver.url(),
        "--mail-webhook-secret-file",
        secret.to_str().unwrap(),
    ]))
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("answer: the mail hook answered HTTP 200 OK: queued as 42"),
        "{out}"
    );
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].verified);
    assert_eq!(got[0].json()["data"]["kind"], "test");
    assert_eq!(got[0].json()["data"]["to"], "ops@example.com");

    // A hook URL holding a token (query, user part) that cannot be
    // reached: the error names the hook without the token.
    let secret_url = format!("http://u:pw@127.0.0.1:{}/hook?token=QTOKEN", closed_port());
    let (ok, out, err) = run(test(&[
        "--mail-webhook-url",
        &secret_url,
        "--mail-webhook-secret-file",
        secret.to_str().unwrap(),
    ]))
    .await;
    assert!(!ok);
    assert!(err.contains("the mail hook http://127.0.0.1:"), "{err}");
    for shown in [&out, &err] {
        assert!(
            !shown.contains("QTOKEN") && !shown.contains("pw@"),
            "{shown}"
        );
    }

    // Without a transport flag: an .eml in the data directory.
    let (ok, out, err) = run(test(&[])).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("through .eml files in pwmail-data/mail"),
        "{out}"
    );
    let written: Vec<_> = std::fs::read_dir(d.join("pwmail-data/mail"))
        .unwrap()
        .collect();
    assert_eq!(written.len(), 1);
}

/// `serve --check-mail` refuses to start when the relay cannot be
/// reached, and says so; without it the server starts and warns.
#[test]
fn serve_check_mail_refuses_an_unreachable_relay_and_otherwise_only_warns() {
    use pwmail_testkit::{SmtpOptions, SmtpServer};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = closed_port();
    let url = format!("smtp://127.0.0.1:{port}?tls=none");
    let (code, err) = run_to_exit(
        d,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--smtp-url",
            &url,
            "--check-mail",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("mail check: SMTP relay 127.0.0.1:{port}: "))
            && err.contains("Connection refused"),
        "{err}"
    );
    assert!(!err.contains("pwmail serving"), "{err}");

    // Reachable: it says what the relay answered, then serves.
    let smtp = SmtpServer::start(SmtpOptions::default());
    let url = smtp.url();
    let (_child, _, _) = start_serve(
        d,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--smtp-url",
            &url,
            "--check-mail",
        ],
        &[],
    );
    let log = std::fs::read_to_string(d.join("serve.log")).unwrap();
    assert!(
        log.contains("mail settings check passed")
            && log.contains(&format!(
                "127.0.0.1:{} answered EHLO (no TLS, PIPELINING offered)",
                smtp.port
            )),
        "{log}"
    );
    drop(_child);

    // Unreachable without the flag: it serves, and warns.
    let other = tempfile::tempdir().unwrap();
    let url = format!("smtp://127.0.0.1:{port}?tls=none");
    let (_child, _, _) = start_serve(
        other.path(),
        &["serve", "--listen", "127.0.0.1:0", "--smtp-url", &url],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(other.path().join("serve.log")).unwrap();
        if log.contains("the mail settings check failed; pwmail serves anyway") {
            assert!(log.contains("Connection refused"), "{log}");
            break;
        }
        assert!(Instant::now() < deadline, "no warning:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `pwmail mail dkim-record` prints the record openssl's own public key
/// gives; a key that is not one, and a bad selector, are refused clearly.
#[test]
fn mail_dkim_record_prints_the_txt_record_to_publish() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, record) = pwmail_testkit::openssl_dkim_key(d, pwmail_testkit::KeyAlgorithm::Ed25519);
    let key = key.to_str().unwrap();
    let (ok, out, err) = pwmail(
        d,
        &[
            "mail",
            "dkim-record",
            "--dkim-key",
            key,
            "--dkim-selector",
            "pw2026",
            "--mail-from",
            "Acme <no-reply@acme.example>",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("pw2026._domainkey.acme.example. IN TXT \"{record}\"")
    );

    std::fs::write(d.join("not-a-key.pem"), "hello").unwrap();
    for (args, says) in [
        (
            vec!["--dkim-key", "not-a-key.pem", "--dkim-selector", "s"],
            "--dkim-key not-a-key.pem: no PEM private key in it",
        ),
        (
            vec!["--dkim-key", key, "--dkim-selector", "bad selector"],
            "--dkim-selector \"bad selector\"",
        ),
        (vec!["--dkim-key", key], "--dkim-selector <DKIM_SELECTOR>"),
    ] {
        let mut all = vec!["mail", "dkim-record"];
        all.extend(args.iter().copied());
        let (ok, _, err) = pwmail(d, &all);
        assert!(!ok, "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// `--check-mail` through the hook (a signed `pwmail.check`) and SES
/// (`GetEmailIdentity` of the sending domain); `mail test` through SES.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_mail_reaches_the_hook_and_ses() {
    use pwmail_testkit::hook::{Answer, HookReceiver, SECRET};
    use pwmail_testkit::ses::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, SesServer};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let run = |args: Vec<String>, envs: Vec<(&'static str, &'static str)>| {
        let d = d.clone();
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_pwmail"));
            command
                .current_dir(&d)
                .args(&args)
                .env_remove("PWMAIL_DATABASE_URL")
                .env_remove("PWMAIL_DATA_DIR")
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .env("HOME", &d)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            for (k, v) in envs {
                command.env(k, v);
            }
            let mut child = KillOnDrop(command.spawn().unwrap());
            // A server that passed its check serves: the log line says so.
            let mut err = String::new();
            let mut reader = BufReader::new(child.stderr.take().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                err.push_str(&line);
                if line.contains("pwmail serving") {
                    break;
                }
                line.clear();
            }
            let status = if err.contains("pwmail serving") {
                None
            } else {
                child.wait().unwrap().code()
            };
            let mut out = String::new();
            if status.is_some() {
                std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
            }
            (status, out, err)
        })
    };
    let serve = |extra: &[&str]| {
        let mut args: Vec<String> = ["serve", "--listen", "127.0.0.1:0", "--check-mail"]
            .map(String::from)
            .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };

    // The hook: its answer decides.
    let receiver = HookReceiver::start().await;
    receiver.script([Answer {
        body: "who are you".into(),
        ..Answer::status(401)
    }]);
    let secret = d.join("hook.secret");
    std::fs::write(&secret, SECRET).unwrap();
    let hook_flags = [
        "--mail-webhook-url",
        &receiver.url(),
        "--mail-webhook-secret-file",
        secret.to_str().unwrap(),
    ]
    .map(String::from);
    let flags: Vec<&str> = hook_flags.iter().map(String::as_str).collect();
    let (status, _, err) = run(serve(&flags), vec![]).await.unwrap();
    assert_eq!(status, Some(1), "{err}");
    assert!(
        err.contains("mail check: the mail hook http://")
            && err.contains("answered HTTP 401 Unauthorized: who are you"),
        "{err}"
    );
    let (status, _, err) = run(serve(&flags), vec![]).await.unwrap();
    assert_eq!(status, None, "{err}");
    assert!(
        err.contains("the mail hook answered HTTP 202 Accepted"),
        "{err}"
    );
    let checks = receiver.received();
    assert_eq!(checks.len(), 2);
    assert!(
        checks
            .iter()
            .all(|c| c.verified && c.json()["type"] == "pwmail.check")
    );
    assert!(
        checks
            .iter()
            .all(|c| c.json()["data"] == serde_json::json!({}))
    );

    // SES: without credentials, it says where it looked.
    let moto = SesServer::start(Some("pwmail.test"));
    let endpoint = moto.endpoint();
    let ses_flags = [
        "--ses-region",
        REGION,
        "--ses-endpoint",
        &endpoint,
        "--mail-from",
        "pwmail <no-reply@pwmail.test>",
    ];
    let (status, _, err) = run(serve(&ses_flags), vec![]).await.unwrap();
    assert_eq!(status, Some(1), "{err}");
    assert!(
        err.contains("no AWS credentials for SES") && err.contains(".aws/credentials"),
        "{err}"
    );
    let creds = vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
    ];
    let (status, _, err) = run(serve(&ses_flags), creds.clone()).await.unwrap();
    assert_eq!(status, None, "{err}");
    assert!(
        err.contains("SES (us-east-1) can send as pwmail.test"),
        "{err}"
    );
    // A domain SES does not know: refused, and said why.
    let mut other = ses_flags.map(String::from).to_vec();
    other[5] = "pwmail <no-reply@unknown.test>".into();
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    let (status, _, err) = run(serve(&other), creds.clone()).await.unwrap();
    assert_eq!(status, Some(1), "{err}");
    assert!(
        err.contains("NotFoundException") && err.contains("verify it in SES"),
        "{err}"
    );

    // `mail test` through SES: its MessageId, and moto has the message.
    let mut args: Vec<String> = ["mail", "test", "--to", "ops@example.com"]
        .map(String::from)
        .to_vec();
    args.extend(ses_flags.map(String::from));
    let (status, out, err) = run(args, creds).await.unwrap();
    assert_eq!(status, Some(0), "{err}");
    assert!(out.contains("answer: SES MessageId "), "{out}");
    let arrived = moto.messages().await;
    assert_eq!(arrived.len(), 1);
    assert!(
        arrived[0].contains("Subject: pwmail mail test"),
        "{}",
        arrived[0]
    );
}

/// `pwmail user list` shows a suppressed user as such; `pwmail user
/// unsuppress` lifts it, saying since when and why; lifting what is not
/// suppressed, or an unknown user, is an error.
#[test]
fn user_unsuppress_lifts_a_suppression_and_says_what_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
    assert!(pwmail(d, &["user", "add", "gone@example.com"]).0);
    // As the dispatcher leaves a user whose address bounced (a 550 at RCPT).
    let db = d.join("pwmail-data/pwmail.db");
    let marked = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
             c.execute(\"UPDATE users SET deliverable = 0, suppressed_at = 1796000000000, \
             suppressed_reason = 'permanent failure: RCPT TO refused: 550 5.1.1 no such user' \
             WHERE email = 'gone@example.com'\"); c.commit()",
        )
        .arg(&db)
        .status()
        .unwrap();
    assert!(marked.success());
    let (ok, list, err) = pwmail(d, &["user", "list"]);
    assert!(ok, "{err}");
    let line = list
        .lines()
        .find(|l| l.contains("gone@example.com"))
        .unwrap();
    assert!(line.contains("suppressed"), "{list}");

    let (ok, out, err) = pwmail(d, &["user", "unsuppress", "Gone@example.com"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "lifted the suppression of Gone@example.com (suppressed since 2026-11-30 \
         00:53 UTC: permanent failure: RCPT TO refused: 550 5.1.1 no such user); calls \
         for it are accepted again"
    );
    let (_, list, _) = pwmail(d, &["user", "list"]);
    let line = list
        .lines()
        .find(|l| l.contains("gone@example.com"))
        .unwrap();
    assert!(line.contains("active"), "{list}");

    let (ok, _, err) = pwmail(d, &["user", "unsuppress", "gone@example.com"]);
    assert!(!ok);
    assert!(
        err.contains("gone@example.com is not suppressed (nothing to lift)"),
        "{err}"
    );
    let (ok, _, err) = pwmail(d, &["user", "unsuppress", "nobody@example.com"]);
    assert!(!ok && err.contains("nobody@example.com"), "{err}");
}

/// `pwmail send --server HOST:PORT` (no scheme) is refused before the run
/// id is printed, not once per row.
#[test]
fn send_refuses_a_server_without_a_scheme_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    for server in ["127.0.0.1:28080", "localhost:28080", "ftp://127.0.0.1"] {
        let out = Command::new(env!("CARGO_BIN_EXE_pwmail"))
            .current_dir(dir.path())
            .args(["send", "--server", server, "--email", "a@example.com"])
            .env("PWMAIL_TOKEN", "pwm_x")
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(!out.status.success());
        assert!(
            stderr.contains(&format!("--server: \"{server}\" is not a server URL"))
                && stderr.contains("http://127.0.0.1:8080"),
            "{stderr}"
        );
        assert!(!stdout.contains("run id"), "{stdout}");
    }
}

/// The packaged example, every line uncommented, is a working settings
/// file (its blank values are unset); a bad value in a file is reported
/// with the file and the key it came from.
#[test]
fn settings_file_errors_name_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let example =
        std::fs::read_to_string(pwmail_testkit::workspace().join("packaging/pwmail.toml")).unwrap();
    let all: String = example
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| l.contains(" = "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(d.join("all.toml"), all).unwrap();
    let (ok, out, err) = pwmail(
        d,
        &[
            "--config",
            "all.toml",
            "mail",
            "preview",
            "--kind",
            "send-password-email",
            "--to",
            "a@example.com",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("Subject: Set your pwmail password"), "{out}");

    for (line, says) in [
        (
            "smtp_url = \"nope\"",
            "pwmail: bad.toml: smtp_url: --smtp-url: relative URL without a base",
        ),
        (
            "link_ttl_secs = \"soon\"",
            "pwmail: bad.toml: link_ttl_secs: invalid value 'soon' for '--link-ttl-secs",
        ),
    ] {
        std::fs::write(d.join("bad.toml"), format!("{line}\n")).unwrap();
        let (code, err) = run_to_exit(
            d,
            &["--config", "bad.toml", "serve", "--listen", "127.0.0.1:0"],
        );
        assert_ne!(code, Some(0));
        assert!(err.starts_with(says), "{line}: {err}");
    }
}

/// Start-up errors name the thing and the fix once: a missing file, a
/// database that does not exist or does not answer (where, never the
/// password, never PostgreSQL's source line), an address in use, an SMTP
/// URL's tls option. None of them leaves a data directory behind.
#[test]
fn start_up_errors_say_what_and_where_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pg = std::env::var("PWMAIL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let (base, _) = pg.rsplit_once('/').unwrap();
    let missing_db = format!("{base}/pwmail_no_such_db_{}", std::process::id());
    let closed = closed_port();
    let refused = format!("postgres://postgres:Secr3tPw@127.0.0.1:{closed}/x");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        run_to_exit(d, &args)
    };
    let (_, err) = serve(&["--tls-cert", "nope.pem", "--tls-key", "nope.key"]);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(
        err.contains("reading the TLS certificate nope.pem"),
        "{err}"
    );

    let (_, err) = serve(&["--database-url", &missing_db]);
    let db_name = missing_db.rsplit('/').next().unwrap();
    assert!(
        err.contains(&format!(
            "(database {db_name}): database \"{db_name}\" does not exist"
        )),
        "{err}"
    );
    assert!(!err.contains("at line"), "{err}");

    let (_, err) = serve(&["--database-url", &refused]);
    assert!(
        err.contains(&format!("PostgreSQL at 127.0.0.1:{closed} (database x)"))
            && err.contains("Connection refused"),
        "{err}"
    );
    assert!(!err.contains("Secr3tPw"), "{err}");
    assert!(
        !d.join("pwmail-data").exists(),
        "nothing created on the way"
    );

    // (The SQLite database is opened before the listener binds: this one
    // leaves it behind.)
    let (_, err) = run_to_exit(d, &["serve", "--listen", &taken_addr]);
    assert!(
        err.contains(&format!(
            "listening on {taken_addr}: Address already in use"
        )),
        "{err}"
    );

    let (_, err) = serve(&["--smtp-url", "smtp://relay.example.com?tls=nope"]);
    assert!(
        err.contains(
            "smtp://…?tls=nope is not a way to reach a relay; use smtp://…?tls=starttls|tls|none"
        ),
        "{err}"
    );
}

/// Each command's help lists its own options: `send` (an HTTP client) no
/// database flags, admin commands the database but not the server's pool,
/// `serve` and `dispatch` all of them.
#[test]
fn each_commands_help_shows_only_its_own_options() {
    let dir = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push("--help");
        let (ok, out, err) = pwmail(dir.path(), &all);
        assert!(ok, "{err}");
        out
    };
    let database = ["--data-dir", "--database-url"];
    let pool = ["--db-pool-size", "--db-acquire-timeout-ms"];
    for command in [
        &["send"][..],
        &["mail", "preview"],
        &["mail", "dkim-record"],
    ] {
        let out = help(command);
        for flag in database.iter().chain(&pool) {
            assert!(!out.contains(flag), "{command:?} shows {flag}:\n{out}");
        }
    }
    for command in [
        &["user", "add"][..],
        &["token", "create"],
        &["outbox", "list"],
        &["audit", "list"],
        &["purge"],
        &["migrate"],
    ] {
        let out = help(command);
        for flag in database {
            assert!(out.contains(flag), "{command:?} lacks {flag}");
        }
        for flag in pool {
            assert!(!out.contains(flag), "{command:?} shows {flag}:\n{out}");
        }
    }
    for command in [&["serve"][..], &["dispatch"]] {
        let out = help(command);
        for flag in database.iter().chain(&pool) {
            assert!(out.contains(flag), "{command:?} lacks {flag}");
        }
    }
}

/// `pwmail user update` changes name, address, language, admin role and
/// enabled state, says what it changed, audits each change once, and
/// refuses a taken or malformed address and an unknown user.
#[test]
fn user_update_changes_a_user_and_says_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
    for email in ["a@example.com", "b@example.com"] {
        assert!(pwmail(d, &["user", "add", email]).0);
    }
    let update = |args: &[&str]| {
        let mut all = vec!["user", "update"];
        all.extend_from_slice(args);
        pwmail(d, &all)
    };
    let (ok, out, err) = update(&[
        "A@example.com",
        "--name",
        "Ada L",
        "--locale",
        "de-at",
        "--admin",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "updated user a@example.com: name \"Ada L\", language de-AT, admin"
    );
    let (ok, out, _) = update(&["a@example.com", "--email", "c@example.com", "--disable"]);
    assert!(ok);
    assert!(
        out.contains("address c@example.com (its open links are revoked)")
            && out.contains("disabled (tokens and open links revoked)"),
        "{out}"
    );
    let (ok, out, _) = update(&[
        "c@example.com",
        "--enable",
        "--no-admin",
        "--no-name",
        "--locale",
        "default",
    ]);
    assert!(ok);
    assert_eq!(
        out.trim(),
        "updated user c@example.com: no name, language the server's default, not an admin, enabled"
    );
    let (ok, out, _) = update(&["c@example.com", "--enable"]);
    assert!(ok && out.contains("unchanged"), "{out}");
    let (_, list, _) = pwmail(d, &["user", "list"]);
    let line = list.lines().find(|l| l.contains("c@example.com")).unwrap();
    assert!(line.contains("active") && line.contains(" no "), "{list}");
    assert!(!list.contains("a@example.com"), "{list}");

    for (args, says) in [
        (
            &["c@example.com", "--email", "b@example.com"][..],
            "a user with email b@example.com already exists",
        ),
        (
            &["nobody@example.com", "--admin"],
            "no user with email nobody@example.com",
        ),
        (
            &["c@example.com", "--email", "bad addr"],
            "invalid email \"bad addr\"",
        ),
        (
            &["c@example.com", "--admin", "--no-admin"],
            "cannot be used with",
        ),
    ] {
        let (ok, _, err) = update(args);
        assert!(!ok && err.contains(says), "{args:?}: {err}");
    }
    // Each change is one audit row.
    let rows = audit_json(d, &["--user", "c@example.com"]);
    let ops: Vec<&str> = rows
        .iter()
        .map(|r| r["operation"].as_str().unwrap())
        .collect();
    for op in [
        "admin_granted",
        "email_changed",
        "disabled",
        "enabled",
        "admin_revoked",
    ] {
        assert_eq!(ops.iter().filter(|o| **o == op).count(), 1, "{op}: {ops:?}");
    }
    assert_eq!(
        ops.iter().filter(|o| **o == "locale_changed").count(),
        2,
        "{ops:?}"
    );
}

/// `pwmail events list` shows what waits for the receiver (as text and as
/// JSON), `--state failed` what was given up, and `events retry` queues
/// the failed ones again. The events are the database's own: written here
/// by its triggers as an admin command suppresses and lifts.
#[test]
fn events_list_shows_what_waits_and_retry_sends_failed_ones_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pwmail(d, &["migrate"]).0);
    assert!(pwmail(d, &["user", "add", "gone@example.com"]).0);
    let (ok, out, err) = pwmail(d, &["events", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains("events are off"), "{out}");
    let db = d.join("pwmail-data/pwmail.db");
    let sql = |statement: &str| {
        let done = Command::new("python3")
            .arg("-c")
            .arg("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()")
            .arg(&db)
            .arg(statement)
            .status()
            .unwrap();
        assert!(done.success(), "{statement}");
    };
    // What `serve --events-url` writes at start; then a bounce, as the
    // dispatcher records it.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = format!("sqlite://{}", db.display());
        let store = pwmail_store::open(&url).await.unwrap();
        store
            .set_event_kinds(&[
                pwmail_store::EventKind::UserSuppressed,
                pwmail_store::EventKind::UserUnsuppressed,
            ])
            .await
            .unwrap();
    });
    sql(
        "UPDATE users SET deliverable = 0, suppressed_at = 1796000000000, \
         suppressed_reason = 'permanent failure: 550 5.1.1' WHERE email = 'gone@example.com'",
    );
    assert!(pwmail(d, &["user", "unsuppress", "gone@example.com"]).0);

    let (ok, out, err) = pwmail(d, &["events", "list", "--json"]);
    assert!(ok, "{err}");
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["user.suppressed", "user.unsuppressed"], "{out}");
    assert_eq!(events[0]["reason"], "permanent failure: 550 5.1.1");
    assert_eq!(events[0]["at"], "2026-11-30T00:53:20.000Z");
    assert!(events.iter().all(|e| e["email"] == "gone@example.com"
        && e["state"] == "pending"
        && e["id"].as_str().unwrap().starts_with("evt_")));
    let (ok, out, _) = pwmail(d, &["events", "list"]);
    assert!(ok);
    assert!(
        out.contains("user.suppressed") && out.contains("2 pending, 0 delivering, 0 failed"),
        "{out}"
    );

    sql(
        "UPDATE events SET state = 'failed', attempts = 60, last_error = 'gave up after 60 attempts' \
         WHERE kind = 'user.suppressed'",
    );
    let (_, out, _) = pwmail(d, &["events", "list", "--state", "failed"]);
    assert!(
        out.contains("gave up after 60 attempts") && !out.contains("user.unsuppressed"),
        "{out}"
    );
    let (ok, out, err) = pwmail(d, &["events", "retry"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("1 failed events queued again"), "{out}");
    let (_, out, _) = pwmail(d, &["events", "list", "--state", "failed", "--json"]);
    assert_eq!(out.trim(), "", "none failed now");
    let (ok, _, err) = pwmail(d, &["events", "list", "--state", "done"]);
    assert!(
        !ok && err.contains("pending, delivering or failed"),
        "{err}"
    );
}

/// `pwmail user delete` removes a user with what is theirs and says so;
/// the audit log keeps their address; the only admin is never deleted.
#[test]
fn user_delete_removes_a_user_and_the_audit_log_keeps_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    with_ops_admin(d);
    assert!(pwmail(d, &["user", "add", "del@example.com", "--admin"]).0);
    let (ok, token, err) = pwmail(d, &["token", "create", "del@example.com"]);
    assert!(ok && token.trim().len() > 20, "{err}");

    let (ok, out, err) = pwmail(d, &["user", "delete", "Del@example.com"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "deleted user del@example.com (id 2) with 1 API token, 0 links and 0 unsent emails; \
         their sent emails stay without them, and 0 audit rows about or by them keep the address"
    );
    let (_, list, _) = pwmail(d, &["user", "list"]);
    assert!(!list.contains("del@example.com"), "{list}");
    let rows = audit_json(d, &["--user", "del@example.com"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["operation"], "user_deleted");
    assert_eq!(rows[0]["target_email"], "del@example.com");

    let (ok, _, err) = pwmail(d, &["user", "delete", "ops@example.com"]);
    assert!(!ok);
    assert!(
        err.contains("ops@example.com is the only admin; make another user admin first"),
        "{err}"
    );
    let (ok, _, err) = pwmail(d, &["user", "delete", "del@example.com"]);
    assert!(!ok && err.contains("del@example.com"), "{err}");
}
