//! The pwmail API as a dropshot trait.
//!
//! `api.rs` is generated from `openapi/pwmail.yaml` by `cargo xtask codegen`;
//! the error type every operation returns is written by hand in `error.rs`.

mod api;
mod body_limit;
mod error;
pub mod routes;

pub use api::*;
pub use body_limit::{LimitedBody, LimitedBytes};
pub use error::{ApiError, DEPRECATION, Reply, SUCCESSOR_LINK};

/// The OpenAPI document this crate was generated from, as written (YAML).
/// The server publishes it so clients in other languages can be generated.
pub const OPENAPI_DOCUMENT: &str = include_str!("../../../openapi/pwmail.yaml");

/// [`OPENAPI_DOCUMENT`], parsed once for everyone who reads it (the served
/// `/openapi.json`, [`routes`]). It is the file codegen read, so it parses;
/// `Null` would mean a broken build, which a test below refuses.
pub fn document() -> &'static serde_json::Value {
    static DOCUMENT: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(|| {
        serde_yaml::from_str(OPENAPI_DOCUMENT).unwrap_or(serde_json::Value::Null)
    });
    &DOCUMENT
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_document_parses() {
        assert_eq!(super::document()["openapi"], "3.0.3");
    }
}
