//! What DKIM costs a message: the MIME message of one English link email
//! composed unsigned, signed with RSA-2048 and with Ed25519 (keys made by
//! `openssl genpkey`), in one run: `cargo run --release -p pwmail-server
//! --example sign_letters`. Measured, never asserted.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use lettre::message::Mailbox;
use pwmail_server::config::ServerConfig;
use pwmail_server::dkim::{DkimSigner, Signed};
use pwmail_server::mail::Renderer;
use pwmail_server::mail::transport::Composer;
use pwmail_store::{Content, LinkOptions, MessageKind, NewMessage, OutboxMessage};

fn key(dir: &std::path::Path, args: &[&str]) -> DkimSigner {
    let path = dir.join(format!("{}.pem", args[1]));
    let made = Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(&path)
        .status()
        .expect("openssl");
    assert!(made.success());
    let pem = std::fs::read(&path).unwrap();
    DkimSigner::from_pem(&pem, "key", "s1", "pwmail.example").unwrap()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = key(
        dir.path(),
        &["-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let ed = key(dir.path(), &["-algorithm", "ed25519"]);
    let renderer = Renderer::for_config(&ServerConfig::default()).unwrap();
    let row = OutboxMessage {
        id: 1,
        message: NewMessage {
            message_id: "x@pwmail.example".into(),
            kind: MessageKind::SendPasswordEmail,
            recipient: "a@example.com".into(),
            content: Content::Link {
                link: "https://pwmail.example/reset/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                    .into(),
                name: Some("Ada".into()),
                expires_at: 1_800_000_000_000,
                options: LinkOptions::default(),
            },
        },
        attempts: 1,
        created_at: 1_799_913_600_000,
        queued_at: 0,
        request_id: None,
        user_locale: None,
        user_id: None,
        user_name: None,
    };
    let letter = renderer.letter(&row).unwrap();
    let from: Mailbox = "pwmail <no-reply@pwmail.example>".parse().unwrap();
    let composers = [
        ("unsigned", None),
        ("rsa-2048", Some(Arc::new(rsa))),
        ("ed25519", Some(Arc::new(ed))),
    ]
    .map(|(name, dkim)| {
        (
            name,
            Composer {
                from: from.clone(),
                dkim,
            },
        )
    });
    let n = 5_000;
    for round in 0..3 {
        let mut base = 0.0;
        for (name, composer) in &composers {
            let t = Instant::now();
            for _ in 0..n {
                let built = composer.compose(&letter, Signed::Whole).unwrap();
                std::hint::black_box(built.bytes.len());
            }
            let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
            if *name == "unsigned" {
                base = us;
            }
            println!(
                "round {round} {name:>8}: {us:8.2} us/message ({:.1}x unsigned)",
                us / base
            );
        }
    }
}
