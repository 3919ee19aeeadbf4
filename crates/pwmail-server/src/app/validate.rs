//! Input rules. The email rule is the API document's (pattern and length,
//! taken from the generated type), so every stored user can be the target
//! of SendPasswordEmail; the namespace rule is upstream's `string.const`.

use std::time::Duration;

use pwmail_types::SendPasswordEmailRequestEmail;

use crate::app::AppError;
use crate::config::{LinkTtlRange, ReturnTo};

pub const NAMESPACE: &str = "system";

/// `namespace` is always "system" upstream; when the body names one too, it
/// must be the one in the path.
pub fn namespace(path: &str, body: Option<&str>) -> Result<(), AppError> {
    if path != NAMESPACE {
        return Err(AppError::Invalid(format!(
            "namespace must be \"system\", got {}",
            quoted(path)
        )));
    }
    match body {
        Some(body) if body != path => Err(AppError::Invalid(format!(
            "namespace in the body ({}) differs from the namespace in the path ({})",
            quoted(body),
            quoted(path)
        ))),
        _ => Ok(()),
    }
}

/// A user's or a call's language: a well-formed BCP 47 tag as the API
/// document's pattern spells one (the same rule for the CLI's users as for
/// the API's calls), returned in its canonical spelling (`de-at` →
/// `de-AT`). A tag without a catalog is fine: it is negotiated to the
/// nearest when used.
pub fn locale(tag: &str) -> Result<String, AppError> {
    let invalid = |e: pwmail_i18n::LocaleError| AppError::Invalid(format!("locale {e}"));
    pwmail_types::CreateResetLinkRequestLocale::try_from(tag).map_err(|_| {
        invalid(pwmail_i18n::LocaleError::Malformed {
            tag: tag.chars().take(pwmail_i18n::TAG_MAX).collect(),
        })
    })?;
    pwmail_i18n::Locale::parse(tag)
        .map(|locale| locale.to_string())
        .map_err(invalid)
}

/// Longest display name, in characters.
pub const NAME_MAX_CHARS: usize = 256;

/// A user's display name is written into emails: no control characters
/// (a CR/LF would start a line the attacker wrote), no bidirectional
/// overrides or isolates (U+202E makes text read backwards), at most
/// [`NAME_MAX_CHARS`] characters.
pub fn name(name: &str) -> Result<(), AppError> {
    let length = name.chars().count();
    if length > NAME_MAX_CHARS {
        return Err(AppError::Invalid(format!(
            "name is {length} characters long; at most {NAME_MAX_CHARS} are allowed"
        )));
    }
    let bidi = |c: char| matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if let Some(c) = name.chars().find(|c| c.is_control() || bidi(*c)) {
        return Err(AppError::Invalid(format!(
            "name holds the control character U+{:04X}; names may not hold control or \
             text-direction characters",
            c as u32
        )));
    }
    Ok(())
}

/// An address a user may have: it matches the API document's pattern (the
/// upstream contract) and the mail builder can send to it.
pub fn email(email: &str) -> Result<(), AppError> {
    email_pattern(email)?;
    deliverable(email)
}

/// The API document's rule for an email in a request (pattern and length).
pub fn email_pattern(email: &str) -> Result<(), AppError> {
    SendPasswordEmailRequestEmail::try_from(email)
        .map(|_| ())
        .map_err(|e| AppError::InvalidEmail {
            email: quoted(email),
            reason: pattern_reason(&e.to_string()),
        })
}

/// The generated type's reason, with the regex of "doesn't match pattern"
/// explained: the pattern is upstream's contract, so an address like
/// `o'brien@example.com` is refused on purpose, and the message says so.
fn pattern_reason(reason: &str) -> String {
    match reason.split_once("doesn't match pattern ") {
        Some((_, pattern)) => format!(
            "must match the upstream API's email pattern {pattern}: letters, digits \
             and . _ % + - before the @, then a domain with a dot and a top-level \
             domain of 2 or more letters (no apostrophes, no accented letters)"
        ),
        None => reason.to_string(),
    }
}

/// Whether mail can be addressed to `email`: the same parse the message
/// builder applies to the recipient (dot-atom local part of at most 64
/// characters, host-name labels), so an address accepted here is never
/// refused when its email is built.
pub fn deliverable(email: &str) -> Result<(), AppError> {
    email
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|e| AppError::Undeliverable {
            email: quoted(email),
            reason: e.to_string(),
        })
}

/// The refusal of an address mail cannot reach (a stored one, found so when
/// it was written), in the words of [`deliverable`].
pub fn undeliverable(email: &str) -> AppError {
    deliverable(email)
        .err()
        .unwrap_or_else(|| AppError::Undeliverable {
            email: quoted(email),
            reason: "the user's stored address is not one mail can be addressed to".into(),
        })
}

/// The refusal of a suppressed address: since when, why, and how to lift it.
pub fn suppressed(email: &str, suppression: &pwmail_store::Suppression) -> AppError {
    AppError::Suppressed {
        email: quoted(email),
        plain: email.to_string(),
        since: crate::clock::format_utc(suppression.at),
        reason: suppression.reason.clone(),
    }
}

/// An Idempotency-Key: 1 to 255 printable ASCII characters (the document's
/// pattern; dropshot does not check header patterns).
pub fn idempotency_key(key: &str) -> Result<(), AppError> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(AppError::Invalid(format!(
            "Idempotency-Key must be 1 to 255 printable ASCII characters, got {}",
            quoted(key)
        )));
    }
    Ok(())
}

/// A link lifetime a call asked for, within what the server allows.
pub fn lifetime(lifetime: Duration, range: &LinkTtlRange) -> Result<(), AppError> {
    if !range.contains(lifetime) {
        return Err(AppError::Invalid(format!(
            "ttl_secs must be between {} and {} on this server \
             (--link-ttl-min-secs..--link-ttl-max-secs), got {}",
            range.min.as_secs(),
            range.max.as_secs(),
            lifetime.as_secs()
        )));
    }
    Ok(())
}

/// Where the done page may send the user: the rule is `ReturnTo`'s.
pub fn return_to(text: &str, allowed: &ReturnTo) -> Result<(), AppError> {
    allowed
        .check(text)
        .map(drop)
        .map_err(|e| AppError::Invalid(format!("return_to {e}")))
}

/// Caller input in a message, quoted and cut to a readable length.
fn quoted(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_mail_cannot_reach_are_refused() {
        for bad in [
            "a..b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a@-example.com",
            "a@example-.com",
        ] {
            assert!(
                matches!(deliverable(bad), Err(AppError::Undeliverable { .. })),
                "{bad}"
            );
            assert!(email(bad).is_err(), "{bad}");
        }
        let long_local = format!("{}@example.com", "a".repeat(1000));
        assert!(deliverable(&long_local).is_err());
        for good in ["hello@example.com", "a.b+c_d%e-f@mail.example.co.uk"] {
            email(good).unwrap();
        }
    }

    #[test]
    fn a_pattern_refusal_says_what_the_pattern_allows() {
        for bad in ["o'brien@example.com", "jörg@example.de"] {
            let e = email(bad).unwrap_err().to_string();
            assert!(
                e.contains("must match the upstream API's email pattern")
                    && e.contains("letters, digits and . _ % + -"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_name_is_at_most_256_characters_with_no_control_or_direction_character() {
        assert!(name("Ann Lee").is_ok());
        assert!(name(&"é".repeat(256)).is_ok(), "counted in characters");
        let e = name(&"é".repeat(257)).unwrap_err().to_string();
        assert!(e.contains("257 characters long"), "{e}");
        for bad in [
            "Ann\r\nBcc: x@example.com",
            "tab\there",
            "\u{202E}evil",
            "x\u{2066}y",
        ] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_idempotency_key_is_1_to_255_printable_ascii_characters() {
        assert!(idempotency_key("k").is_ok());
        assert!(idempotency_key(&"k".repeat(255)).is_ok());
        for bad in [String::new(), "k".repeat(256), "tab\t".into(), "é".into()] {
            let e = idempotency_key(&bad).unwrap_err().to_string();
            assert!(e.contains("1 to 255 printable ASCII"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn namespace_rules() {
        assert!(namespace("system", None).is_ok());
        assert!(namespace("system", Some("system")).is_ok());
        let e = namespace("default", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "namespace must be \"system\", got \"default\""
        );
        let e = namespace("system", Some("default")).unwrap_err();
        assert!(e.to_string().contains("differs"), "{e}");
        let long = "x".repeat(1000);
        assert!(namespace(&long, None).unwrap_err().to_string().len() < 120);
    }
}
