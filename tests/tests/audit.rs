//! Refused calls are audited (issue 37): each refusal a caller meets one
//! call at a time — 403, 404, 409, 422 — writes exactly its audit row and
//! nothing else; unauthenticated calls (401), bad input (400) and volume
//! refusals (429, 503) write nothing. On SQLite and on PostgreSQL.

use pwmail_client::CallError;
use pwmail_client::types::{
    CreateResetLinkRequest, CreateResetLinkRequestDeliver, SendPasswordEmailRequest,
};
use pwmail_store::{AuditOutcome, AuditRecord};
use pwmail_testkit::pg::PgSchema;
use pwmail_tests::{Options, TestServer};

/// The status of a refusal (panics on a success).
fn status<T: std::fmt::Debug>(result: Result<T, CallError>) -> u16 {
    match result {
        Err(CallError::Api { status, .. }) => status,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// What a test checks of a row: who, which operation, for whom, outcome.
fn seen(row: &AuditRecord) -> (Option<String>, String, Option<String>, AuditOutcome) {
    (
        row.actor_email.clone(),
        row.operation.clone(),
        row.target_email.clone(),
        row.outcome,
    )
}

fn row(
    actor: &str,
    operation: &str,
    target: &str,
    outcome: AuditOutcome,
) -> (Option<String>, String, Option<String>, AuditOutcome) {
    (
        Some(actor.to_string()),
        operation.to_string(),
        Some(target.to_string()),
        outcome,
    )
}

async fn refusals_on(database_url: Option<String>) {
    // Eight calls an hour per token: enough for the admin's calls below,
    // and the non-admin's ninth attempt is a 429.
    let server = TestServer::start_with(Options {
        database_url,
        token_rate: (8, 3600),
        ..Options::default()
    })
    .await;
    const ADMIN: &str = pwmail_tests::ADMIN;
    server.add_user("ann@example.com", false).await;
    let bob = server.add_user("bob@example.com", false).await;
    server.add_user("mallory@example.com", false).await;
    server
        .store()
        .disable_user("bob@example.com", pwmail_tests::now())
        .await
        .unwrap();
    let admin = server.client();
    let send = |email: &str| {
        SendPasswordEmailRequest::builder()
            .email(email)
            .namespace(Some("system".try_into().unwrap()))
    };
    let link = |email: &str| CreateResetLinkRequest::builder().email(email);

    // 401 and 400: nothing stored.
    let unknown = server.client_with("pwm_unknowntokenunknowntokenunknowntoken00");
    assert_eq!(
        status(
            unknown
                .send_password_email_system()
                .body(send("ann@example.com"))
                .send()
                .await
        ),
        401
    );
    // Input the app refuses after authenticating the admin: no origin is
    // allowed for `return_to` on this server.
    assert_eq!(
        status(
            admin
                .create_reset_link()
                .body(
                    link("ann@example.com")
                        .return_to(Some("https://app.example.com/".try_into().unwrap()))
                )
                .send()
                .await
        ),
        400
    );
    assert!(
        server.audit().await.is_empty(),
        "{:?}",
        server.audit().await
    );

    // A call that went through, with a key; the key reused for another
    // address is a 422.
    admin
        .send_password_email_system()
        .idempotency_key("ticket-1")
        .body(send("ann@example.com"))
        .send()
        .await
        .expect("200");
    assert_eq!(
        status(
            admin
                .send_password_email_system()
                .idempotency_key("ticket-1")
                .body(send("mallory@example.com"))
                .send()
                .await
        ),
        422
    );
    // 404, 409 (disabled) and 403 (a token that may not receive links).
    assert_eq!(
        status(
            admin
                .reset_password_by_admin()
                .body(
                    pwmail_client::types::ResetPasswordByAdminRequest::builder()
                        .email("Ghost@Example.com")
                )
                .send()
                .await
        ),
        404
    );
    assert_eq!(
        status(
            admin
                .send_password_email_system()
                .body(send("bob@example.com"))
                .send()
                .await
        ),
        409
    );
    assert_eq!(
        status(
            admin
                .create_reset_link()
                .body(link("mallory@example.com").deliver(CreateResetLinkRequestDeliver::Response))
                .send()
                .await
        ),
        403
    );
    // 409: a revealed link's key asked again.
    let help_desk = server.client_with(&server.revealing_token_for(ADMIN).await);
    let reveal = || {
        help_desk
            .create_reset_link()
            .idempotency_key("ticket-2")
            .body(link("mallory@example.com").deliver(CreateResetLinkRequestDeliver::Response))
    };
    reveal().send().await.expect("200");
    assert_eq!(status(reveal().send().await), 409);

    // A non-admin's attempts: 403 each, audited, until the token's rate is
    // spent; past it 429, stored nowhere.
    server.add_user("eve@example.com", false).await;
    let eve = server.client_with(&server.token_for("eve@example.com").await);
    for _ in 0..8 {
        assert_eq!(
            status(
                eve.send_password_email_system()
                    .body(send("ann@example.com"))
                    .send()
                    .await
            ),
            403
        );
    }
    assert_eq!(
        status(
            eve.send_password_email_system()
                .body(send("ann@example.com"))
                .send()
                .await
        ),
        429
    );

    let have: Vec<_> = server.audit().await.iter().map(seen).collect();
    let send_op = "send_password_email";
    let mut want = vec![
        row(ADMIN, send_op, "ann@example.com", AuditOutcome::Ok),
        row(
            ADMIN,
            send_op,
            "mallory@example.com",
            AuditOutcome::KeyReused,
        ),
        row(
            ADMIN,
            "reset_password_by_admin",
            "ghost@example.com",
            AuditOutcome::NoSuchUser,
        ),
        row(ADMIN, send_op, "bob@example.com", AuditOutcome::Disabled),
        row(
            ADMIN,
            send_op,
            "mallory@example.com",
            AuditOutcome::CannotRevealLinks,
        ),
        row(ADMIN, send_op, "mallory@example.com", AuditOutcome::Ok),
        row(
            ADMIN,
            send_op,
            "mallory@example.com",
            AuditOutcome::LinkRevealed,
        ),
    ];
    want.extend((0..8).map(|_| {
        row(
            "eve@example.com",
            send_op,
            "ann@example.com",
            AuditOutcome::NotAdmin,
        )
    }));
    assert_eq!(have, want);
    let all = server.audit().await;
    // Each refusal's row names its call and its token; the key where sent.
    for r in &all {
        assert!(!r.request_id.is_empty() && r.actor_token.is_some(), "{r:?}");
        assert_eq!(
            r.outbox_id.is_some(),
            r.outcome == AuditOutcome::Ok && !r.link_revealed
        );
    }
    assert_eq!(all[1].idempotency_key.as_deref(), Some("ticket-1"));
    assert_eq!(all[2].target_user, None, "no user had the address");
    assert_eq!(all[3].target_user, Some(bob.id));

    // Nothing else was written: one link and one email for the call that
    // went through, one link for the revealed one.
    assert_eq!(server.store().links().await.unwrap().len(), 2);
    assert_eq!(server.stop_and_read_outbox().await.len(), 1);
}

#[tokio::test]
async fn each_refusal_writes_its_audit_row_and_nothing_else_on_sqlite() {
    refusals_on(None).await;
}

#[tokio::test]
async fn each_refusal_writes_its_audit_row_and_nothing_else_on_postgres() {
    let schema = PgSchema::create().await;
    refusals_on(Some(schema.url(None))).await;
}

/// A full backlog's 503 is stored nowhere; on PostgreSQL, a keyed call
/// whose key another replica holds is a 409 audited `key_in_flight`.
async fn backlog_and_key_in_flight_on(database_url: Option<String>) {
    // A relay that refuses every connection keeps the first email waiting.
    let relay = pwmail_testkit::proxy::TcpProxy::start(([127, 0, 0, 1], 9).into()).await;
    relay.set_down(true);
    let smtp = pwmail_server::config::SmtpConfig::from_url(&format!(
        "smtp://127.0.0.1:{}?tls=none",
        relay.addr.port()
    ))
    .unwrap();
    let postgres = database_url.clone();
    let server = TestServer::start_with(Options {
        database_url,
        max_backlog: 1,
        mail: Some(pwmail_server::config::MailConfig::Smtp(smtp)),
        ..Options::default()
    })
    .await;
    server.add_user("ann@example.com", false).await;
    server.add_user("bob@example.com", false).await;
    let token = server.token_for(pwmail_tests::ADMIN).await;
    let admin = server.client_with(&token);
    let send = |email: &str| {
        SendPasswordEmailRequest::builder()
            .email(email)
            .namespace(Some("system".try_into().unwrap()))
    };
    let mut want = Vec::new();
    if let Some(url) = &postgres {
        // Another replica's call holds the key (the lock pwmail_issue_link takes).
        let token_id = server
            .store()
            .authenticate(&pwmail_server::secrets::hash(&token))
            .await
            .unwrap()
            .unwrap()
            .token_id;
        let mut other = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        let mut held = sqlx::Connection::begin(&mut other).await.unwrap();
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended(
                 'idempotency:' || current_schema() || ':' || $1
                 || ':send_password_email:ticket-busy', 0))",
        )
        .bind(token_id)
        .execute(&mut *held)
        .await
        .unwrap();
        let busy = admin
            .send_password_email_system()
            .idempotency_key("ticket-busy")
            .body(send("ann@example.com"))
            .send()
            .await;
        assert!(
            matches!(
                busy,
                Err(CallError::Api {
                    status: 409,
                    code: 10,
                    ..
                })
            ),
            "{busy:?}"
        );
        held.rollback().await.unwrap();
        want.push(row(
            pwmail_tests::ADMIN,
            "send_password_email",
            "ann@example.com",
            AuditOutcome::KeyInFlight,
        ));
    }
    admin
        .send_password_email_system()
        .body(send("ann@example.com"))
        .send()
        .await
        .expect("the first fits");
    want.push(row(
        pwmail_tests::ADMIN,
        "send_password_email",
        "ann@example.com",
        AuditOutcome::Ok,
    ));
    // The backlog is counted every 250 ms: wait until the count has seen it.
    let deadline = std::time::Instant::now() + pwmail_tests::DEADLINE;
    while server.running.app.backlog() < 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        status(
            admin
                .send_password_email_system()
                .body(send("bob@example.com"))
                .send()
                .await
        ),
        503
    );
    let have: Vec<_> = server.audit().await.iter().map(seen).collect();
    assert_eq!(
        have, want,
        "a key in flight audited, the 503 stored nowhere"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_full_backlog_is_stored_nowhere_on_sqlite() {
    backlog_and_key_in_flight_on(None).await;
}

#[tokio::test]
async fn a_key_in_flight_is_audited_and_a_full_backlog_is_not_on_postgres() {
    let schema = PgSchema::create().await;
    backlog_and_key_in_flight_on(Some(schema.url(None))).await;
}
