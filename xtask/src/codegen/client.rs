//! The progenitor client, with every component type replaced by the shared
//! types crate so client and server speak through one set of types.

use anyhow::Result;
use openapiv3::OpenAPI;
use progenitor_impl::{GenerationSettings, Generator, InterfaceStyle, TypeImpl};

use super::{Target, format_tokens};

pub fn generate(spec: &OpenAPI, target: &Target) -> Result<String> {
    let mut settings = GenerationSettings::new();
    settings.with_interface(InterfaceStyle::Builder);
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
    let builders = builder_module(&mut file)?;
    for item in &mut builders
        .content
        .as_mut()
        .map(|(_, items)| items)
        .into_iter()
        .flatten()
    {
        if let syn::Item::Impl(block) = item {
            keep_conversion_errors(block);
            if let Some(call_error) = target.call_error {
                map_send_errors(block, &syn::parse_str(call_error)?)?;
            }
        }
    }
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

fn builder_module(file: &mut syn::File) -> Result<&mut syn::ItemMod> {
    file.items
        .iter_mut()
        .find_map(|item| match item {
            syn::Item::Mod(m) if m.ident == "builder" => Some(m),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("progenitor wrote no `builder` module"))
}

/// progenitor's setters drop why a value did not convert ("conversion to
/// `X` for body failed"); the typify builder's reason names the field and
/// the rule ("error converting supplied value for email: …"). Keep it.
fn keep_conversion_errors(block: &mut syn::ItemImpl) {
    for item in &mut block.items {
        let syn::ImplItem::Fn(setter) = item else {
            continue;
        };
        let Some(clause) = setter.sig.generics.where_clause.as_mut() else {
            continue;
        };
        clause
            .predicates
            .push(syn::parse_quote!(V::Error: ::std::fmt::Display));
        let field = setter.sig.ident.to_string();
        struct Closures<'a>(&'a str);
        impl syn::visit_mut::VisitMut for Closures<'_> {
            fn visit_expr_closure_mut(&mut self, closure: &mut syn::ExprClosure) {
                let text = syn::LitStr::new(
                    &format!("{}: {{e}}", self.0),
                    proc_macro2::Span::call_site(),
                );
                *closure = syn::parse_quote!(|e| format!(#text));
            }
        }
        syn::visit_mut::VisitMut::visit_block_mut(&mut Closures(&field), &mut setter.block);
    }
}

/// Every operation's `send` returns the client's own error, so a caller
/// matches one type whatever the operation: progenitor's `send` becomes the
/// private `send_unmapped`, and `send` maps its error.
fn map_send_errors(block: &mut syn::ItemImpl, call_error: &syn::Path) -> Result<()> {
    let Some(position) = block
        .items
        .iter()
        .position(|item| matches!(item, syn::ImplItem::Fn(f) if f.sig.ident == "send"))
    else {
        return Ok(());
    };
    let syn::ImplItem::Fn(unmapped) = &mut block.items[position] else {
        unreachable!("found above");
    };
    let success = success_type(&unmapped.sig.output)?;
    let docs: Vec<syn::Attribute> = std::mem::take(&mut unmapped.attrs);
    unmapped.sig.ident = quote::format_ident!("send_unmapped");
    unmapped.vis = syn::Visibility::Inherited;
    block.items.push(syn::parse_quote! {
        #(#docs)*
        pub async fn send(self) -> Result<#success, #call_error> {
            self.send_unmapped().await.map_err(#call_error::from)
        }
    });
    Ok(())
}

/// `T` of `Result<T, Error<E>>`.
fn success_type(output: &syn::ReturnType) -> Result<syn::Type> {
    if let syn::ReturnType::Type(_, ty) = output
        && let syn::Type::Path(path) = &**ty
        && let Some(last) = path.path.segments.last()
        && last.ident == "Result"
        && let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && let Some(syn::GenericArgument::Type(success)) = args.args.first()
    {
        return Ok(success.clone());
    }
    anyhow::bail!("progenitor's send returns something other than Result<T, Error<E>>")
}
