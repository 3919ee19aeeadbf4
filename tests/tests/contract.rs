//! The generated client against the real server: what a caller relies on.

use std::time::Duration;

use pwmail_client::CallError;
use pwmail_client::types::{ResetPasswordByAdminRequest, SendPasswordEmailRequest};
use pwmail_store::{AuditOutcome, LinkPurpose, LinkState, OutboxState};
use pwmail_tests::{DEADLINE, KNOWN_HASH, Options, TestServer, header, link_token, now};

const SEND_PATH: &str = "/api/web/custom/namespaces/system/send_password_email";
const RESET_PATH: &str = "/api/web/custom/password/admin_reset";

fn send_body(email: &str) -> pwmail_client::types::builder::SendPasswordEmailRequest {
    SendPasswordEmailRequest::builder()
        .email(email)
        .namespace(Some("system".try_into().unwrap()))
}

fn reset_body(email: &str) -> pwmail_client::types::builder::ResetPasswordByAdminRequest {
    ResetPasswordByAdminRequest::builder().email(email)
}

/// What a refusal carries besides its status, code and message.
#[derive(Debug)]
struct Refusal {
    retry_after: Option<u64>,
    request_id: Option<String>,
}

/// Status, gRPC code and message of an error the client returned.
fn error_of<T: std::fmt::Debug>(result: Result<T, CallError>) -> (u16, i32, String, Refusal) {
    match result {
        Err(CallError::Api {
            status,
            code,
            message,
            retry_after_secs,
            request_id,
        }) => (
            status,
            code,
            message,
            Refusal {
                retry_after: retry_after_secs,
                request_id,
            },
        ),
        other => panic!("expected an error response, got {other:?}"),
    }
}

/// A raw POST, for bodies the typed client refuses to build.
async fn raw_post(
    server: &TestServer,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let mut request = reqwest::Client::new()
        .post(server.endpoint(path))
        .header("Authorization", format!("APIToken {}", server.admin_token))
        .body(body);
    if let Some(ct) = content_type {
        request = request.header("Content-Type", ct);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let json = response.json().await.expect("JSON error body");
    (status, json, headers)
}

fn assert_error_shape(body: &serde_json::Value, code: i64, message_part: &str) {
    let obj = body.as_object().expect("object");
    assert_eq!(obj.len(), 3, "exactly code, details, message: {body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["details"], serde_json::json!([]), "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains(message_part),
        "{message:?} lacks {message_part:?}"
    );
}

#[tokio::test]
async fn send_password_email_queues_a_link_and_writes_the_eml() {
    let server = TestServer::start().await;
    let user = server.add_user("hello@example.com", false).await;

    let response = server
        .client()
        .send_password_email_system()
        .body(send_body("hello@example.com"))
        .send()
        .await
        .expect("200");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["deprecation"], "@1642118400");
    assert_eq!(
        response.headers()["link"],
        "</api/web/custom/password/admin_reset>; rel=\"successor-version\""
    );
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(response.into_inner().is_empty(), "body is {{}}");

    let emails = server.wait_for_emails(1, DEADLINE).await;
    assert_eq!(emails.len(), 1, "one .eml");
    let eml = &emails[0];
    assert_eq!(header(eml, "To"), Some("hello@example.com"));
    assert_eq!(header(eml, "From"), Some("pwmail <no-reply@pwmail.test>"));
    assert_eq!(header(eml, "Subject"), Some("Set your pwmail password"));
    let message_id = header(eml, "Message-ID").expect("Message-ID");
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@pwmail.test>"),
        "{message_id}"
    );
    assert!(
        header(eml, "Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    assert!(eml.contains("expires in 24 hours"), "expiry stated");
    assert!(eml.contains("your current password keeps working"));

    let token = link_token(eml).expect("link in the email");
    assert_eq!(token.len(), 43, "{token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let link = server
        .store()
        .find_link(&pwmail_server::secrets::hash(&token))
        .await
        .unwrap()
        .expect("the emailed token is stored (as its hash)");
    assert_eq!(link.state, LinkState::Open);
    assert_eq!(link.user_id, user.id);
    assert_eq!(link.purpose, LinkPurpose::SendPasswordEmail);
    // Written when sent, from what was stored when the link was issued.
    // English as CLDR writes it ("Dec 7, 2026, 2:05\u{202f}PM UTC"),
    // written here with chrono, not with the server's formatter.
    let until = chrono::DateTime::from_timestamp_millis(link.expires_at)
        .unwrap()
        .format("%b %-d, %Y, %-I:%M\u{202f}%p UTC")
        .to_string();
    let text = pwmail_tests::read_letter(eml).text;
    assert!(
        text.contains(&format!("(at {until})")),
        "the link's own expiry, {until}: {text}"
    );
    let ttl = link.expires_at - link.created_at;
    assert_eq!(ttl, 24 * 3600 * 1000);

    let audit = server.store().audit_entries(user.id).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].operation, "send_password_email");
    assert_eq!(audit[0].request_id, request_id);

    // The file is written before the row is settled: wait for the state.
    let sent = server.wait_for_outbox(OutboxState::Sent, 1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].request_id.as_deref(), Some(request_id.as_str()));
    server.stop().await;
}

#[tokio::test]
async fn reset_password_by_admin_invalidates_the_password_and_older_links() {
    let server = TestServer::start_with(Options {
        user_rate: (10, 60),
        ..Options::default()
    })
    .await;
    let user = server.add_user("carol@example.com", false).await;
    server
        .store()
        .set_password_hash(
            user.id,
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            now(),
        )
        .await
        .unwrap();

    server
        .client()
        .send_password_email_system()
        .body(send_body("carol@example.com"))
        .send()
        .await
        .expect("first email");
    let first = server.wait_for_emails(1, DEADLINE).await;
    let first_token = link_token(&first[0]).unwrap();
    assert!(
        server
            .store()
            .password_hash(user.id)
            .await
            .unwrap()
            .is_some(),
        "SendPasswordEmail keeps the current password"
    );

    let response = server
        .client()
        .reset_password_by_admin()
        .body(reset_body("carol@example.com"))
        .send()
        .await
        .expect("200");
    assert!(
        response.headers().get("deprecation").is_none(),
        "the successor is not deprecated"
    );
    assert!(response.into_inner().is_empty());

    assert_eq!(
        server.store().password_hash(user.id).await.unwrap(),
        None,
        "ResetPasswordByAdmin invalidates the password at once"
    );
    let emails = server.wait_for_emails(2, DEADLINE).await;
    assert_eq!(emails.len(), 2);
    let second = emails
        .iter()
        .find(|e| header(e, "Subject") == Some("Your pwmail password was reset"))
        .expect("reset email");
    let second_token = link_token(second).unwrap();
    let old = server
        .store()
        .find_link(&pwmail_server::secrets::hash(&first_token))
        .await
        .unwrap()
        .unwrap();
    let new = server
        .store()
        .find_link(&pwmail_server::secrets::hash(&second_token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        old.state,
        LinkState::Revoked,
        "the newer link revokes the older"
    );
    assert_eq!(new.state, LinkState::Open);
    assert_eq!(new.purpose, LinkPurpose::ResetPasswordByAdmin);
    let ops: Vec<String> = server
        .store()
        .audit_entries(user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.operation)
        .collect();
    assert_eq!(ops, ["send_password_email", "reset_password_by_admin"]);
    server.stop().await;
}

#[tokio::test]
async fn email_lookup_is_case_insensitive_and_mails_the_stored_address() {
    let server = TestServer::start().await;
    server.add_user("Dave.Smith@Example.com", false).await;
    server
        .client()
        .reset_password_by_admin()
        .body(reset_body("dave.smith@EXAMPLE.COM"))
        .send()
        .await
        .expect("200");
    let emails = server.wait_for_emails(1, DEADLINE).await;
    assert_eq!(header(&emails[0], "To"), Some("Dave.Smith@Example.com"));
    server.stop().await;
}

#[tokio::test]
async fn seed_curl_request_shape_works_over_raw_http() {
    let server = TestServer::start().await;
    server.add_user("hello@example.com", false).await;
    // The seed page's curl, pointed at localhost.
    let response = reqwest::Client::new()
        .post(server.endpoint(SEND_PATH))
        .header("Authorization", format!("APIToken {}", server.admin_token))
        .header("Content-Type", "application/json")
        .body(r#"{ "email": "hello@example.com", "namespace": "system" }"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.unwrap(), "{}");
    assert_eq!(server.wait_for_emails(1, DEADLINE).await.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn invalid_input_is_400_in_the_error_shape_and_writes_nothing() {
    let server = TestServer::start().await;
    let user = server.add_user("hello@example.com", false).await;
    server.set_known_password(user.id).await;
    let json = Some("application/json");
    let cases: Vec<(&str, Option<&str>, String, &str)> = vec![
        (
            SEND_PATH,
            json,
            "{not json".into(),
            "unable to parse JSON body",
        ),
        (
            SEND_PATH,
            Some("text/plain"),
            r#"{"email":"hello@example.com"}"#.into(),
            "unsupported content-type",
        ),
        (
            SEND_PATH,
            json,
            r#"{"namespace":"system"}"#.into(),
            "missing field `email`",
        ),
        (
            SEND_PATH,
            json,
            r#"{"email":"not-an-email","namespace":"system"}"#.into(),
            "doesn't match pattern",
        ),
        (
            SEND_PATH,
            json,
            format!(r#"{{"email":"{}@example.com"}}"#, "a".repeat(1020)),
            "longer than 1024 characters",
        ),
        (
            SEND_PATH,
            json,
            r#"{"email":"hello@example.com","namespace":"sys"}"#.into(),
            "shorter than 6",
        ),
        (
            RESET_PATH,
            json,
            r#"{"email":"hello@localhost"}"#.into(),
            "doesn't match pattern",
        ),
        (RESET_PATH, json, "[]".into(), "unable to parse JSON body"),
        // `namespace` is an optional string, not a nullable one (found by
        // conformance once valid calls reached a real user).
        (
            SEND_PATH,
            json,
            r#"{"email":"hello@example.com","namespace":null}"#.into(),
            "namespace: null is not allowed",
        ),
        (
            RESET_PATH,
            json,
            r#"{"email":null}"#.into(),
            "email: null is not allowed",
        ),
    ];
    for (path, content_type, body, expected) in cases {
        let (status, body_json, _) = raw_post(&server, path, content_type, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_error_shape(&body_json, 3, expected);
    }

    // Namespace rules. The typed client cannot even build a namespace other
    // than "system", so these go raw.
    let (status, body_json, headers) = raw_post(
        &server,
        "/api/web/custom/namespaces/default/send_password_email",
        json,
        r#"{"email":"hello@example.com","namespace":"system"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_error_shape(
        &body_json,
        3,
        "namespace must be \"system\", got \"default\"",
    );
    assert_eq!(
        headers["deprecation"], "@1642118400",
        "errors of the deprecated operation say so too"
    );
    let (status, body_json, _) = raw_post(
        &server,
        SEND_PATH,
        json,
        r#"{"email":"hello@example.com","namespace":"default"}"#,
    )
    .await;
    assert_eq!(status, 400, "body namespace other than the path's");
    assert_error_shape(
        &body_json,
        3,
        "namespace: doesn't match pattern \"^system$\"",
    );

    assert!(server.read_all_outbox().await.is_empty(), "nothing queued");
    assert!(
        server
            .store()
            .audit_entries(user.id)
            .await
            .unwrap()
            .is_empty(),
        "nothing audited"
    );
    assert_eq!(
        server
            .store()
            .password_hash(user.id)
            .await
            .unwrap()
            .as_deref(),
        Some(KNOWN_HASH),
        "no refused ResetPasswordByAdmin cleared the password"
    );
    server.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let server = TestServer::start().await;
    // Larger than any legal request (16 KiB limit).
    let body = format!(
        r#"{{"email":"hello@example.com","namespace":"{}"}}"#,
        "s".repeat(20_000)
    );
    let (status, json, _) = raw_post(&server, SEND_PATH, Some("application/json"), body).await;
    assert_eq!(status, 413);
    assert_error_shape(&json, 3, "exceeded maximum size of 16384 bytes");

    // The largest legal request still fits.
    server.add_user("hello@example.com", false).await;
    let body = format!(
        r#"{{"email":"hello@example.com","namespace":"{}"}}"#,
        "\\u00e9".repeat(1024)
    );
    let (status, json, _) = raw_post(&server, SEND_PATH, Some("application/json"), body).await;
    assert_eq!(status, 400, "reaches validation, not the size limit");
    assert_error_shape(&json, 3, "namespace: doesn't match pattern");
    server.stop().await;
}

#[tokio::test]
async fn authentication_and_authorization() {
    let clock = std::sync::Arc::new(pwmail_server::clock::ManualClock::new(now()));
    let server = TestServer::start_with(Options {
        clock: Some(std::sync::Arc::clone(&clock)),
        ..Options::default()
    })
    .await;
    let trusted_for = pwmail_server::config::ServerConfig::default()
        .auth_cache_ttl
        .as_millis() as i64;
    assert!(trusted_for > 0, "the default trusts a token for a while");
    server.add_user("hello@example.com", false).await;
    server.add_user("member@example.com", false).await;
    let body = send_body("hello@example.com");

    let (status, code, message, _) = error_of(
        server
            .anonymous_client()
            .send_password_email_system()
            .body(body.clone())
            .send()
            .await,
    );
    assert_eq!((status, code), (401, 16));
    assert!(
        message.contains("missing Authorization header"),
        "{message}"
    );

    let response = reqwest::Client::new()
        .post(server.endpoint(SEND_PATH))
        .header("Authorization", format!("Bearer {}", server.admin_token))
        .json(&serde_json::json!({"email": "hello@example.com", "namespace": "system"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_error_shape(&json, 16, "malformed Authorization header");

    for bad in ["pwm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "garbage"] {
        let (status, code, message, _) = error_of(
            server
                .client_with(bad)
                .send_password_email_system()
                .body(body.clone())
                .send()
                .await,
        );
        assert_eq!((status, code), (401, 16));
        assert_eq!(message, "unknown or revoked API token");
    }

    let member = server.token_for("member@example.com").await;
    let (status, code, message, _) = error_of(
        server
            .client_with(&member)
            .send_password_email_system()
            .body(body.clone())
            .send()
            .await,
    );
    assert_eq!((status, code), (403, 7));
    assert!(message.contains("not an admin"), "{message}");

    // Revocation (by another process: the CLI, a replica) takes effect
    // within the stated bound, `auth_cache_ttl`, and not before: the
    // cache is really in use.
    server.add_user("second-admin@example.com", true).await;
    let token = server.token_for("second-admin@example.com").await;
    let client = server.client_with(&token);
    client
        .reset_password_by_admin()
        .body(reset_body("hello@example.com"))
        .send()
        .await
        .expect("live token works");
    let tokens = pwmail_server::app::users::list_tokens(server.store(), "second-admin@example.com")
        .await
        .unwrap();
    pwmail_server::app::users::revoke_token(server.store(), tokens[0].id, now())
        .await
        .unwrap();
    clock.advance_ms(trusted_for - 1);
    client
        .send_password_email_system()
        .body(send_body("member@example.com"))
        .send()
        .await
        .expect("still trusted within the bound");
    clock.advance_ms(1);
    let (status, code, message, _) = error_of(
        client
            .send_password_email_system()
            .body(send_body("member@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (401, 16));
    assert_eq!(message, "unknown or revoked API token");

    // A disabled admin's tokens stop working too, within the same bound.
    pwmail_server::app::users::disable_user(server.store(), pwmail_tests::ADMIN, now())
        .await
        .unwrap();
    clock.advance_ms(trusted_for);
    let (status, _, _, _) = error_of(
        server
            .client()
            .reset_password_by_admin()
            .body(reset_body("member@example.com"))
            .send()
            .await,
    );
    assert_eq!(status, 401);
    server.stop().await;
}

#[tokio::test]
async fn unknown_user_is_404_and_disabled_user_is_409() {
    let server = TestServer::start().await;
    server.add_user("gone@example.com", false).await;
    pwmail_server::app::users::disable_user(server.store(), "gone@example.com", now())
        .await
        .unwrap();

    let (status, code, message, _) = error_of(
        server
            .client()
            .reset_password_by_admin()
            .body(reset_body("nobody@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (404, 5));
    assert_eq!(message, "no user with email nobody@example.com");

    let (status, code, message, _) = error_of(
        server
            .client()
            .send_password_email_system()
            .body(send_body("gone@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (409, 9));
    assert_eq!(message, "the user gone@example.com is disabled");
    assert!(server.read_all_outbox().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn per_user_cooldown_is_429_with_retry_after_and_writes_nothing() {
    let server = TestServer::start().await;
    let user = server.add_user("hello@example.com", false).await;
    server.set_known_password(user.id).await;
    let client = server.client();
    client
        .send_password_email_system()
        .body(send_body("hello@example.com"))
        .send()
        .await
        .expect("first");
    let emails = server.wait_for_emails(1, DEADLINE).await;
    let first_link = pwmail_server::secrets::hash(&link_token(&emails[0]).unwrap());
    let (status, code, message, headers) = error_of(
        client
            .reset_password_by_admin()
            .body(reset_body("hello@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (429, 8));
    assert!(message.contains("per-user rate limit"), "{message}");
    assert!(message.contains("1 time(s) per 60 s"), "{message}");
    let retry: u64 = headers.retry_after.expect("Retry-After");
    assert!((55..=60).contains(&retry), "Retry-After {retry}");

    // The refused ResetPasswordByAdmin changed nothing: the password still
    // verifies (its hash is there), the first link is still open, and there
    // is one message and one audit row.
    assert_eq!(
        server
            .store()
            .password_hash(user.id)
            .await
            .unwrap()
            .as_deref(),
        Some(KNOWN_HASH),
        "the refused reset did not clear the password"
    );
    assert_eq!(
        server
            .store()
            .find_link(&first_link)
            .await
            .unwrap()
            .unwrap()
            .state,
        LinkState::Open,
        "the refused reset did not revoke the first link"
    );
    assert_eq!(server.read_all_outbox().await.len(), 1);
    assert_eq!(
        server.store().audit_entries(user.id).await.unwrap().len(),
        1
    );
    server.stop().await;
}

/// State written under a slower `--user-rate` is cut to the new rate when
/// the server starts: the 429 waits no longer than the rate it quotes
/// (before: "1 time(s) per 60 s" with a Retry-After of an hour).
#[tokio::test]
async fn a_raised_user_rate_waits_what_it_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("kept.db").display());
    let hourly = TestServer::start_with(Options {
        user_rate: (1, 3600),
        database_url: Some(database_url.clone()),
        ..Options::default()
    })
    .await;
    hourly.add_user("hello@example.com", false).await;
    hourly
        .client()
        .reset_password_by_admin()
        .body(reset_body("hello@example.com"))
        .send()
        .await
        .expect("first");
    let (status, _, message, headers) = error_of(
        hourly
            .client()
            .reset_password_by_admin()
            .body(reset_body("hello@example.com"))
            .send()
            .await,
    );
    assert_eq!(status, 429, "{message}");
    let retry: u64 = headers.retry_after.expect("Retry-After");
    assert!(retry > 3500, "the hourly limit holds: Retry-After {retry}");
    hourly.stop().await;

    let raised = TestServer::start_with(Options {
        user_rate: (1, 60),
        database_url: Some(database_url),
        ..Options::default()
    })
    .await;
    let (status, code, message, headers) = error_of(
        raised
            .client()
            .reset_password_by_admin()
            .body(reset_body("hello@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (429, 8), "{message}");
    assert!(message.contains("1 time(s) per 60 s"), "{message}");
    let retry: u64 = headers.retry_after.expect("Retry-After");
    assert!(
        (1..=60).contains(&retry),
        "quotes 1 per 60 s, waits {retry} s"
    );
    raised.stop().await;
}

#[tokio::test]
async fn per_token_rate_limit_is_429_naming_the_limit() {
    let server = TestServer::start_with(Options {
        token_rate: (2, 60),
        ..Options::default()
    })
    .await;
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        server.add_user(email, false).await;
    }
    let client = server.client();
    client
        .reset_password_by_admin()
        .body(reset_body("a@example.com"))
        .send()
        .await
        .expect("1st");
    client
        .reset_password_by_admin()
        .body(reset_body("b@example.com"))
        .send()
        .await
        .expect("2nd");
    let (status, code, message, headers) = error_of(
        client
            .reset_password_by_admin()
            .body(reset_body("c@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (429, 8));
    assert!(message.contains("per-token rate limit"), "{message}");
    assert!(message.contains("2 emails per 60 s"), "{message}");
    let retry: u64 = headers.retry_after.expect("Retry-After");
    assert!((25..=30).contains(&retry), "Retry-After {retry}");
    server.stop().await;
}

#[tokio::test]
async fn internal_errors_are_500_without_details() {
    let server = TestServer::start().await;
    server.add_user("hello@example.com", false).await;
    // Break the schema under the running server.
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&server.database_url)
        .await
        .unwrap();
    sqlx::query("DROP TABLE audit_log")
        .execute(&mut conn)
        .await
        .unwrap();

    let (status, code, message, headers) = error_of(
        server
            .client()
            .reset_password_by_admin()
            .body(reset_body("hello@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (500, 13));
    assert!(message.starts_with("internal error"), "{message}");
    assert!(
        !message.contains("audit_log") && !message.to_lowercase().contains("sql"),
        "{message}"
    );
    assert!(headers.request_id.is_some());
    // The transaction rolled back: no link, no queued email.
    assert!(server.read_all_outbox().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn locked_database_is_503_with_retry_after() {
    let server = TestServer::start().await;
    server.add_user("hello@example.com", false).await;
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&server.database_url)
        .await
        .unwrap();
    // Another writer holds the write lock past the 5 s busy timeout.
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .unwrap();
    let (status, code, message, headers) = error_of(
        server
            .client()
            .reset_password_by_admin()
            .body(reset_body("hello@example.com"))
            .send()
            .await,
    );
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    assert_eq!((status, code), (503, 14));
    assert!(message.contains("temporarily unavailable"), "{message}");
    assert!(headers.retry_after.is_some());
    server.stop().await;
}

#[tokio::test]
async fn request_past_its_deadline_is_504() {
    let server = TestServer::start_with(Options {
        request_timeout: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    server.add_user("hello@example.com", false).await;
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&server.database_url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .unwrap();
    let (status, code, message, _) = error_of(
        server
            .client()
            .reset_password_by_admin()
            .body(reset_body("hello@example.com"))
            .send()
            .await,
    );
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    assert_eq!((status, code), (504, 4));
    assert!(message.contains("did not finish within 1 s"), "{message}");
    assert!(
        server.read_all_outbox().await.is_empty(),
        "cut off before anything was written"
    );
    server.stop().await;
}

#[tokio::test]
async fn delivery_status_by_email_and_by_request_id() {
    use pwmail_client::types::{PasswordEmailStatusKind, PasswordEmailStatusState};
    let server = TestServer::start().await;
    server.add_user("hello@example.com", false).await;
    server.add_user("member@example.com", false).await;
    let response = server
        .client()
        .send_password_email_system()
        .body(send_body("hello@example.com"))
        .send()
        .await
        .expect("200");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    server.wait_for_emails(1, DEADLINE).await;
    // The dispatcher settles the row right after writing the file.
    let mut items = Vec::new();
    for _ in 0..100 {
        items = server
            .client()
            .get_password_email_status()
            .email("HELLO@example.com")
            .send()
            .await
            .expect("200")
            .into_inner()
            .items;
        if items
            .first()
            .is_some_and(|i| i.state == PasswordEmailStatusState::Sent)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.state, PasswordEmailStatusState::Sent);
    assert_eq!(item.kind, PasswordEmailStatusKind::SendPasswordEmail);
    assert_eq!(item.recipient, "hello@example.com");
    assert_eq!(item.attempts, 1);
    assert_eq!(item.request_id.as_deref(), Some(request_id.as_str()));
    assert!(item.sent_at.is_some());
    assert!(
        item.last_reply
            .as_deref()
            .unwrap()
            .starts_with("written to")
    );

    let by_request = server
        .client()
        .get_password_email_status()
        .request_id(request_id.as_str())
        .send()
        .await
        .expect("200")
        .into_inner()
        .items;
    assert_eq!(by_request.len(), 1);
    assert_eq!(by_request[0].id, item.id);
    let none = server
        .client()
        .get_password_email_status()
        .email("member@example.com")
        .request_id(request_id.as_str())
        .send()
        .await
        .expect("200")
        .into_inner()
        .items;
    assert!(none.is_empty(), "both filters apply");

    // Neither filter: the most recent emails of everyone.
    let recent = server
        .client()
        .get_password_email_status()
        .send()
        .await
        .expect("200")
        .into_inner()
        .items;
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].id, item.id);
    let (status, code, _, _) = error_of(
        server
            .client()
            .get_password_email_status()
            .email("nobody@example.com")
            .send()
            .await,
    );
    assert_eq!((status, code), (404, 5));
    // The typed client cannot build a bad email; a raw caller can.
    let response = reqwest::Client::new()
        .get(server.endpoint("/api/web/custom/password/email_status?email=bad@localhost"))
        .header("Authorization", format!("APIToken {}", server.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_error_shape(&json, 3, "must match the upstream API's email pattern");
    // A request id of 128 characters is looked up (counted in characters:
    // 'é' is two bytes); 129 is refused.
    let by_id = |id: String| {
        reqwest::Client::new()
            .get(server.endpoint(&format!(
                "/api/web/custom/password/email_status?request_id={id}"
            )))
            .header("Authorization", format!("APIToken {}", server.admin_token))
            .send()
    };
    let longest = by_id("%C3%A9".repeat(128)).await.unwrap();
    assert_eq!(longest.status(), 200);
    let too_long = by_id("%C3%A9".repeat(129)).await.unwrap();
    assert_eq!(too_long.status(), 400);
    let json: serde_json::Value = too_long.json().await.unwrap();
    assert_error_shape(&json, 3, "request_id is longer than 128 characters");
    let member = server.token_for("member@example.com").await;
    let (status, code, _, _) = error_of(
        server
            .client_with(&member)
            .get_password_email_status()
            .email("hello@example.com")
            .send()
            .await,
    );
    assert_eq!((status, code), (403, 7));
    server.stop().await;
}

#[tokio::test]
async fn a_full_backlog_is_503_with_retry_after() {
    // A relay that is never there keeps messages waiting: an address that
    // stays taken and refuses every connection.
    let relay = pwmail_testkit::proxy::TcpProxy::start(([127, 0, 0, 1], 9).into()).await;
    relay.set_down(true);
    let mut smtp = pwmail_server::config::SmtpConfig::from_url(&format!(
        "smtp://127.0.0.1:{}?tls=none",
        relay.addr.port()
    ))
    .unwrap();
    smtp.timeout = Duration::from_secs(1);
    let server = TestServer::start_with(Options {
        max_backlog: 1,
        mail: Some(pwmail_server::config::MailConfig::Smtp(smtp)),
        ..Options::default()
    })
    .await;
    server.add_user("a@example.com", false).await;
    server.add_user("b@example.com", false).await;
    server
        .client()
        .reset_password_by_admin()
        .body(reset_body("a@example.com"))
        .send()
        .await
        .expect("the first fits");
    // The backlog is counted every 250 ms: wait until the count has seen it.
    let deadline = std::time::Instant::now() + DEADLINE;
    while server.running.app.backlog() < 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, code, message, headers) = error_of(
        server
            .client()
            .reset_password_by_admin()
            .body(reset_body("b@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (503, 14));
    assert!(
        message.contains("too many emails waiting to be sent (1, limit 1)"),
        "{message}"
    );
    assert_eq!(headers.retry_after, Some(30));
    assert_eq!(
        server.read_all_outbox().await.len(),
        1,
        "the refused email was not queued"
    );
    let audit = server.audit().await;
    assert_eq!(audit.len(), 1, "a 503 is stored nowhere: {audit:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_sent_row_keeps_no_body_so_the_link_is_only_in_the_mailbox() {
    let server = TestServer::start().await;
    server.add_user("hello@example.com", false).await;
    server.add_user("later@example.com", false).await;
    server
        .client()
        .reset_password_by_admin()
        .body(reset_body("hello@example.com"))
        .send()
        .await
        .expect("200");
    server.wait_for_outbox(OutboxState::Sent, 1).await;
    let emails = server.wait_for_emails(1, DEADLINE).await;
    let token = link_token(&emails[0]).unwrap();

    let pool = sqlx::SqlitePool::connect(&server.database_url)
        .await
        .unwrap();
    type Held = (String, Option<String>, Option<String>, Option<String>);
    let rows: Vec<Held> = sqlx::query_as("SELECT state, body_text, body_html, link FROM outbox")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0],
        ("sent".to_string(), None, None, None),
        "bodies and link cleared"
    );
    // Nothing else in the database holds the link in plain text.
    let dump: Vec<(String,)> = sqlx::query_as(
        "SELECT COALESCE(group_concat(subject || recipient || message_id), '') FROM outbox",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!dump[0].0.contains(&token));
    pool.close().await;
    server.stop().await;
}

#[tokio::test]
async fn rate_limits_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("kept.db").display());
    let options = || Options {
        database_url: Some(database_url.clone()),
        ..Options::default()
    };
    let server = TestServer::start_with(options()).await;
    server.add_user("hello@example.com", false).await;
    server
        .client()
        .reset_password_by_admin()
        .body(reset_body("hello@example.com"))
        .send()
        .await
        .expect("the first email");
    server.stop().await;

    let restarted = TestServer::start_with(options()).await;
    let (status, code, message, headers) = error_of(
        restarted
            .client()
            .reset_password_by_admin()
            .body(reset_body("hello@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (429, 8), "{message}");
    assert!(message.contains("per-user rate limit"), "{message}");
    let retry: u64 = headers.retry_after.expect("Retry-After");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    restarted.stop().await;
}

#[tokio::test]
async fn the_per_user_cooldown_admits_again_once_its_period_has_passed() {
    let clock = std::sync::Arc::new(pwmail_server::clock::ManualClock::new(now()));
    let server = TestServer::start_with(Options {
        clock: Some(std::sync::Arc::clone(&clock)),
        ..Options::default()
    })
    .await;
    server.add_user("hello@example.com", false).await;
    let client = server.client();
    let body = reset_body("hello@example.com");
    let send = || client.reset_password_by_admin().body(body.clone()).send();
    send().await.expect("the first email");
    clock.advance_ms(59_000);
    let (status, _, _, headers) = error_of(send().await);
    assert_eq!(status, 429, "59 s later the 1/60 cooldown still holds");
    assert_eq!(headers.retry_after, Some(1));
    clock.advance_ms(1_000);
    send()
        .await
        .expect("60 s after the first, the next email goes");
    assert_eq!(server.read_all_outbox().await.len(), 2);
    server.stop().await;
}

/// A user as a version that did not check addresses stored it.
async fn store_unchecked(
    store: &dyn pwmail_store::testing::StoreTestExt,
    email: &str,
) -> pwmail_store::User {
    let user = store
        .create_user(
            &pwmail_store::NewUser {
                email: email.into(),
                name: None,
                is_admin: false,
                deliverable: true,
                locale: None,
            },
            now(),
        )
        .await
        .unwrap();
    store.forget_address_checks().await.unwrap();
    user
}

/// [`store_unchecked`], then checked as the service checks stored
/// addresses before it issues links.
async fn add_unchecked_user(server: &TestServer, email: &str) -> pwmail_store::User {
    let user = store_unchecked(server.store(), email).await;
    let marked = pwmail_server::app::users::check_addresses(server.store())
        .await
        .unwrap();
    assert_eq!(marked, 1, "{email} found undeliverable");
    user
}

#[tokio::test]
async fn a_user_stored_before_addresses_were_checked_is_refused_from_the_first_call() {
    // The database a version that did not check addresses left: the server
    // checks stored addresses when it starts, before any call.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    {
        let store = pwmail_store::testing::open(&url).await.unwrap();
        store_unchecked(&*store, "a..b@example.com").await;
    }
    let server = TestServer::start_with(Options {
        database_url: Some(url),
        ..Options::default()
    })
    .await;
    let (status, code, message, _) = error_of(
        server
            .client()
            .reset_password_by_admin()
            .body(reset_body("a..b@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (409, 9), "{message}");
    assert!(message.contains("cannot receive mail"), "{message}");
    assert!(server.read_all_outbox().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn expired_keys_and_rate_state_are_forgotten_when_the_server_starts() {
    // Nothing shows them to a caller (an expired key or a full rate limit is
    // as good as none), but kept for ever they would fill the disk.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("purge.db").display());
    let clock = std::sync::Arc::new(pwmail_server::clock::ManualClock::new(now()));
    let options = || Options {
        database_url: Some(url.clone()),
        clock: Some(std::sync::Arc::clone(&clock)),
        ..Options::default()
    };
    let rows = |table: &'static str| {
        let url = url.clone();
        async move {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
                .await
                .unwrap();
            let sql = format!("SELECT count(*) FROM {table}");
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut conn)
                .await
                .unwrap();
            n
        }
    };
    let first = TestServer::start_with(options()).await;
    first.add_user("hello@example.com", false).await;
    first
        .client()
        .reset_password_by_admin()
        .idempotency_key("purge-key")
        .body(reset_body("hello@example.com"))
        .send()
        .await
        .expect("issued");
    first.stop().await;
    assert_eq!(rows("idempotency_keys").await, 1);
    assert!(rows("rate_limits").await >= 2, "the token's and the user's");

    // Past every limit's period and the key's lifetime.
    clock.advance_ms(8 * 86_400_000);
    let second = TestServer::start_with(options()).await;
    let deadline = std::time::Instant::now() + DEADLINE;
    while (rows("idempotency_keys").await, rows("rate_limits").await) != (0, 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "not forgotten: {} keys, {} rate states",
            rows("idempotency_keys").await,
            rows("rate_limits").await
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    second.stop().await;
}

#[tokio::test]
async fn an_import_counts_the_users_it_added_and_those_already_there() {
    let server = TestServer::start().await;
    let rows = |emails: &[&str]| -> Vec<pwmail_server::app::users::UserDraft> {
        emails
            .iter()
            .map(|e| pwmail_server::app::users::UserDraft {
                email: e.to_string(),
                ..Default::default()
            })
            .collect()
    };
    let import = pwmail_server::app::users::import_users;
    let first = rows(&["a@example.com", "b@example.com"]);
    let first = import(server.store(), &first, now()).await.unwrap();
    assert_eq!((first.added, first.present), (2, 0));
    let again = rows(&["A@example.com", "b@example.com", "c@example.com"]);
    let again = import(server.store(), &again, now()).await.unwrap();
    assert_eq!(
        (again.added, again.present),
        (1, 2),
        "addresses compared as addresses"
    );
    // A bad line anywhere: refused, naming it, and nothing added.
    let bad = rows(&["d@example.com", "not-an-email"]);
    let err = import(server.store(), &bad, now()).await.unwrap_err();
    assert!(err.to_string().contains("not-an-email"), "{err}");
    assert!(
        server
            .store()
            .find_user_by_email("d@example.com")
            .await
            .unwrap()
            .is_none()
    );
    server.stop().await;
}

#[tokio::test]
async fn the_bootstrap_admin_is_made_only_while_there_is_no_admin() {
    // The server made its bootstrap admin on the empty database; a start
    // naming another bootstrap address makes none, and shows no token.
    let server = TestServer::start().await;
    let again =
        pwmail_server::app::users::bootstrap_admin(server.store(), "other@example.com", now())
            .await
            .unwrap();
    assert!(again.is_none(), "an admin exists: no second bootstrap");
    assert_eq!(server.store().count_admins().await.unwrap(), 1);
    assert!(
        server
            .store()
            .find_user_by_email("other@example.com")
            .await
            .unwrap()
            .is_none()
    );
    server.stop().await;
}

#[tokio::test]
async fn an_address_mail_cannot_reach_is_refused_and_nothing_changes() {
    let server = TestServer::start().await;
    // Adding such a user is refused with the reason.
    for bad in ["a..b@example.com", ".a@example.com", "a@-example.com"] {
        let err = pwmail_server::app::users::add_user(server.store(), bad, false, None, now())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot receive mail"), "{bad}: {err}");
    }
    let long = format!("{}@example.com", "l".repeat(1000));
    assert!(
        pwmail_server::app::users::add_user(server.store(), &long, false, None, now())
            .await
            .is_err()
    );

    // A user stored before the check (as a version that did not check wrote
    // it), then checked as `pwmail serve` and `pwmail migrate` check them:
    // both operations answer 409 and change nothing (the password still
    // verifies, no link, no email).
    let legacy = add_unchecked_user(&server, "a..b@example.com").await;
    server.set_known_password(legacy.id).await;
    let client = server.client();
    let (status, code, message, _) = error_of(
        client
            .reset_password_by_admin()
            .body(reset_body("a..b@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (409, 9), "{message}");
    assert!(
        message.contains("\"a..b@example.com\" cannot receive mail"),
        "{message}"
    );
    let (status, code, _, _) = error_of(
        client
            .send_password_email_system()
            .body(send_body("a..b@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (409, 9));
    assert_eq!(
        server
            .store()
            .password_hash(legacy.id)
            .await
            .unwrap()
            .as_deref(),
        Some(KNOWN_HASH)
    );
    assert!(server.read_all_outbox().await.is_empty());
    // Each refusal's audit row is all it wrote.
    let audit: Vec<_> = server
        .store()
        .audit_entries(legacy.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.operation, e.outcome))
        .collect();
    assert_eq!(
        audit,
        [
            (
                "reset_password_by_admin".into(),
                AuditOutcome::Undeliverable
            ),
            ("send_password_email".into(), AuditOutcome::Undeliverable),
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_call_refused_for_an_undeliverable_stored_address_uses_the_callers_rate() {
    // Every call uses up the caller's rate once, refused ones included: a
    // token allowed one call an hour spends it on the refused call, and the
    // next call, to a user mail can reach, is 429.
    let server = TestServer::start_with(Options {
        token_rate: (1, 3600),
        ..Options::default()
    })
    .await;
    add_unchecked_user(&server, "a..b@example.com").await;
    server.add_user("fine@example.com", false).await;
    let client = server.client();
    let (status, code, _, _) = error_of(
        client
            .reset_password_by_admin()
            .body(reset_body("a..b@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (409, 9), "the stored address is refused");
    let (status, code, message, headers) = error_of(
        client
            .reset_password_by_admin()
            .body(reset_body("fine@example.com"))
            .send()
            .await,
    );
    assert_eq!((status, code), (429, 8), "{message}");
    let retry: u64 = headers.retry_after.expect("Retry-After");
    assert!((3590..=3600).contains(&retry), "Retry-After {retry}");
    assert!(server.read_all_outbox().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn two_authorization_headers_are_refused_whichever_comes_last() {
    let server = TestServer::start().await;
    server.add_user("hello@example.com", false).await;
    let admin = format!("APIToken {}", server.admin_token);
    for pair in [
        [
            "APIToken pwm_notatokennotatokennotatokennotatokennot",
            admin.as_str(),
        ],
        [admin.as_str(), admin.as_str()],
    ] {
        let client = reqwest::Client::new();
        let mut request = client
            .post(server.endpoint(RESET_PATH))
            .header("Content-Type", "application/json")
            .body(r#"{"email":"hello@example.com"}"#)
            .build()
            .unwrap();
        for value in pair {
            request
                .headers_mut()
                .append("Authorization", value.parse().unwrap());
        }
        assert_eq!(request.headers().get_all("Authorization").iter().count(), 2);
        let response = client.execute(request).await.unwrap();
        let status = response.status().as_u16();
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 401, "{json}");
        assert_error_shape(&json, 16, "more than one Authorization header");
    }
    assert!(server.read_all_outbox().await.is_empty(), "nothing queued");
    server.stop().await;
}

/// SHA-256 of `secret` as coreutils' `sha256sum` computes it, upper-case
/// hex: an oracle the product's own code has no part in.
fn sha256sum(secret: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(secret.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().to_uppercase()
}

/// What the database keeps of a reset link and an API token is the
/// SHA-256 of each, and nothing else of them.
#[tokio::test]
async fn the_database_keeps_the_sha256_of_links_and_tokens() {
    let server = TestServer::start().await;
    server.add_user("hashed@example.com", false).await;
    server
        .client()
        .reset_password_by_admin()
        .body(reset_body("hashed@example.com"))
        .send()
        .await
        .expect("200");
    let emails = server.wait_for_emails(1, DEADLINE).await;
    let link = link_token(&emails[0]).unwrap();
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&server.database_url)
        .await
        .unwrap();
    let links: Vec<String> = sqlx::query_scalar("SELECT hex(token_hash) FROM reset_links")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(links, [sha256sum(&link)]);
    let tokens: Vec<String> = sqlx::query_scalar("SELECT hex(token_hash) FROM api_tokens")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(tokens, [sha256sum(&server.admin_token)]);
    server.stop().await;
}

/// A refusal's Retry-After is the wait rounded up to a whole second: 59.5 s
/// is 60, never 59 (a client that waits 59 s is refused again).
#[tokio::test]
async fn retry_after_is_rounded_up() {
    let clock = std::sync::Arc::new(pwmail_server::clock::ManualClock::new(now()));
    let server = TestServer::start_with(Options {
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    server.add_user("round@example.com", false).await;
    let client = server.client();
    client
        .reset_password_by_admin()
        .body(reset_body("round@example.com"))
        .send()
        .await
        .expect("first");
    clock.advance_ms(500);
    let (status, _, _, headers) = error_of(
        client
            .reset_password_by_admin()
            .body(reset_body("round@example.com"))
            .send()
            .await,
    );
    assert_eq!(status, 429);
    assert_eq!(headers.retry_after, Some(60), "59.5 s left of 1 per 60 s");
    clock.advance_ms(59_000);
    let (_, _, _, headers) = error_of(
        client
            .reset_password_by_admin()
            .body(reset_body("round@example.com"))
            .send()
            .await,
    );
    assert_eq!(headers.retry_after, Some(1), "0.5 s left");
    server.stop().await;
}

/// The link in the email comes from `--public-url` only: a call whose
/// `Host` and `X-Forwarded-*` headers name another site still gets links to
/// the configured one (a forged Host would otherwise send users' links to
/// an attacker's server).
#[tokio::test]
async fn links_never_come_from_host_or_forwarded_headers() {
    let server = TestServer::start().await;
    server.add_user("forged@example.com", false).await;
    let response = reqwest::Client::new()
        .post(server.endpoint(RESET_PATH))
        .header("Authorization", format!("APIToken {}", server.admin_token))
        .header("Host", "evil.example")
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "http")
        .header("X-Forwarded-Prefix", "/steal")
        .header("Forwarded", "host=evil.example;proto=http")
        .json(&serde_json::json!({ "email": "forged@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let emails = server.wait_for_emails(1, DEADLINE).await;
    assert!(!emails[0].contains("evil.example"), "{}", emails[0]);
    assert!(!emails[0].contains("/steal"), "{}", emails[0]);
    assert!(
        link_token(&emails[0]).is_some(),
        "a https://pwmail.test/reset/ link"
    );
    server.stop().await;
}
