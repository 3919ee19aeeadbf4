//! pwmail's own operation, `POST /api/pwmail/v1/reset_links`: a link with a
//! lifetime of the call's choosing and a way back to the application.

use std::sync::Arc;

use pwmail_client::CallError;
use pwmail_client::types::{CreateResetLinkRequest, CreateResetLinkRequestDeliver, builder};
use pwmail_server::clock::ManualClock;
use pwmail_server::config::ReturnTo;
use pwmail_store::{AuditOutcome, MessageKind};
use pwmail_testkit::pg::PgSchema;
use pwmail_tests::{DEADLINE, Options, TestServer, link_token, now};

const GOOD: &str = "plum trellis quasar lantern";
const APP: &str = "https://app.example.com";

fn ask(email: &str) -> builder::CreateResetLinkRequest {
    CreateResetLinkRequest::builder().email(email)
}

fn allowing_app() -> ReturnTo {
    ReturnTo::new(&[APP.to_string()], None).unwrap()
}

/// Status, gRPC code and message of a refusal.
fn refusal<T: std::fmt::Debug>(result: Result<T, CallError>) -> (u16, i32, String) {
    match result {
        Err(CallError::Api {
            status,
            code,
            message,
            ..
        }) => (status, code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The done page's way back, as a browser reads it: the link's target
/// (entities decoded) and its text.
fn return_link(page: &str) -> Option<(String, String)> {
    let start = page.find(r#"<a id="return-to""#)?;
    let tag = &page[start..];
    let href = tag.split(r#"href=""#).nth(1)?.split('"').next()?;
    let text = tag.split('>').nth(1)?.split("</a").next()?;
    let decode = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    Some((decode(href), decode(text)))
}

async fn page(server: &TestServer, token: &str) -> (u16, String) {
    let r = reqwest::get(server.endpoint(&format!("/reset/{token}")))
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn set_password(server: &TestServer, token: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(server.endpoint(&format!("/reset/{token}")))
        .form(&[("password", GOOD), ("password_confirm", GOOD)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_per_call_lifetime_is_stated_in_the_email_and_ends_the_link() {
    let start = now();
    let clock = Arc::new(ManualClock::new(start));
    let server = TestServer::start_with(Options {
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    server.add_user("hello@example.com", false).await;
    let answer = server
        .client()
        .create_reset_link()
        .body(ask("hello@example.com").ttl_secs(Some(600)))
        .send()
        .await
        .expect("200");
    let request_id = answer
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let body = answer.into_inner();
    assert_eq!(body.request_id, request_id);
    assert_eq!(body.expires_at.timestamp_millis(), start + 600_000);

    let emails = server.wait_for_emails(1, DEADLINE).await;
    assert!(
        emails[0].contains("expires in 10 minutes"),
        "the email states the call's lifetime: {}",
        emails[0]
    );
    let token = link_token(&emails[0]).unwrap();
    clock.advance_ms(600_000 - 1);
    assert_eq!(page(&server, &token).await.0, 200, "works until it expires");
    clock.advance_ms(1);
    assert_eq!(page(&server, &token).await.0, 404, "and not a moment after");
    assert_eq!(set_password(&server, &token).await.0, 404);
    server.stop().await;
}

#[tokio::test]
async fn lifetimes_outside_the_servers_range_are_refused_naming_it() {
    let server = TestServer::start().await;
    server.add_user("hello@example.com", false).await;
    // Inside the document's bounds (300..604800), outside the server's
    // default range (300..86400), and below both.
    for ttl in [86_401, 604_800, 299, 0, -5] {
        let (status, code, message) = refusal(
            server
                .client()
                .create_reset_link()
                .body(ask("hello@example.com").ttl_secs(Some(ttl)))
                .send()
                .await,
        );
        assert_eq!((status, code), (400, 3), "{ttl}: {message}");
        assert!(
            message.contains("ttl_secs must be between 300 and 86400")
                && message.contains(&format!("got {}", ttl.max(0))),
            "{message}"
        );
    }
    // The range's own ends are inside it.
    server.add_user("other@example.com", false).await;
    for (email, ttl) in [("hello@example.com", 300), ("other@example.com", 86_400)] {
        server
            .client()
            .create_reset_link()
            .body(ask(email).ttl_secs(Some(ttl)))
            .send()
            .await
            .expect("200");
    }
    let outbox = server.stop_and_read_outbox().await;
    assert_eq!(outbox.len(), 2, "refusals wrote nothing: {outbox:?}");
}

#[tokio::test]
async fn return_to_is_linked_from_the_done_page_only_under_an_allowed_origin() {
    let server = TestServer::start_with(Options {
        return_to: allowing_app(),
        ..Options::default()
    })
    .await;
    server.add_user("hello@example.com", false).await;
    for (bad, why) in [
        (
            "https://evil.example.com/login",
            "origin https://evil.example.com is not allowed",
        ),
        ("http://app.example.com/login", "must be https"),
        (
            "https://me:pw@app.example.com/login",
            "user name or password",
        ),
        ("javascript:alert(document.cookie)", "must be https"),
        ("//app.example.com/login", "not an absolute URL"),
    ] {
        let (status, code, message) = refusal(
            server
                .client()
                .create_reset_link()
                .body(ask("hello@example.com").return_to(Some(bad.try_into().unwrap())))
                .send()
                .await,
        );
        assert_eq!((status, code), (400, 3), "{bad}: {message}");
        assert!(message.contains(why), "{bad}: {message}");
    }
    let target = format!("{APP}/login?from=pwmail&x=%3Cb%3E");
    server
        .client()
        .create_reset_link()
        .body(ask("hello@example.com").return_to(Some(target.as_str().try_into().unwrap())))
        .send()
        .await
        .expect("200");
    let emails = server.wait_for_emails(1, DEADLINE).await;
    assert_eq!(emails.len(), 1, "the refused calls emailed nobody");
    let token = link_token(&emails[0]).unwrap();
    let (status, done) = set_password(&server, &token).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        return_link(&done),
        Some((target, "Continue to app.example.com".to_string())),
        "{done}"
    );
    assert!(!done.contains("sign in to pwmail"), "{done}");
    server.stop().await;
}

#[tokio::test]
async fn the_default_return_to_serves_the_f5_operations_and_no_origin_means_no_link() {
    let server = TestServer::start_with(Options {
        return_to: ReturnTo::new(&[APP.to_string()], Some("https://app.example.com/home")).unwrap(),
        ..Options::default()
    })
    .await;
    server.add_user("hello@example.com", false).await;
    server
        .client()
        .reset_password_by_admin()
        .body(
            pwmail_client::types::ResetPasswordByAdminRequest::builder().email("hello@example.com"),
        )
        .send()
        .await
        .expect("200");
    let emails = server.wait_for_emails(1, DEADLINE).await;
    let (status, done) = set_password(&server, &link_token(&emails[0]).unwrap()).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        return_link(&done),
        Some((
            "https://app.example.com/home".to_string(),
            "Continue to app.example.com".to_string()
        )),
        "{done}"
    );
    server.stop().await;

    // No --return-to-origin: a call's return_to is refused, and the done
    // page links nowhere.
    let server = TestServer::start().await;
    server.add_user("hello@example.com", false).await;
    let (status, _, message) = refusal(
        server
            .client()
            .create_reset_link()
            .body(ask("hello@example.com").return_to(Some(format!("{APP}/").try_into().unwrap())))
            .send()
            .await,
    );
    assert_eq!(status, 400);
    assert!(message.contains("allows no origin"), "{message}");
    server
        .client()
        .create_reset_link()
        .body(ask("hello@example.com"))
        .send()
        .await
        .expect("200");
    let emails = server.wait_for_emails(1, DEADLINE).await;
    let (_, done) = set_password(&server, &link_token(&emails[0]).unwrap()).await;
    assert!(
        done.contains(r#"id="done""#) && !done.contains("return-to"),
        "{done}"
    );
    server.stop().await;
}

#[tokio::test]
async fn invalidate_password_chooses_the_f5_meaning_and_the_email_kind() {
    let server = TestServer::start().await;
    let keep = server.add_user("keep@example.com", false).await;
    let drop = server.add_user("drop@example.com", false).await;
    server.set_known_password(keep.id).await;
    server.set_known_password(drop.id).await;
    for (email, invalidate) in [("keep@example.com", false), ("drop@example.com", true)] {
        server
            .client()
            .create_reset_link()
            .body(ask(email).invalidate_password(invalidate))
            .send()
            .await
            .expect("200");
    }
    assert!(
        server
            .store()
            .password_hash(keep.id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(server.store().password_hash(drop.id).await.unwrap(), None);
    let mut kinds: Vec<(String, MessageKind)> = server
        .stop_and_read_outbox()
        .await
        .into_iter()
        .map(|m| (m.recipient, m.kind))
        .collect();
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        kinds,
        [
            (
                "drop@example.com".to_string(),
                MessageKind::ResetPasswordByAdmin
            ),
            (
                "keep@example.com".to_string(),
                MessageKind::SendPasswordEmail
            ),
        ]
    );
}

#[tokio::test]
async fn a_replay_answers_the_first_calls_request_and_expiry() {
    let clock = Arc::new(ManualClock::new(now()));
    let server = TestServer::start_with(Options {
        clock: Some(clock.clone()),
        return_to: allowing_app(),
        ..Options::default()
    })
    .await;
    server.add_user("hello@example.com", false).await;
    let client = server.client();
    let call = || {
        client
            .create_reset_link()
            .idempotency_key("ticket-4711")
            .body(
                ask("hello@example.com")
                    .ttl_secs(Some(900))
                    .return_to(Some(format!("{APP}/").try_into().unwrap())),
            )
    };
    let first = call().send().await.expect("200");
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = first.into_inner();
    clock.advance_ms(5_000);
    let again = call().send().await.expect("the retry is answered 200");
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again = again.into_inner();
    assert_eq!(
        (again.request_id, again.expires_at),
        (first.request_id, first.expires_at),
        "the first call's request and expiry"
    );
    // Another lifetime under the same key is another request.
    let (status, code, _) = refusal(
        server
            .client()
            .create_reset_link()
            .idempotency_key("ticket-4711")
            .body(
                ask("hello@example.com")
                    .ttl_secs(Some(901))
                    .return_to(Some(format!("{APP}/").try_into().unwrap())),
            )
            .send()
            .await,
    );
    assert_eq!(status, 422, "code {code}");
    assert_eq!(server.stop_and_read_outbox().await.len(), 1, "one email");
}

/// `deliver: "response"` on one engine: `database_url` `None` is SQLite.
async fn reveal_on(database_url: Option<String>) {
    let start = now();
    let clock = Arc::new(ManualClock::new(start));
    let server = TestServer::start_with(Options {
        clock: Some(clock.clone()),
        database_url,
        ..Options::default()
    })
    .await;
    let user = server.add_user("hello@example.com", false).await;
    server.set_known_password(user.id).await;

    // An ordinary admin token may not see links.
    let (status, code, message) = refusal(
        server
            .client()
            .create_reset_link()
            .body(ask("hello@example.com").deliver(CreateResetLinkRequestDeliver::Response))
            .send()
            .await,
    );
    assert_eq!((status, code), (403, 7), "{message}");
    assert!(message.contains("--reveal-links"), "{message}");
    // Its audit row, for the address asked, is all the refusal wrote.
    let refused = server.audit().await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (refused[0].outcome, refused[0].target_email.as_deref()),
        (AuditOutcome::CannotRevealLinks, Some("hello@example.com"))
    );
    assert!(server.store().links().await.unwrap().is_empty());

    // An emailed link first: the revealed one revokes it.
    server
        .client()
        .create_reset_link()
        .body(ask("hello@example.com"))
        .send()
        .await
        .expect("200");
    let emailed = link_token(&server.wait_for_emails(1, DEADLINE).await[0]).unwrap();
    clock.advance_ms(60_000);

    let help_desk = server.client_with(&server.revealing_token_for(pwmail_tests::ADMIN).await);
    let ask_revealed = || {
        help_desk
            .create_reset_link()
            .idempotency_key("ticket-9")
            .body(
                ask("hello@example.com")
                    .invalidate_password(true)
                    .deliver(CreateResetLinkRequestDeliver::Response),
            )
    };
    let answer = ask_revealed().send().await.expect("200").into_inner();
    let link = answer.link.expect("the link is in the answer");
    let token = link
        .strip_prefix("https://pwmail.test/reset/")
        .unwrap_or_else(|| panic!("a reset link of this server: {link}"));
    assert_eq!(
        answer.expires_at.timestamp_millis(),
        start + 60_000 + 86_400_000
    );
    assert_eq!(
        page(&server, token).await.0,
        200,
        "the revealed link opens the page"
    );
    assert_eq!(
        page(&server, &emailed).await.0,
        410,
        "and the emailed one was revoked"
    );
    assert_eq!(
        server.store().password_hash(user.id).await.unwrap(),
        None,
        "invalidate_password applies as with an email"
    );

    // Shown once: the same key again is refused, and nothing is written.
    let (status, code, message) = refusal(ask_revealed().send().await);
    assert_eq!((status, code), (409, 9), "{message}");
    assert!(message.contains("link already revealed"), "{message}");
    // It counts against the per-user cooldown like an email.
    let (status, _, message) = refusal(
        help_desk
            .create_reset_link()
            .body(ask("hello@example.com").deliver(CreateResetLinkRequestDeliver::Response))
            .send()
            .await,
    );
    assert_eq!(status, 429, "{message}");

    let audit = server.store().audit_entries(user.id).await.unwrap();
    let revealed: Vec<_> = audit.iter().filter(|a| a.link_revealed).collect();
    assert_eq!(revealed.len(), 1, "{audit:?}");
    assert_eq!(revealed[0].idempotency_key.as_deref(), Some("ticket-9"));
    assert_ne!(
        revealed[0].actor_token, audit[0].actor_token,
        "the row names the help desk's token, not the admin's"
    );
    assert!(revealed[0].actor_token.is_some());
    let outbox = server.stop_and_read_outbox().await;
    assert_eq!(
        outbox.len(),
        1,
        "only the emailed link wrote an email: {outbox:?}"
    );
}

#[tokio::test]
async fn a_revealed_link_is_answered_once_and_emails_nobody_on_sqlite() {
    reveal_on(None).await;
}

#[tokio::test]
async fn a_revealed_link_is_answered_once_and_emails_nobody_on_postgres() {
    let schema = PgSchema::create().await;
    reveal_on(Some(schema.url(None))).await;
    schema.drop_schema().await;
}
