//! Client for the pwmail API. `generated.rs` comes from `openapi/pwmail.yaml`
//! via `cargo xtask codegen`; this file only adds construction helpers.

mod generated;

/// Validated newtypes for constrained parameters (client side only).
pub use generated::types as params;
pub use generated::*;
/// The wire types shared with the server.
pub use pwmail_types as types;

/// Why [`with_api_token`] could not build a client.
#[derive(Debug)]
pub enum BuildError {
    /// The token holds characters an HTTP header cannot carry.
    InvalidToken,
    Http(reqwest::Error),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::InvalidToken => f.write_str("the API token is not a valid header value"),
            BuildError::Http(e) => write!(f, "building the HTTP client: {e}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// A client that sends `Authorization: APIToken <token>` on every request
/// (marked sensitive, so it is never printed in debug output).
pub fn with_api_token(baseurl: &str, token: &str) -> Result<Client, BuildError> {
    let mut value = reqwest::header::HeaderValue::from_str(&format!("APIToken {token}"))
        .map_err(|_| BuildError::InvalidToken)?;
    value.set_sensitive(true);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(std::time::Duration::from_secs(15))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(BuildError::Http)?;
    Ok(Client::new_with_client(baseurl, client))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_token_that_cannot_be_a_header_is_refused() {
        assert!(matches!(
            super::with_api_token("http://127.0.0.1:1", "pwm_x\nInjected: 1"),
            Err(super::BuildError::InvalidToken)
        ));
        assert!(super::with_api_token("http://127.0.0.1:1", "pwm_ok").is_ok());
    }
}
