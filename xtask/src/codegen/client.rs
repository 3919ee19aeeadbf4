//! The progenitor client, with every component type replaced by the shared
//! types crate so client and server speak through one set of types.

use anyhow::Result;
use openapiv3::OpenAPI;
use progenitor_impl::{GenerationSettings, Generator, InterfaceStyle, TypeImpl};

use super::{Target, format_tokens};

pub fn generate(spec: &OpenAPI, target: &Target) -> Result<String> {
    let mut settings = GenerationSettings::new();
    settings.with_interface(InterfaceStyle::Positional);
    // Component schemas come from the types crate. (Newtypes for constrained
    // inline parameters stay in the client's own `types` module: progenitor
    // replaces by schema name, and those schemas have none.)
    for name in spec.components.iter().flat_map(|c| c.schemas.keys()) {
        let path = format!("{}::{name}", target.types_path);
        settings.with_replacement(name, path, std::iter::empty::<TypeImpl>());
    }
    let mut generator = Generator::new(&settings);
    let tokens = generator.generate_tokens(spec)?;
    let tokens = quote::quote! {
        #![allow(clippy::all, clippy::pedantic, unused_imports, dead_code)]
        #tokens
    };
    format_tokens(tokens)
}
