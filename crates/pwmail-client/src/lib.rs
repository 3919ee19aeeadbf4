//! Client for the pwmail API. `generated.rs` comes from `openapi/pwmail.yaml`
//! via `cargo xtask codegen`; this file only adds construction helpers.

mod generated;

/// Validated newtypes for constrained query parameters (client side only).
pub use generated::types as params;
pub use generated::*;
/// The wire types shared with the server.
pub use pwmail_types as types;

/// A client that sends `Authorization: APIToken <token>` on every request.
pub fn with_api_token(baseurl: &str, token: &str) -> Result<Client, reqwest::Error> {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value = reqwest::header::HeaderValue::from_str(&format!("APIToken {token}"))
        .map_err(|_| ())
        .unwrap_or_else(|()| reqwest::header::HeaderValue::from_static(""));
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(std::time::Duration::from_secs(15))
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    Ok(Client::new_with_client(baseurl, client))
}
