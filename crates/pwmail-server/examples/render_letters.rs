//! Letters written per second by the dispatcher's renderer, English and a mix of
//! four languages (en, de, ja, ar): `cargo run --release -p pwmail-server --example
//! render_letters`. Measured, never asserted; compare two builds run one after
//! the other on the same machine.

use pwmail_server::config::ServerConfig;
use pwmail_server::mail::Renderer;
use pwmail_store::{Content, LinkOptions, MessageKind, NewMessage, OutboxMessage};
use std::time::Instant;
fn row(user_locale: Option<&str>) -> OutboxMessage {
    OutboxMessage {
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
        user_locale: user_locale.map(String::from),
        user_id: None,
        user_name: None,
    }
}
fn main() {
    let r = Renderer::for_config(&ServerConfig::default()).unwrap();
    let rows: Vec<OutboxMessage> = [None, Some("de"), Some("ja"), Some("ar")]
        .into_iter()
        .map(row)
        .collect();
    let n = 40_000;
    for round in 0..3 {
        for which in ["en", "mixed"] {
            let t = Instant::now();
            for i in 0..n {
                let row = if which == "en" {
                    &rows[0]
                } else {
                    &rows[i % 4]
                };
                let l = r.letter(row).unwrap();
                std::hint::black_box(l.text.len() + l.html.len());
            }
            println!(
                "round {round} new {which}: {:.2} us/letter",
                t.elapsed().as_secs_f64() * 1e6 / n as f64
            );
        }
    }
}
