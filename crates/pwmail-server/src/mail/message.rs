//! The MIME message sent for a queued row.

use std::time::{Duration, UNIX_EPOCH};

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart, header};
use pwmail_store::{NewMessage, UnixMillis};

use super::MailError;

/// The MIME message for a queued row: multipart/alternative (text, HTML), with
/// the stored Message-ID so every attempt sends the same message.
pub fn build_message(
    msg: &NewMessage,
    from: &Mailbox,
    queued_at: UnixMillis,
) -> Result<lettre::Message, MailError> {
    let to: Mailbox = msg
        .recipient
        .parse()
        .map_err(|e| MailError::Build(format!("recipient: {e}")))?;
    let date = UNIX_EPOCH + Duration::from_millis(queued_at.max(0) as u64);
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&msg.subject)
        .message_id(Some(format!("<{}>", msg.message_id)))
        .date(date)
        .header(header::MIME_VERSION_1_0)
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(body(&msg.body_text)),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(body(&msg.body_html)),
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
    let lines: Vec<&str> = content
        .split('\n')
        .flat_map(|line| line.strip_suffix('\r').unwrap_or(line).split('\r'))
        .collect();
    let crlf = lines.join("\r\n");
    let plain = crlf.is_ascii()
        && !crlf.contains('\0')
        && lines.iter().all(|line| line.len() <= LONGEST_7BIT_LINE);
    if !plain {
        return Body::new(crlf);
    }
    Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
}

#[cfg(test)]
mod tests {
    use super::*;

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
