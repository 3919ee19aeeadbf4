//! The wire types: typify's structs plus `JsonSchema` impls that hand dropshot
//! the source schemas verbatim, so the document the server emits keeps every
//! constraint, format and description of `openapi/`. The impls sit behind the
//! `schemars` feature: only the server side needs them, not a client.

use std::collections::BTreeSet;

use anyhow::Result;
use openapiv3::OpenAPI;
use progenitor_impl::{GenerationSettings, Generator, InterfaceStyle};
use quote::{format_ident, quote};

use super::{check_type_name, component_ref, format_tokens};

/// A generator whose type space holds every type of the document, including
/// the ones only operations mention (constrained parameters).
fn full_type_space(spec: &OpenAPI) -> Result<Generator> {
    let mut settings = GenerationSettings::new();
    settings.with_interface(InterfaceStyle::Builder);
    let mut generator = Generator::new(&settings);
    generator.generate_tokens(spec)?;
    Ok(generator)
}

pub fn generate(spec: &OpenAPI) -> Result<String> {
    let generator = full_type_space(spec)?;
    let types = generator.get_type_space().to_stream();

    let mut impls = Vec::new();
    for (name, schema) in spec.components.iter().flat_map(|c| &c.schemas) {
        check_type_name(name)?;
        let ident = format_ident!("{name}");
        let json = serde_json::to_string(schema)?;
        let mut refs = BTreeSet::new();
        collect_refs(&serde_json::to_value(schema)?, &mut refs)?;
        let deps = refs.iter().filter(|r| *r != name).map(|r| {
            let dep = format_ident!("{r}");
            quote! { let _ = generator.subschema_for::<#dep>(); }
        });
        impls.push(quote! {
            #[cfg(feature = "schemars")]
            impl ::schemars::JsonSchema for #ident {
                fn schema_name() -> ::std::string::String {
                    #name.to_string()
                }
                fn json_schema(
                    generator: &mut ::schemars::r#gen::SchemaGenerator,
                ) -> ::schemars::schema::Schema {
                    #(#deps)*
                    let _ = &generator;
                    source_schema(#json)
                }
            }
        });
    }

    let doc = format!(
        " Wire types of {}, shared by its server and client.",
        spec.info.title
    );
    let tokens = quote! {
        #![allow(clippy::all, clippy::pedantic)]
        #![doc = #doc]

        #types

        /// Parses a schema copied verbatim from the OpenAPI document.
        #[cfg(feature = "schemars")]
        #[doc(hidden)]
        pub fn source_schema(json: &str) -> ::schemars::schema::Schema {
            ::serde_json::from_str(json)
                .expect("codegen embeds schemas that schemars can read")
        }

        #(#impls)*
    };
    format_tokens(tokens)
}

/// Every component a schema refers to, so its `JsonSchema` impl registers them.
pub fn collect_refs(value: &serde_json::Value, out: &mut BTreeSet<String>) -> Result<()> {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", serde_json::Value::String(r)) => {
                        out.insert(component_ref(r)?.to_string());
                    }
                    _ => collect_refs(v, out)?,
                }
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                collect_refs(v, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}
