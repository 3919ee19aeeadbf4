//! The MIME message sent for a queued row.

use std::time::{Duration, UNIX_EPOCH};

use std::fmt::Write as _;

use super::{Letter, MailError};
use lettre::address::Envelope;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart, header};

/// A message ready to go: who it is from and to (the SMTP envelope), and
/// its bytes.
pub struct Built {
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
}

/// The MIME message for a leased row: multipart/alternative (text, HTML), with
/// the stored Message-ID and its queueing time as the Date, so every attempt
/// sends the same message.
///
/// The usual message (ASCII headers, bodies that go as 7bit) is written
/// directly; anything needing an encoded header or body goes through
/// lettre. Building with lettre was ~90,000 instructions a message, an
/// eighth of an API call's whole cost (callgrind, scenario c).
pub fn build_message(msg: &Letter<'_>, from: &Mailbox) -> Result<Built, MailError> {
    let to: Mailbox = msg
        .recipient
        .parse()
        .map_err(|e| MailError::Build(format!("recipient: {e}")))?;
    let envelope = Envelope::new(Some(from.email.clone()), vec![to.email.clone()])
        .map_err(|e| MailError::Build(e.to_string()))?;
    let bytes = match plain(msg, from, &to) {
        Some(bytes) => bytes,
        None => with_lettre(msg, from, to)?.formatted(),
    };
    Ok(Built { envelope, bytes })
}

/// Longest Subject written as it is; longer ones are folded by lettre.
const LONGEST_PLAIN_SUBJECT: usize = 900;

/// The message written directly, when nothing in it needs encoding: every
/// header ASCII text with nothing to quote or fold, both bodies 7bit.
fn plain(msg: &Letter<'_>, from: &Mailbox, to: &Mailbox) -> Option<Vec<u8>> {
    let printable = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b));
    let subject_plain = msg.subject.len() <= LONGEST_PLAIN_SUBJECT
        && printable(&msg.subject)
        && !msg.subject.contains("=?")
        && msg.subject.trim() == msg.subject;
    // A display name of words needs no quoting; anything else might.
    let name_plain = from.name.as_deref().is_none_or(|name| {
        !name.is_empty()
            && name.len() <= 200
            && name.trim() == name
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
    });
    let addresses_plain =
        to.name.is_none() && printable(from.email.as_ref()) && printable(to.email.as_ref());
    if !(subject_plain && name_plain && addresses_plain) {
        return None;
    }
    let text = seven_bit(&msg.text)?;
    let html = seven_bit(&msg.html)?;
    // The Message-ID makes the boundary unique to the message; the same on
    // every attempt, so every attempt sends the same bytes.
    let boundary: String = format!("=_pwmail_{}", msg.message_id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "=_.-".contains(c) {
                c
            } else {
                '.'
            }
        })
        .collect();
    let delimiter = format!("--{boundary}");
    if boundary.len() > 70 || text.contains(&delimiter) || html.contains(&delimiter) {
        return None;
    }
    let date = chrono::DateTime::from_timestamp_millis(msg.date.max(0))?
        .format("%a, %d %b %Y %H:%M:%S +0000");
    let mut out = String::with_capacity(text.len() + html.len() + 640);
    match &from.name {
        // Quoted when it has spaces, as lettre writes it.
        Some(name) if name.contains(' ') => write!(out, "From: \"{name}\" <{}>\r\n", from.email),
        Some(name) => write!(out, "From: {name} <{}>\r\n", from.email),
        None => write!(out, "From: {}\r\n", from.email),
    }
    .ok()?;
    write!(
        out,
        "To: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: {date}\r\n\
         Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n",
        to = to.email,
        subject = msg.subject,
        id = msg.message_id,
    )
    .ok()?;
    for (kind, body) in [("plain", &text), ("html", &html)] {
        write!(
            out,
            "{delimiter}\r\nContent-Type: text/{kind}; charset=utf-8\r\n\
             Content-Transfer-Encoding: 7bit\r\n\r\n{body}\r\n"
        )
        .ok()?;
    }
    write!(out, "{delimiter}--\r\n").ok()?;
    Some(out.into_bytes())
}

/// `Auto-Submitted: auto-generated` (RFC 3834): a machine wrote this
/// message, so vacation responders and other automatic replies stay quiet.
#[derive(Clone, Debug)]
struct AutoSubmitted;

impl header::Header for AutoSubmitted {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

/// The same message, built by lettre (encoded headers and bodies).
fn with_lettre(
    msg: &Letter<'_>,
    from: &Mailbox,
    to: Mailbox,
) -> Result<lettre::Message, MailError> {
    let date = UNIX_EPOCH + Duration::from_millis(msg.date.max(0) as u64);
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(msg.subject.as_ref())
        .message_id(Some(format!("<{}>", msg.message_id)))
        .date(date)
        .header(AutoSubmitted)
        .header(header::MIME_VERSION_1_0)
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(body(&msg.text)),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(body(&msg.html)),
                ),
        )
        .map_err(|e| MailError::Build(e.to_string()))
}

/// Longest line sent as it is: SMTP's limit is 998 octets.
const LONGEST_7BIT_LINE: usize = 998;

/// A body with every line ending CRLF (a template saved with CRLF or a lone
/// CR included), as 7bit when it can go as it is (ASCII, no NUL, lines
/// within SMTP's limit), else as lettre chooses. lettre alone would
/// quoted-print any line of 76 octets or more, which every line holding a
/// link in HTML is: measured at a third of building a message.
fn body(content: &str) -> Body {
    let (text, plain) = crlf(content);
    if plain {
        Body::dangerous_pre_encoded(text.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text)
    }
}

/// `content` with CRLF line ends, if it can go as 7bit as it is.
fn seven_bit(content: &str) -> Option<String> {
    let (text, plain) = crlf(content);
    plain.then_some(text)
}

/// `content` with every line ending CRLF (a CRLF, a lone CR and a lone LF
/// each end one line), and whether it can go as 7bit as it is: ASCII, no
/// NUL, no line over SMTP's limit. One pass, memchr finding the line ends:
/// it runs on every message sent.
fn crlf(content: &str) -> (String, bool) {
    let mut plain = content.is_ascii() && memchr::memchr(0, content.as_bytes()).is_none();
    let mut out = String::with_capacity(content.len() + content.len() / 16 + 2);
    let mut rest = content;
    loop {
        let end = memchr::memchr2(b'\r', b'\n', rest.as_bytes());
        let line = &rest[..end.unwrap_or(rest.len())];
        plain &= line.len() <= LONGEST_7BIT_LINE;
        out.push_str(line);
        let Some(end) = end else {
            return (out, plain);
        };
        out.push_str("\r\n");
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str, text: &str, html: &str) -> Letter<'static> {
        Letter {
            message_id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b@pwmail.test",
            recipient: "user@example.com",
            subject: subject.to_string().into(),
            text: text.to_string().into(),
            html: html.to_string().into(),
            date: 1_796_000_000_123,
            kind: "send_password_email",
            lang: pwmail_i18n::Lang::ENGLISH,
            user_id: None,
            user_name: None,
            link: None,
            link_expires_at: None,
        }
    }

    /// Header lines (unfolded, boundary parameter dropped) and the parts'
    /// headers and bodies, as a reader of the message sees them.
    type Headers = Vec<(String, String)>;
    type Parts = Vec<(Vec<String>, String)>;

    fn parsed(bytes: &[u8]) -> (Headers, Parts) {
        let text = std::str::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut headers: Headers = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                headers.last_mut().unwrap().1.push_str(line);
                continue;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        let content_type = &headers.iter().find(|(n, _)| n == "content-type").unwrap().1;
        let boundary = content_type
            .split("boundary=")
            .nth(1)
            .unwrap()
            .trim_matches('"')
            .to_string();
        for (name, value) in &mut headers {
            if name == "content-type" {
                *value = "multipart/alternative".into();
            }
        }
        headers.sort();
        let delimiter = format!("--{boundary}");
        let parts = body
            .split(&delimiter)
            .skip(1)
            .filter(|p| !p.starts_with("--"))
            .map(|part| {
                let part = part.strip_prefix("\r\n").unwrap();
                let (head, body) = part.split_once("\r\n\r\n").unwrap();
                let mut head: Vec<String> =
                    head.split("\r\n").map(str::to_ascii_lowercase).collect();
                head.sort();
                (head, body.strip_suffix("\r\n").unwrap().to_string())
            })
            .collect();
        assert!(
            body.ends_with(&format!("{delimiter}--\r\n")),
            "closed: {body:?}"
        );
        (headers, parts)
    }

    #[test]
    fn every_kind_of_line_end_becomes_one_crlf() {
        for (content, expected) in [
            ("", ""),
            ("a", "a"),
            ("a\n", "a\r\n"),
            ("a\r\nb", "a\r\nb"),
            ("a\rb", "a\r\nb"),
            ("a\r\r\nb\n\n", "a\r\n\r\nb\r\n\r\n"),
            ("\n\r", "\r\n\r\n"),
            ("x\r", "x\r\n"),
        ] {
            assert_eq!(seven_bit(content).as_deref(), Some(expected), "{content:?}");
        }
        assert_eq!(
            seven_bit(&"x".repeat(LONGEST_7BIT_LINE)).map(|s| s.len()),
            Some(998)
        );
        assert!(seven_bit(&format!("a\n{}\nb", "x".repeat(999))).is_none());
        assert!(seven_bit("nul\0").is_none());
        assert!(seven_bit("Grüße").is_none());
        assert_eq!(crlf("Grüße\n"), ("Grüße\r\n".to_string(), false));
    }

    #[test]
    fn a_plain_message_reads_as_lettre_would_have_built_it() {
        let from: Mailbox = "Acme Accounts <no-reply@acme.test>".parse().unwrap();
        let msg = message(
            "Set your Acme password",
            "Hello,\n\nhttps://acme.test/reset/abc\n",
            "<p>Hello,</p>\n<p><a href=\"https://acme.test/reset/abc\">Set it</a></p>\n",
        );
        let to: Mailbox = msg.recipient.parse().unwrap();
        let direct = plain(&msg, &from, &to).expect("plain");
        let lettre = with_lettre(&msg, &from, to).unwrap().formatted();
        assert_eq!(parsed(&direct), parsed(&lettre));
        // RFC 3834, on both ways of writing it.
        for bytes in [&direct, &lettre] {
            let (headers, _) = parsed(bytes);
            assert!(
                headers.contains(&("auto-submitted".into(), "auto-generated".into())),
                "{headers:?}"
            );
        }
        let built = build_message(&msg, &from).unwrap();
        assert_eq!(built.bytes, direct, "build_message takes the direct way");
        assert_eq!(
            built.envelope.from().unwrap().to_string(),
            "no-reply@acme.test"
        );
        assert_eq!(built.envelope.to()[0].to_string(), "user@example.com");
    }

    #[test]
    fn anything_needing_encoding_is_left_to_lettre() {
        let from: Mailbox = "pwmail <no-reply@pwmail.test>".parse().unwrap();
        let to: Mailbox = "user@example.com".parse().unwrap();
        let cases = [
            message("Grüße", "t", "h"),
            message("=?utf-8?q?x?=", "t", "h"),
            message(&"long ".repeat(200), "t", "h"),
            message("s", "Grüße", "h"),
            message("s", "t", &"x".repeat(1200)),
        ];
        for msg in &cases {
            assert!(plain(msg, &from, &to).is_none(), "{:?}", msg.subject);
            let built = build_message(msg, &from).unwrap();
            let (headers, parts) = parsed(&built.bytes);
            assert_eq!(parts.len(), 2, "{headers:?}");
        }
        let quoted: Mailbox = "\"Acme, Inc.\" <no-reply@acme.test>".parse().unwrap();
        assert!(plain(&message("s", "t", "h"), &quoted, &to).is_none());
        let named_to: Mailbox = "Zoë <user@example.com>".parse().unwrap();
        assert!(plain(&message("s", "t", "h"), &from, &named_to).is_none());
        // A body holding the boundary's delimiter cannot go as it is.
        let sneaky = message(
            "s",
            "--=_pwmail_0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.pwmail.test",
            "h",
        );
        assert!(plain(&sneaky, &from, &to).is_none());
    }

    fn encoded(content: &str) -> (ContentTransferEncoding, String) {
        let body = body(content);
        (body.encoding(), String::from_utf8(body.into_vec()).unwrap())
    }

    #[test]
    fn an_ascii_body_with_long_lines_goes_as_it_is() {
        let link = format!("<a href=\"https://x.example/reset/{}\">", "a".repeat(120));
        let (encoding, text) = encoded(&format!("<p>\n{link}\n</p>\n"));
        assert_eq!(encoding, ContentTransferEncoding::SevenBit);
        assert_eq!(text, format!("<p>\r\n{link}\r\n</p>\r\n"));
    }

    #[test]
    fn other_bodies_are_encoded() {
        for content in [
            "Grüße\n".to_string(),
            format!("{}\n", "a".repeat(LONGEST_7BIT_LINE + 1)),
        ] {
            let (encoding, text) = encoded(&content);
            assert!(
                matches!(
                    encoding,
                    ContentTransferEncoding::QuotedPrintable | ContentTransferEncoding::Base64
                ),
                "{content:?}: {encoding:?}"
            );
            assert!(text.lines().all(|l| l.len() <= 76), "{text}");
        }
    }

    #[test]
    fn every_line_ends_crlf() {
        for content in ["a\rb\r\nc\n", "Grüße\ra\r\n"] {
            let (_, text) = encoded(content);
            let bare = text.replace("\r\n", "");
            assert!(!bare.contains('\r') && !bare.contains('\n'), "{text:?}");
        }
        assert_eq!(encoded("a\rb\r\nc\n").1, "a\r\nb\r\nc\r\n");
    }
}
