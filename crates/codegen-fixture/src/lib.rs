//! Generated from `xtask/fixtures/fixture.yaml`, a small document of its own.
//!
//! It exists to prove that `cargo xtask codegen` is general: the document's
//! one operation takes path, query and header parameters and a JSON body,
//! and the generated trait and client compile and talk to each other (see
//! `tests/extra_operation.rs`) with no change to xtask.

pub mod api;
pub mod client;
pub mod types;

/// The error type the fixture's trait returns: the document's `Problem`.
#[derive(Debug)]
pub struct FixtureError(pub types::Problem);

impl std::fmt::Display for FixtureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.title)
    }
}

impl From<dropshot::HttpError> for FixtureError {
    fn from(e: dropshot::HttpError) -> Self {
        FixtureError(types::Problem {
            title: e.external_message,
            detail: None,
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
        <types::Problem as schemars::JsonSchema>::schema_name()
    }
    fn is_referenceable() -> bool {
        false
    }
    fn json_schema(generator: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        generator.subschema_for::<types::Problem>()
    }
}

impl dropshot::HttpResponseError for FixtureError {
    fn status_code(&self) -> dropshot::ErrorStatusCode {
        dropshot::ErrorStatusCode::BAD_REQUEST
    }
}
