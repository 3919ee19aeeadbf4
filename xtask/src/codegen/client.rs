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
    let mut file: syn::File = syn::parse2(tokens)?;
    share_types_module(&mut file, target.types_path)?;
    let tokens = quote::quote! {
        #![allow(clippy::all, clippy::pedantic, unused_imports, dead_code)]
        #file
    };
    format_tokens(tokens)
}

/// progenitor writes its own copies of the parameter newtypes into a `types`
/// module; the types crate holds the same ones (it is generated from the
/// whole document). One public name per type: the module becomes a
/// re-export of the types crate.
fn share_types_module(file: &mut syn::File, types_path: &str) -> Result<()> {
    let path: syn::Path = syn::parse_str(types_path)?;
    let module = file
        .items
        .iter_mut()
        .find_map(|item| match item {
            syn::Item::Mod(m) if m.ident == "types" => Some(m),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("progenitor wrote no `types` module"))?;
    *module = syn::parse_quote! {
        /// The wire types: parameters, request and response bodies. They are
        /// the types crate's own, so a value built from either path is the
        /// same type.
        pub mod types {
            pub use #path::*;
        }
    };
    Ok(())
}
