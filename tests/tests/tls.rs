//! Built-in HTTPS: `pwmail serve` with a certificate from a private CA,
//! called by the generated client that trusts that CA, by a downstream
//! program that uses only `pwmail-client`, and refused by a client that
//! does not trust it. Also the served contract, `/openapi.json`.

use std::path::PathBuf;
use std::time::Duration;

use pwmail_client::types::{ResetPasswordByAdminRequest, SendPasswordEmailRequest};
use pwmail_client::{Builder, CallError};
use pwmail_server::tls::TlsFiles;
use pwmail_testkit::tls::{TestCa, TlsPair};
use pwmail_tests::{DEADLINE, Options, TestServer};

async fn https_server(pair: &TlsPair) -> TestServer {
    TestServer::start_with(Options {
        // Two calls for one user in a row: no cooldown in the way.
        user_rate: (100, 1),
        tls: Some(TlsFiles {
            cert: pair.cert.clone(),
            key: pair.key.clone(),
        }),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn the_generated_client_calls_both_operations_over_https_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pair = TestCa::new("pwmail").issue(dir.path());
    let server = https_server(&pair).await;
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    server.add_user("user@example.com", false).await;

    let client = Builder::new(&server.url)
        .api_token(&server.admin_token)
        .ca_file(&pair.ca)
        .build()
        .unwrap();
    let reset = client
        .reset_password_by_admin()
        .body(ResetPasswordByAdminRequest::builder().email("user@example.com"))
        .send()
        .await
        .expect("reset over https");
    assert_eq!(reset.status().as_u16(), 200);
    let send = client
        .send_password_email_system()
        .body(SendPasswordEmailRequest::builder().email("user@example.com"))
        .send()
        .await
        .expect("send over https");
    assert_eq!(send.status().as_u16(), 200);
    let status = client
        .get_password_email_status()
        .email("user@example.com")
        .send()
        .await
        .expect("status over https");
    assert_eq!(status.items.len(), 2, "{:?}", status.items);

    let emails = server.wait_for_emails(2, DEADLINE).await;
    assert_eq!(emails.len(), 2);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_is_refused_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let pair = TestCa::new("pwmail").issue(dir.path());
    let server = https_server(&pair).await;
    server.add_user("user@example.com", false).await;
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, TestCa::new("other").pem()).unwrap();

    for builder in [
        // The system roots only.
        Builder::new(&server.url),
        // A CA, but not the one that issued the server's certificate.
        Builder::new(&server.url).ca_file(&other_ca),
    ] {
        let client = builder.api_token(&server.admin_token).build().unwrap();
        let err = client
            .reset_password_by_admin()
            .body(ResetPasswordByAdminRequest::builder().email("user@example.com"))
            .send()
            .await
            .expect_err("an untrusted certificate is refused");
        let text = err.to_string();
        assert!(matches!(err, CallError::Transport(_)), "{text}");
        assert!(
            text.contains("certificate") && text.contains("UnknownIssuer"),
            "the message names the certificate problem: {text}"
        );
    }
    assert!(
        server.read_all_outbox().await.is_empty(),
        "nothing was queued"
    );
}

#[tokio::test]
async fn plain_http_to_the_https_port_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let pair = TestCa::new("pwmail").issue(dir.path());
    let server = https_server(&pair).await;
    let plain = server.url.replace("https://", "http://");
    let result = reqwest::Client::new()
        .get(format!("{plain}/livez"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        result.is_err(),
        "a plain HTTP request gets no HTTP answer: {result:?}"
    );
}

/// The example program in `crates/pwmail-client/examples/consumer.rs`,
/// which this package also builds as its binary `consumer`.
fn consumer_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_consumer"))
}

#[tokio::test]
async fn a_downstream_program_calls_pwmail_over_https_with_only_the_client_crate() {
    let dir = tempfile::tempdir().unwrap();
    let pair = TestCa::new("pwmail").issue(dir.path());
    let server = TestServer::start_with(Options {
        tls: Some(TlsFiles {
            cert: pair.cert.clone(),
            key: pair.key.clone(),
        }),
        ..Options::default()
    })
    .await;
    server.add_user("user@example.com", false).await;
    let out = tokio::process::Command::new(consumer_binary())
        .arg("user@example.com")
        .env("PWMAIL_SERVER", &server.url)
        .env("PWMAIL_TOKEN", &server.admin_token)
        .env("PWMAIL_CA_FILE", &pair.ca)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Shown with --nocapture: what a downstream program prints.
    eprintln!("consumer output:\n{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "reset_password_by_admin: HTTP 200", "{stdout}");
    // The default cooldown (1 email per user per 60 s) refuses the second
    // email: the program matched the 429 and read its Retry-After.
    assert!(
        lines[1].starts_with("send_password_email: HTTP 429 (code 8): ")
            && lines[1].contains("retry_after="),
        "{stdout}"
    );
    let wait: u64 = lines[1].rsplit('=').next().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{stdout}");
    // One email, in whatever state delivery has reached by now.
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        ["queued", "sending", "sent"].iter().any(|state| lines[2]
            == format!("email_status: reset_password_by_admin {state} user@example.com")),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_served_contract_is_the_source_document() {
    let server = TestServer::start().await;
    let response = reqwest::get(server.endpoint("/openapi.json"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "no token needed");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        header("cache-control").starts_with("public"),
        "{}",
        header("cache-control")
    );
    assert_eq!(header("content-type"), "application/json");
    let served: serde_json::Value = response.json().await.unwrap();
    let source: serde_json::Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../openapi/pwmail.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(served, source);
}

/// Over HTTPS every response carries `Strict-Transport-Security`, whoever
/// made it: an API answer, the reset page, an unknown path dropshot
/// answered itself. Plain HTTP (behind a proxy) carries none.
#[tokio::test]
async fn https_responses_carry_strict_transport_security() {
    let dir = tempfile::tempdir().unwrap();
    let pair = TestCa::new("pwmail").issue(dir.path());
    let server = https_server(&pair).await;
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&pair.ca).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    for path in [
        "/livez",
        "/reset/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/api/web/custom/password/email_status",
        "/no/such/path",
    ] {
        let response = client.get(server.endpoint(path)).send().await.unwrap();
        assert_eq!(
            response
                .headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some("max-age=31536000"),
            "{path}: {}",
            response.status()
        );
    }
    let plain = pwmail_tests::TestServer::start().await;
    let response = reqwest::get(plain.endpoint("/livez")).await.unwrap();
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
    plain.stop().await;
    server.stop().await;
}
