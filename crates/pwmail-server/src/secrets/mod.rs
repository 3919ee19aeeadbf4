//! Secrets: the API tokens and reset-link tokens pwmail hands out, and
//! (in [`password`]) the users' new passwords.
//!
//! Both are 256 bits from the OS CSPRNG, base64url without padding (43
//! characters); API tokens carry a `pwm_` prefix so secret scanners can spot
//! them. Only SHA-256 hashes are stored.

pub mod password;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pwmail_store::TokenHash;
use sha2::{Digest, Sha256};

const API_TOKEN_PREFIX: &str = "pwm_";
const TOKEN_BYTES: usize = 32;
/// Length of the base64url text of [`TOKEN_BYTES`] random bytes.
pub const TOKEN_CHARS: usize = 43;

/// A secret in plain text. `Debug` never shows it; it is handed out once.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        hash(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

fn random_text() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

pub fn new_api_token() -> Result<Secret, getrandom::Error> {
    Ok(Secret(format!("{API_TOKEN_PREFIX}{}", random_text()?)))
}

pub fn new_link_token() -> Result<Secret, getrandom::Error> {
    Ok(Secret(random_text()?))
}

pub fn hash(secret: &str) -> TokenHash {
    TokenHash(Sha256::digest(secret.as_bytes()).into())
}

/// Whether `text` has the shape of a token we issue; anything else is
/// rejected before it reaches the database.
pub fn is_api_token_shaped(text: &str) -> bool {
    text.strip_prefix(API_TOKEN_PREFIX)
        .is_some_and(is_link_token_shaped)
}

pub fn is_link_token_shaped(text: &str) -> bool {
    text.len() == TOKEN_CHARS
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_base64url_and_distinct() {
        let a = new_link_token().unwrap();
        let b = new_link_token().unwrap();
        assert_ne!(a, b);
        assert!(is_link_token_shaped(a.expose()), "{}", a.expose());
        let api = new_api_token().unwrap();
        assert!(is_api_token_shaped(api.expose()));
        assert!(!is_api_token_shaped(a.expose()));
        assert_eq!(format!("{api:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn hash_is_sha256() {
        // SHA-256("abc")
        assert_eq!(hash("abc").0[..4], [0xba, 0x78, 0x16, 0xbf],);
    }
}
