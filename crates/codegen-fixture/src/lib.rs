//! Generated from `openapi/pwmail.yaml` plus `xtask/fixtures/extra-operation.yaml`.
//!
//! It exists to prove that `cargo xtask codegen` is general: the overlay adds
//! an operation with path, query and header parameters and a JSON body, and
//! the generated trait and client compile and talk to each other (see
//! `tests/extra_operation.rs`) with no change to xtask.

pub mod api;
pub mod client;
pub mod types;

/// The error type the fixture's trait returns: the document's `ErrorResponse`.
#[derive(Debug)]
pub struct FixtureError(pub types::ErrorResponse);

impl std::fmt::Display for FixtureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl From<dropshot::HttpError> for FixtureError {
    fn from(e: dropshot::HttpError) -> Self {
        FixtureError(types::ErrorResponse {
            code: 3,
            message: e.external_message,
            details: Vec::new(),
        })
    }
}

impl serde::Serialize for FixtureError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl schemars::JsonSchema for FixtureError {
    fn schema_name() -> String {
        <types::ErrorResponse as schemars::JsonSchema>::schema_name()
    }
    fn is_referenceable() -> bool {
        false
    }
    fn json_schema(generator: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        generator.subschema_for::<types::ErrorResponse>()
    }
}

impl dropshot::HttpResponseError for FixtureError {
    fn status_code(&self) -> dropshot::ErrorStatusCode {
        dropshot::ErrorStatusCode::BAD_REQUEST
    }
}
