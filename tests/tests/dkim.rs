//! DKIM: keys made by `openssl genpkey`, messages received by a real SMTP
//! server (aiosmtpd) and written as `.eml` files, each signature checked by
//! dkimpy (an independent verifier) against the record openssl's own
//! public key gives.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pwmail_server::config::{MailConfig, SmtpConfig};
use pwmail_server::dkim::DkimSigner;
use pwmail_testkit::{KeyAlgorithm, SmtpOptions, SmtpServer, openssl_dkim_key};
use pwmail_tests::{Options, TestServer};

fn dkimpy(file: &Path, record: &str) -> (bool, String) {
    pwmail_testkit::dkimpy_verify(file, "mail2026._domainkey.pwmail.test", record)
}

/// Both F5 operations; Ada's in German, a message lettre encodes
/// (quoted-printable bodies, an encoded and folded Subject).
async fn send_both(server: &TestServer) {
    server.add_user_in("ada@example.com", "de").await;
    server.add_user("bob@example.com", false).await;
    server
        .call_both_f5_operations("ada@example.com", "bob@example.com")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_verify_with_dkimpy_over_smtp_and_in_eml_files() {
    let dir = tempfile::tempdir().unwrap();
    for algorithm in [KeyAlgorithm::Rsa2048, KeyAlgorithm::Ed25519] {
        let (key, record) = openssl_dkim_key(dir.path(), algorithm);
        let pem = std::fs::read(&key).unwrap();
        let signer =
            Arc::new(DkimSigner::from_pem(&pem, "key.pem", "mail2026", "pwmail.test").unwrap());
        // pwmail's own record (`pwmail mail dkim-record`) is openssl's.
        assert_eq!(signer.dns_record().1, record);
        assert_eq!(signer.dns_record().0, "mail2026._domainkey.pwmail.test");

        // Over SMTP, as aiosmtpd received them.
        let smtp = SmtpServer::start(SmtpOptions::default());
        let server = TestServer::start_with(Options {
            mail: Some(MailConfig::Smtp(SmtpConfig::from_url(&smtp.url()).unwrap())),
            dkim: Some(Arc::clone(&signer)),
            ..Options::default()
        })
        .await;
        send_both(&server).await;
        let messages = tokio::task::block_in_place(|| smtp.wait_for(2, Duration::from_secs(30)));
        assert_eq!(messages.len(), 2);
        server.stop().await;
        let mut files: Vec<_> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(smtp.maildir.join(sub)).ok())
            .flatten()
            .map(|e| e.unwrap().path())
            .collect();
        // The `.eml` files the directory transport writes.
        let server = TestServer::start_with(Options {
            dkim: Some(Arc::clone(&signer)),
            ..Options::default()
        })
        .await;
        send_both(&server).await;
        server.wait_for_emails(2, Duration::from_secs(30)).await;
        // Copied out: the server's directory goes when it stops.
        for (i, eml) in std::fs::read_dir(&server.mail_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .enumerate()
        {
            let copy = dir.path().join(format!("{algorithm:?}-{i}.eml"));
            std::fs::copy(&eml, &copy).unwrap();
            files.push(copy);
        }
        server.stop().await;
        assert_eq!(files.len(), 4, "{files:?}");

        let a = match algorithm {
            KeyAlgorithm::Rsa2048 => "rsa-sha256",
            KeyAlgorithm::Ed25519 => "ed25519-sha256",
        };
        for file in &files {
            let (ok, said) = dkimpy(file, &record);
            assert!(ok, "{algorithm:?} {}: {said}", file.display());
            assert!(
                said.starts_with(&format!(
                    "ok a={a} d=pwmail.test s=mail2026 \
                     h=from:to:subject:date:message-id:auto-submitted:mime-version:content-type:from"
                )),
                "{said}"
            );
            // A changed Subject, or a word added to the text, breaks it:
            // the verifier does not say yes to everything.
            let text = std::fs::read_to_string(file).unwrap();
            let part = text.find("text/plain").unwrap();
            let blank = part
                + text[part..]
                    .find("\n\n")
                    .or(text[part..].find("\n\r\n"))
                    .unwrap();
            let mut body_changed = text.clone();
            body_changed.insert(blank + 2, 'X');
            for tampered_text in [text.replacen("Subject: ", "Subject: X", 1), body_changed] {
                assert_ne!(tampered_text, text);
                let tampered = dir.path().join("tampered.eml");
                std::fs::write(&tampered, tampered_text).unwrap();
                let (ok, said) = dkimpy(&tampered, &record);
                assert!(!ok, "a tampered message verified: {said}");
            }
        }
    }
}
