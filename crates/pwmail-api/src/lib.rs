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
