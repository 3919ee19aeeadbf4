//! Suppression: an address whose email failed for good because of the
//! address is refused (409) before anything is written, until lifted; a
//! failure that is not the address's suppresses nothing.

use pwmail_client::CallError;
use pwmail_client::types::ResetPasswordByAdminRequest;
use pwmail_server::app::users as admin;
use pwmail_server::config::hook::MAIL_HOOK;
use pwmail_server::config::{HookConfig, MailConfig, SmtpConfig};
use pwmail_store::OutboxState;
use pwmail_testkit::hook::{Answer, HookReceiver, SECRET};
use pwmail_testkit::{SmtpOptions, SmtpServer};
use pwmail_tests::{KNOWN_HASH, Options, TestServer, now};

async fn reset(server: &TestServer, email: &str) -> Result<(), (u16, i32, String)> {
    match server
        .client()
        .reset_password_by_admin()
        .body(ResetPasswordByAdminRequest::builder().email(email))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(CallError::Api {
            status,
            code,
            message,
            ..
        }) => Err((status, code, message)),
        Err(e) => panic!("{e}"),
    }
}

fn smtp(server: &SmtpServer) -> MailConfig {
    MailConfig::Smtp(SmtpConfig::from_url(&server.url()).unwrap())
}

async fn started(mail: MailConfig) -> TestServer {
    TestServer::start_with(Options {
        mail: Some(mail),
        dispatcher: pwmail_tests::fast_retries(),
        user_rate: (100, 60),
        ..Options::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_is_suppressed_and_the_next_reset_is_409_with_the_password_untouched() {
    // Pipelined (the RCPT reply is known as such) and not (lettre's own
    // transaction: the 5.1.1 status says it is the address).
    for pipelining in [true, false] {
        let relay = SmtpServer::start(SmtpOptions {
            refuse_rcpt: Some("gone".into()),
            pipelining,
            ..SmtpOptions::default()
        });
        let server = started(smtp(&relay)).await;
        let gone = server.add_user("gone@example.com", false).await;
        server.add_user("fine@example.com", false).await;
        reset(&server, "gone@example.com")
            .await
            .expect("the first call is accepted");
        reset(&server, "fine@example.com").await.unwrap();
        let dead = server.expect_outbox(OutboxState::Dead, 1).await;
        assert_eq!(dead[0].recipient, "gone@example.com");
        assert_eq!(dead[0].attempts, 1, "not retried");
        let reason = dead[0].last_error.clone().unwrap();
        assert!(
            reason.contains("550") && reason.contains("5.1.1"),
            "{reason}"
        );
        server.expect_outbox(OutboxState::Sent, 1).await;

        let user = server.store().user_by_id(gone.id).await.unwrap().unwrap();
        let suppression = user.suppressed.clone().expect("suppressed");
        assert_eq!(suppression.reason, reason);
        assert!(!user.deliverable);
        let audit = server.audit().await;
        assert!(
            audit
                .iter()
                .any(|r| r.operation == "suppressed" && r.target_user == Some(gone.id)),
            "{audit:?}"
        );

        // Say the user set a password meanwhile: the refused call leaves it.
        server.set_known_password(gone.id).await;
        let (status, code, message) = reset(&server, "gone@example.com").await.unwrap_err();
        assert_eq!((status, code), (409, 9), "{message}");
        let since = pwmail_server::clock::format_utc(suppression.at);
        assert!(
            message.contains(&format!("\"gone@example.com\" is suppressed since {since}"))
                && message.contains("5.1.1")
                && message.contains("pwmail user unsuppress gone@example.com"),
            "{message}"
        );
        assert_eq!(
            server
                .store()
                .password_hash(gone.id)
                .await
                .unwrap()
                .as_deref(),
            Some(KNOWN_HASH),
            "the password is untouched"
        );
        assert_eq!(
            server.store().list_outbox(None, 100).await.unwrap().len(),
            2,
            "nothing queued"
        );
        // Others are not affected.
        reset(&server, "fine@example.com").await.unwrap();
        // email_status shows it, on the user's emails.
        let status = |email: &'static str| {
            let client = server.client();
            async move {
                client
                    .get_password_email_status()
                    .email(email)
                    .send()
                    .await
                    .expect("200")
                    .into_inner()
                    .items
            }
        };
        let items = status("gone@example.com").await;
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0]
                .recipient_suppressed_at
                .map(|t| t.timestamp_millis()),
            Some(suppression.at)
        );
        assert!(
            status("fine@example.com")
                .await
                .iter()
                .all(|i| i.recipient_suppressed_at.is_none())
        );

        // Lifted: calls go through again (and the relay refuses again).
        let lifted = admin::unsuppress(server.store(), "GONE@example.com", now(), "test-1")
            .await
            .unwrap();
        assert_eq!(lifted, suppression);
        assert!(
            server
                .audit()
                .await
                .iter()
                .any(|r| r.operation == "unsuppressed" && r.request_id == "test-1")
        );
        let again = admin::unsuppress(server.store(), "gone@example.com", now(), "test-2")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            again,
            "gone@example.com is not suppressed (nothing to lift)"
        );
        assert!(
            status("gone@example.com").await[0]
                .recipient_suppressed_at
                .is_none()
        );
        reset(&server, "gone@example.com")
            .await
            .expect("accepted once lifted");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_that_are_not_the_address_suppress_nothing() {
    // The hook refuses (401), the relay refuses the message after DATA
    // without an addressing status (550), the relay refuses the login.
    let hook = HookReceiver::start().await;
    hook.script([Answer::status(401)]);
    let after_data = SmtpServer::start(SmtpOptions {
        script: vec![550],
        ..SmtpOptions::default()
    });
    let auth = SmtpServer::start(SmtpOptions {
        auth: Some(("mailer".into(), "right".into())),
        ..SmtpOptions::default()
    });
    let wrong_login = {
        let mut config = SmtpConfig::from_url(&auth.url()).unwrap();
        config.username = Some("mailer".into());
        config.password = Some("wrong".into());
        MailConfig::Smtp(config)
    };
    for (mail, ends) in [
        (
            MailConfig::Hook(HookConfig::new(MAIL_HOOK, &hook.url(), SECRET, "test").unwrap()),
            OutboxState::Dead,
        ),
        (smtp(&after_data), OutboxState::Dead),
        (wrong_login, OutboxState::Retrying),
    ] {
        let server = started(mail).await;
        let user = server.add_user("someone@example.com", false).await;
        reset(&server, "someone@example.com").await.unwrap();
        let rows = server.expect_outbox(ends, 1).await;
        let error = rows[0].last_error.clone().unwrap_or_default();
        let user = server.store().user_by_id(user.id).await.unwrap().unwrap();
        assert!(
            user.suppressed.is_none() && user.deliverable,
            "{error}: {user:?}"
        );
        reset(&server, "someone@example.com")
            .await
            .unwrap_or_else(|e| panic!("after {error}: {e:?}"));
        server.stop().await;
    }
}
