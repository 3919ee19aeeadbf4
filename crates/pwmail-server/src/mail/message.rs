//! The MIME message sent for a queued row.

use std::time::{Duration, UNIX_EPOCH};

use lettre::message::{Mailbox, MultiPart, header};
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
        .multipart(MultiPart::alternative_plain_html(
            msg.body_text.clone(),
            msg.body_html.clone(),
        ))
        .map_err(|e| MailError::Build(e.to_string()))
}
