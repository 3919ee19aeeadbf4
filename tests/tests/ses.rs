//! Delivery through Amazon SES (API v2), with moto's server mode as SES:
//! what arrived is read back from moto's state; each request's SigV4
//! signature is recomputed by botocore's signer; DKIM (signed without
//! Message-ID and Date, which SES replaces) is checked by dkimpy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pwmail_client::types::ResetPasswordByAdminRequest;
use pwmail_server::config::MailConfig;
use pwmail_server::config::ses::SesConfig;
use pwmail_server::dkim::DkimSigner;
use pwmail_store::{LinkState, OutboxState};
use pwmail_testkit::proxy::TcpProxy;
use pwmail_testkit::ses::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, SesServer};
use pwmail_testkit::{KeyAlgorithm, header};
use pwmail_tests::{Options, TestServer};

fn ses(endpoint: &str) -> MailConfig {
    let env = |name: &str| match name {
        "AWS_ACCESS_KEY_ID" => Some(ACCESS_KEY_ID.to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some(SECRET_ACCESS_KEY.to_string()),
        _ => None,
    };
    MailConfig::Ses(SesConfig::new(REGION, Some(endpoint), &env).unwrap())
}

async fn reset(server: &TestServer, email: &str) {
    server
        .client()
        .reset_password_by_admin()
        .body(ResetPasswordByAdminRequest::builder().email(email))
        .send()
        .await
        .expect("200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_f5_operations_go_through_ses_signed_as_botocore_signs() {
    let moto = SesServer::start(Some("pwmail.test"));
    let dir = tempfile::tempdir().unwrap();
    let (key, record) = pwmail_testkit::openssl_dkim_key(dir.path(), KeyAlgorithm::Ed25519);
    let pem = std::fs::read(&key).unwrap();
    let server = TestServer::start_with(Options {
        mail: Some(ses(&moto.endpoint())),
        dkim: Some(Arc::new(
            DkimSigner::from_pem(&pem, "dkim.pem", "mail2026", "pwmail.test").unwrap(),
        )),
        ..Options::default()
    })
    .await;
    server.add_user("ada@example.com", false).await;
    server.add_user("bob@example.com", false).await;
    server
        .call_both_f5_operations("ada@example.com", "bob@example.com")
        .await;
    let sent = server.expect_outbox(OutboxState::Sent, 2).await;
    let messages = moto.messages().await;
    assert_eq!(messages.len(), 2, "{}", moto.log());

    for (to, subject) in [
        ("ada@example.com", "Set your pwmail password"),
        ("bob@example.com", "Your pwmail password was reset"),
    ] {
        let raw = messages
            .iter()
            .find(|m| header(m, "To").as_deref() == Some(to))
            .unwrap_or_else(|| panic!("no message to {to}"));
        assert_eq!(header(raw, "Subject").as_deref(), Some(subject));
        assert_eq!(
            header(raw, "Auto-Submitted").as_deref(),
            Some("auto-generated")
        );
        let token = pwmail_testkit::link_token(raw).expect("a link");
        let link = server
            .store()
            .find_link(&pwmail_server::secrets::hash(&token))
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(link.state, LinkState::Open);
        // DKIM leaves out the two headers SES replaces, and verifies.
        let file = dir.path().join("ses.eml");
        std::fs::write(&file, raw.replace("\r\n", "\n").replace('\n', "\r\n")).unwrap();
        let (ok, said) =
            pwmail_testkit::dkimpy_verify(&file, "mail2026._domainkey.pwmail.test", &record);
        assert!(
            ok && said.contains("h=from:to:subject:auto-submitted:mime-version:content-type:from"),
            "{said}"
        );
        // The row keeps SES's MessageId.
        let row = sent.iter().find(|r| r.recipient == to).unwrap();
        let reply = row.last_reply.as_deref().unwrap_or_default();
        assert!(reply.starts_with("SES MessageId "), "{reply}");
        assert!(reply.len() > "SES MessageId ".len() + 8, "{reply}");
    }

    // Each SendEmail's SigV4 signature is what botocore computes for the
    // same request; a changed body is not.
    let sends: Vec<String> = moto
        .recorded()
        .into_iter()
        .filter(|r| r.contains("/v2/email/outbound-emails"))
        .collect();
    assert_eq!(sends.len(), 2, "{:?}", moto.recorded());
    for request in &sends {
        let (ok, said) = moto.sigv4_check(request);
        assert!(ok, "{said}");
        let mut changed: serde_json::Value = serde_json::from_str(request).unwrap();
        changed["body"] = serde_json::Value::String("{}".into());
        changed["body_encoded"] = serde_json::Value::Bool(false);
        let (ok, said) = moto.sigv4_check(&changed.to_string());
        assert!(!ok, "botocore agreed with a changed body: {said}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_rejected_is_dead_with_ses_reason() {
    // Nothing verified: SES refuses the sender.
    let moto = SesServer::start(None);
    let server = TestServer::start_with(Options {
        mail: Some(ses(&moto.endpoint())),
        ..Options::default()
    })
    .await;
    server.add_user("nobody@example.com", false).await;
    reset(&server, "nobody@example.com").await;
    let dead = server.expect_outbox(OutboxState::Dead, 1).await;
    assert_eq!(dead[0].attempts, 1, "not retried");
    let error = dead[0].last_error.as_deref().unwrap_or_default();
    assert!(
        error
            .starts_with("permanent failure: SES answered HTTP 400 Bad Request: MessageRejected: ")
            && error.contains("no-reply@pwmail.test"),
        "{error}"
    );
    assert!(moto.messages().await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_down_while_1000_are_queued_then_all_arrive_once() {
    const N: usize = 1000;
    let moto = SesServer::start(Some("pwmail.test"));
    let proxy = TcpProxy::start(([127, 0, 0, 1], moto.port).into()).await;
    proxy.set_down(true);
    let server =
        pwmail_tests::backlog(ses(&format!("http://127.0.0.1:{}", proxy.addr.port())), N).await;
    server.expect_outbox(OutboxState::Retrying, 1).await;
    proxy.set_down(false);
    let started = Instant::now();
    moto.wait_for(N, Duration::from_secs(120)).await;
    let took = started.elapsed();
    server.wait_until_quiet().await;
    let messages = moto.messages().await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for m in &messages {
        *per_id.entry(header(m, "Message-ID").unwrap()).or_default() += 1;
    }
    assert_eq!(per_id.len(), N, "every email arrived");
    assert!(per_id.values().all(|n| *n == 1), "none twice");
    eprintln!(
        "backlog of {N} sent through SES (moto) in {:.2} s after it came back ({:.0} emails/s, concurrency 16)",
        took.as_secs_f64(),
        N as f64 / took.as_secs_f64()
    );
    server.stop().await;
}
