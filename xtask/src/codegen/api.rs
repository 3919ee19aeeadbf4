//! The server side: a `#[dropshot::api_description]` trait with one method per
//! operation. No existing tool emits this, so it is written here, walking the
//! document with openapiv3.
//!
//! Mapping rules (anything else is refused with an error naming the spot):
//! - path/query/header parameters become one struct per location, each field
//!   carrying the parameter's source schema verbatim (`schemars(schema_with)`);
//!   a parameter whose schema is a component (one type for the client) is
//!   inlined here and carried as its primitive, so the handler validates it
//!   and refuses it in the API's error shape, in the order the handler checks;
//! - an `apiKey`-in-header or HTTP security scheme becomes an optional header
//!   field: optional, so a missing credential reaches the handler (401) instead
//!   of failing in dropshot's extractor (400);
//! - the request body must `$ref` a component schema; its media type becomes
//!   the endpoint's `content_type`;
//! - the lowest 2xx response is the success type; its declared headers become a
//!   typed header struct; every other response must share one error schema.

use anyhow::{Context, Result, bail};
use indexmap::IndexMap;
use openapiv3::{
    APIKeyLocation, OpenAPI, Operation, Parameter, ParameterSchemaOrContent, ReferenceOr,
    RequestBody, Response, Schema, SecurityScheme, StatusCode,
};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{Target, component_ref, format_tokens};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Location {
    Path,
    Query,
    Header,
}

impl Location {
    fn suffix(self) -> &'static str {
        match self {
            Location::Path => "Path",
            Location::Query => "Query",
            Location::Header => "Headers",
        }
    }
}

struct Field {
    wire_name: String,
    description: Option<String>,
    required: bool,
    schema: serde_json::Value,
    rust_type: TokenStream,
}

pub fn generate(spec: &OpenAPI, target: &Target) -> Result<String> {
    let types: syn::Path = syn::parse_str(target.types_path)?;
    let error: syn::Path = syn::parse_str(target.error_type)?;
    let wrapper: Option<syn::Path> = target.success_wrapper.map(syn::parse_str).transpose()?;
    let body_extractor: syn::Path =
        syn::parse_str(target.body_extractor.unwrap_or("::dropshot::TypedBody"))?;
    let trait_ident = format_ident!("{}", target.api_trait);

    let mut items = Vec::new();
    let mut methods = Vec::new();
    for (path, item) in spec.paths.iter() {
        let item = item
            .as_item()
            .with_context(|| format!("path {path}: references are not supported"))?;
        for (method, op) in item.iter() {
            let op_id = op
                .operation_id
                .as_deref()
                .with_context(|| format!("{method} {path}: missing operationId"))?;
            let ctx = || format!("operation {op_id} ({} {path})", method.to_uppercase());
            let (method_tokens, op_items) = operation(
                spec,
                &types,
                &error,
                wrapper.as_ref(),
                &body_extractor,
                path,
                method,
                op,
                &item.parameters,
            )
            .with_context(ctx)?;
            methods.push(method_tokens);
            items.extend(op_items);
        }
    }

    let title = &spec.info.title;
    let trait_doc =
        format!(" The {title} API. Implement it and serve `api_description::<Impl>()`.");
    let tokens = quote! {
        #![allow(clippy::all, clippy::pedantic)]

        #(#items)*

        #[doc = #trait_doc]
        #[::dropshot::api_description]
        pub trait #trait_ident {
            /// Shared state handed to every handler.
            type Context: Send + Sync + 'static;

            #(#methods)*
        }
    };
    format_tokens(tokens)
}

#[allow(clippy::too_many_arguments)]
fn operation(
    spec: &OpenAPI,
    types: &syn::Path,
    error: &syn::Path,
    wrapper: Option<&syn::Path>,
    body_extractor: &syn::Path,
    path: &str,
    method: &str,
    op: &Operation,
    path_params: &[ReferenceOr<Parameter>],
) -> Result<(TokenStream, Vec<TokenStream>)> {
    let op_id = op.operation_id.as_deref().unwrap_or_default();
    if !is_snake_ident(op_id) {
        bail!("operationId must be a snake_case Rust identifier");
    }
    let fn_ident = format_ident!("{op_id}");
    let pascal = to_pascal(op_id);

    let mut by_location: [(Location, IndexMap<String, Field>); 3] = [
        (Location::Path, IndexMap::new()),
        (Location::Query, IndexMap::new()),
        (Location::Header, IndexMap::new()),
    ];
    for param in path_params.iter().chain(&op.parameters) {
        let param = resolve_parameter(spec, param)?;
        let (location, data) = match param {
            Parameter::Path { parameter_data, .. } => (Location::Path, parameter_data),
            Parameter::Query { parameter_data, .. } => (Location::Query, parameter_data),
            Parameter::Header { parameter_data, .. } => (Location::Header, parameter_data),
            Parameter::Cookie { parameter_data, .. } => {
                bail!("cookie parameter {} is not supported", parameter_data.name)
            }
        };
        let ParameterSchemaOrContent::Schema(schema) = &data.format else {
            bail!("parameter {} must have a schema", data.name);
        };
        let schema =
            &inline_component(spec, schema).with_context(|| format!("parameter {}", data.name))?;
        let field = Field {
            wire_name: data.name.clone(),
            description: data.description.clone(),
            required: data.required || location == Location::Path,
            schema: serde_json::to_value(schema)?,
            rust_type: rust_type_of(types, schema)
                .with_context(|| format!("parameter {}", data.name))?,
        };
        let slot = by_location.iter_mut().find(|(l, _)| *l == location);
        if let Some((_, map)) = slot {
            map.insert(data.name.clone(), field);
        }
    }
    for (name, description) in security_headers(spec, op)? {
        if let Some((_, map)) = by_location.iter_mut().find(|(l, _)| *l == Location::Header) {
            map.insert(
                name.clone(),
                Field {
                    wire_name: name,
                    description: Some(description),
                    // The handler answers a missing credential with 401.
                    required: false,
                    schema: serde_json::json!({ "type": "string" }),
                    rust_type: quote!(::std::string::String),
                },
            );
        }
    }

    let mut items = Vec::new();
    let mut args = Vec::new();
    for (location, fields) in &by_location {
        if fields.is_empty() {
            continue;
        }
        let struct_ident = format_ident!("{pascal}{}", location.suffix());
        items.push(param_struct(types, op_id, *location, &struct_ident, fields));
        let (arg, extractor) = match location {
            Location::Path => (format_ident!("path"), quote!(::dropshot::Path)),
            Location::Query => (format_ident!("query"), quote!(::dropshot::Query)),
            Location::Header => (format_ident!("headers"), quote!(::dropshot::Header)),
        };
        args.push(quote! { #arg: #extractor<#struct_ident> });
    }

    let mut content_type = None;
    if let Some(body) = &op.request_body {
        let body = resolve_request_body(spec, body)?;
        let mut content = body.content.iter();
        let (mime, media) = match (content.next(), content.next()) {
            (Some(one), None) => one,
            _ => bail!("request body must have exactly one media type"),
        };
        let ty = match &media.schema {
            Some(ReferenceOr::Reference { reference }) => {
                let ident = format_ident!("{}", component_ref(reference)?);
                quote!(#types::#ident)
            }
            _ => bail!("request body schema must $ref a component schema"),
        };
        if mime != "application/json" {
            content_type = Some(mime.clone());
        }
        args.push(quote! { body: #body_extractor<#ty> });
    }

    let success = responses(spec, types, &pascal, op, &mut items)?;
    let success = match wrapper {
        Some(wrapper) => quote!(#wrapper<#success>),
        None => success,
    };

    let method_upper = format_ident!("{}", method.to_uppercase());
    let mut attrs = vec![
        quote!(method = #method_upper),
        quote!(path = #path),
        quote!(operation_id = #op_id),
    ];
    if !op.tags.is_empty() {
        let tags = &op.tags;
        attrs.push(quote!(tags = [#(#tags),*]));
    }
    if op.deprecated {
        attrs.push(quote!(deprecated = true));
    }
    if let Some(ct) = content_type {
        attrs.push(quote!(content_type = #ct));
    }
    let doc = doc_lines(op.summary.as_deref(), op.description.as_deref());

    let method_tokens = quote! {
        #(#doc)*
        #[endpoint { #(#attrs),* }]
        async fn #fn_ident(
            rqctx: ::dropshot::RequestContext<Self::Context>,
            #(#args),*
        ) -> ::std::result::Result<#success, #error>;
    };
    Ok((method_tokens, items))
}

/// The success response type; checks that every other response shares one
/// error schema, since the trait has a single error type.
fn responses(
    spec: &OpenAPI,
    types: &syn::Path,
    pascal: &str,
    op: &Operation,
    items: &mut Vec<TokenStream>,
) -> Result<TokenStream> {
    let mut success: Option<(u16, &Response)> = None;
    let mut error_schema: Option<String> = None;
    let mut note_error = |response: &Response, what: &str| -> Result<()> {
        let schema = response_schema_ref(response)?;
        match (&error_schema, schema) {
            (None, s) => error_schema = s,
            (Some(a), Some(b)) if *a == b => {}
            (Some(a), b) => bail!(
                "response {what} uses schema {b:?} but other errors use {a:?}: all error responses must share one schema"
            ),
        }
        Ok(())
    };
    for (status, response) in &op.responses.responses {
        let response = resolve_response(spec, response)?;
        match status {
            StatusCode::Code(code @ 200..=299) => {
                if success.is_none_or(|(c, _)| *code < c) {
                    success = Some((*code, response));
                }
            }
            StatusCode::Code(code) => note_error(response, &code.to_string())?,
            StatusCode::Range(r) => note_error(response, &format!("{r}XX"))?,
        }
    }
    if let Some(default) = &op.responses.default {
        note_error(resolve_response(spec, default)?, "default")?;
    }
    let (code, response) = success.context("no 2xx response")?;

    let body = match response_schema_ref(response)? {
        Some(name) => {
            let ident = format_ident!("{name}");
            Some(quote!(#types::#ident))
        }
        None => None,
    };
    let coded = match (code, body) {
        (200, Some(t)) => quote!(::dropshot::HttpResponseOk<#t>),
        (201, Some(t)) => quote!(::dropshot::HttpResponseCreated<#t>),
        (202, Some(t)) => quote!(::dropshot::HttpResponseAccepted<#t>),
        (204, None) => quote!(::dropshot::HttpResponseUpdatedNoContent),
        (code, body) => bail!(
            "success status {code} {} is not supported",
            if body.is_some() {
                "with a body"
            } else {
                "without a body"
            }
        ),
    };
    if response.headers.is_empty() {
        return Ok(coded);
    }

    let struct_ident = format_ident!("{pascal}ResponseHeaders");
    let mut fields = Vec::new();
    for (name, header) in &response.headers {
        let header = match header {
            ReferenceOr::Item(h) => h,
            ReferenceOr::Reference { reference } => {
                let component = reference
                    .strip_prefix("#/components/headers/")
                    .with_context(|| format!("header {name}: unsupported reference {reference}"))?;
                match spec
                    .components
                    .as_ref()
                    .and_then(|c| c.headers.get(component))
                {
                    Some(ReferenceOr::Item(h)) => h,
                    _ => bail!("header {name}: cannot resolve {reference}"),
                }
            }
        };
        let ParameterSchemaOrContent::Schema(schema) = &header.format else {
            bail!("header {name} must have a schema");
        };
        let ident = field_ident(name);
        let ty = rust_type_of(types, schema)?;
        // The document's schema for the header, verbatim (as for parameters).
        let schema_fn = format_ident!("{}_response_header_{}_schema", pascal.to_lowercase(), ident);
        let schema_fn_path = schema_fn.to_string();
        let json = serde_json::to_value(schema)?.to_string();
        items.push(quote! {
            fn #schema_fn(_: &mut ::schemars::r#gen::SchemaGenerator) -> ::schemars::schema::Schema {
                #types::source_schema(#json)
            }
        });
        let (ty, skip) = if header.required {
            (ty, quote!())
        } else {
            (
                quote!(::std::option::Option<#ty>),
                quote!(#[serde(default, skip_serializing_if = "Option::is_none")]),
            )
        };
        let doc = header.description.as_deref().map(|d| {
            let d = format!(" {d}");
            quote!(#[doc = #d])
        });
        fields.push(quote! {
            #doc
            #[serde(rename = #name)]
            #skip
            #[schemars(schema_with = #schema_fn_path)]
            pub #ident: #ty,
        });
    }
    let doc = format!(" Headers of a successful `{pascal}` response.");
    items.push(quote! {
        #[doc = #doc]
        #[derive(Clone, Debug, ::serde::Serialize, ::schemars::JsonSchema)]
        pub struct #struct_ident {
            #(#fields)*
        }
    });
    Ok(quote!(::dropshot::HttpResponseHeaders<#coded, #struct_ident>))
}

fn param_struct(
    types: &syn::Path,
    op_id: &str,
    location: Location,
    ident: &syn::Ident,
    fields: &IndexMap<String, Field>,
) -> TokenStream {
    let loc = match location {
        Location::Path => "Path",
        Location::Query => "Query",
        Location::Header => "Header",
    };
    let mut field_tokens = Vec::new();
    let mut schema_fns = Vec::new();
    for field in fields.values() {
        let f_ident = field_ident(&field.wire_name);
        let wire = &field.wire_name;
        let schema_fn = format_ident!("{}_{}_{}_schema", op_id, loc.to_lowercase(), f_ident);
        let schema_fn_path = schema_fn.to_string();
        let json = field.schema.to_string();
        schema_fns.push(quote! {
            fn #schema_fn(_: &mut ::schemars::r#gen::SchemaGenerator) -> ::schemars::schema::Schema {
                #types::source_schema(#json)
            }
        });
        let ty = &field.rust_type;
        let (ty, default) = if field.required {
            (quote!(#ty), quote!())
        } else {
            (
                quote!(::std::option::Option<#ty>),
                quote!(#[serde(default)]),
            )
        };
        let doc = field.description.as_deref().map(|d| {
            let d = format!(" {d}");
            quote!(#[doc = #d])
        });
        field_tokens.push(quote! {
            #doc
            #[serde(rename = #wire)]
            #default
            #[schemars(schema_with = #schema_fn_path)]
            pub #f_ident: #ty,
        });
    }
    let doc = format!(" {loc} parameters of `{op_id}`.");
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug, ::serde::Deserialize, ::schemars::JsonSchema)]
        pub struct #ident {
            #(#field_tokens)*
        }
        #(#schema_fns)*
    }
}

/// Header names of the credentials an operation's security requirement names.
fn security_headers(spec: &OpenAPI, op: &Operation) -> Result<Vec<(String, String)>> {
    let requirements = op.security.as_ref().or(spec.security.as_ref());
    let mut out: Vec<(String, String)> = Vec::new();
    for requirement in requirements.into_iter().flatten() {
        for scheme_name in requirement.keys() {
            let scheme = spec
                .components
                .as_ref()
                .and_then(|c| c.security_schemes.get(scheme_name))
                .with_context(|| format!("unknown security scheme {scheme_name}"))?;
            let ReferenceOr::Item(scheme) = scheme else {
                bail!("security scheme {scheme_name}: references are not supported");
            };
            let (name, description) = match scheme {
                SecurityScheme::APIKey {
                    location: APIKeyLocation::Header,
                    name,
                    description,
                    ..
                } => (name.clone(), description.clone()),
                SecurityScheme::HTTP { description, .. } => {
                    ("Authorization".to_string(), description.clone())
                }
                _ => bail!("security scheme {scheme_name}: only header credentials are supported"),
            };
            if !out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                let description = description
                    .unwrap_or_else(|| format!("Credential of security scheme {scheme_name}."));
                out.push((name, description));
            }
        }
    }
    Ok(out)
}

/// Rust type for a parameter or header schema: primitives and component refs.
fn rust_type_of(types: &syn::Path, schema: &ReferenceOr<Schema>) -> Result<TokenStream> {
    use openapiv3::{IntegerFormat, SchemaKind, Type, VariantOrUnknownOrEmpty as V};
    let schema = match schema {
        ReferenceOr::Reference { reference } => {
            let name = component_ref(reference)?;
            let ident = format_ident!("{name}");
            return Ok(quote!(#types::#ident));
        }
        ReferenceOr::Item(s) => s,
    };
    Ok(match &schema.schema_kind {
        SchemaKind::Type(Type::String(_)) => quote!(::std::string::String),
        SchemaKind::Type(Type::Boolean(_)) => quote!(bool),
        SchemaKind::Type(Type::Number(_)) => quote!(f64),
        SchemaKind::Type(Type::Integer(i)) => {
            let unsigned = i.minimum.is_some_and(|m| m >= 0);
            match (&i.format, unsigned) {
                (V::Item(IntegerFormat::Int32), false) => quote!(i32),
                (V::Item(IntegerFormat::Int32), true) => quote!(u32),
                (_, false) => quote!(i64),
                (_, true) => quote!(u64),
            }
        }
        SchemaKind::Type(Type::Array(a)) => {
            let item = a
                .items
                .as_ref()
                .context("array without items")?
                .clone()
                .unbox();
            let inner = rust_type_of(types, &item)?;
            quote!(::std::vec::Vec<#inner>)
        }
        _ => bail!("only primitive, array and $ref schemas are supported here"),
    })
}

fn response_schema_ref(response: &Response) -> Result<Option<String>> {
    let mut content = response.content.iter();
    match (content.next(), content.next()) {
        (None, _) => Ok(None),
        (Some((mime, media)), None) if mime == "application/json" => match &media.schema {
            Some(ReferenceOr::Reference { reference }) => {
                Ok(Some(component_ref(reference)?.to_string()))
            }
            _ => bail!("response schemas must $ref a component schema"),
        },
        _ => bail!("responses must have at most one media type, application/json"),
    }
}

fn resolve_parameter<'a>(
    spec: &'a OpenAPI,
    p: &'a ReferenceOr<Parameter>,
) -> Result<&'a Parameter> {
    match p {
        ReferenceOr::Item(p) => Ok(p),
        ReferenceOr::Reference { reference } => {
            let name = reference
                .strip_prefix("#/components/parameters/")
                .with_context(|| format!("unsupported reference {reference}"))?;
            match spec
                .components
                .as_ref()
                .and_then(|c| c.parameters.get(name))
            {
                Some(ReferenceOr::Item(p)) => Ok(p),
                _ => bail!("cannot resolve {reference}"),
            }
        }
    }
}

/// The component a parameter's schema names, or the schema itself.
fn inline_component(spec: &OpenAPI, schema: &ReferenceOr<Schema>) -> Result<ReferenceOr<Schema>> {
    let ReferenceOr::Reference { reference } = schema else {
        return Ok(schema.clone());
    };
    let name = component_ref(reference)?;
    match spec.components.as_ref().and_then(|c| c.schemas.get(name)) {
        Some(ReferenceOr::Item(s)) => Ok(ReferenceOr::Item(s.clone())),
        _ => bail!("cannot resolve {reference} to a schema"),
    }
}

fn resolve_request_body<'a>(
    spec: &'a OpenAPI,
    b: &'a ReferenceOr<RequestBody>,
) -> Result<&'a RequestBody> {
    match b {
        ReferenceOr::Item(b) => Ok(b),
        ReferenceOr::Reference { reference } => {
            let name = reference
                .strip_prefix("#/components/requestBodies/")
                .with_context(|| format!("unsupported reference {reference}"))?;
            match spec
                .components
                .as_ref()
                .and_then(|c| c.request_bodies.get(name))
            {
                Some(ReferenceOr::Item(b)) => Ok(b),
                _ => bail!("cannot resolve {reference}"),
            }
        }
    }
}

pub fn resolve_response<'a>(
    spec: &'a OpenAPI,
    r: &'a ReferenceOr<Response>,
) -> Result<&'a Response> {
    match r {
        ReferenceOr::Item(r) => Ok(r),
        ReferenceOr::Reference { reference } => {
            let name = reference
                .strip_prefix("#/components/responses/")
                .with_context(|| format!("unsupported reference {reference}"))?;
            match spec.components.as_ref().and_then(|c| c.responses.get(name)) {
                Some(ReferenceOr::Item(r)) => Ok(r),
                _ => bail!("cannot resolve {reference}"),
            }
        }
    }
}

fn doc_lines(summary: Option<&str>, description: Option<&str>) -> Vec<TokenStream> {
    let mut text = Vec::new();
    if let Some(s) = summary {
        text.push(s.trim().to_string());
    }
    if let Some(d) = description {
        if !text.is_empty() {
            text.push(String::new());
        }
        text.extend(d.trim().lines().map(str::to_string));
    }
    text.into_iter()
        .map(|line| {
            let line = format!(" {line}");
            quote!(#[doc = #line])
        })
        .collect()
}

fn field_ident(wire: &str) -> syn::Ident {
    let snake: String = wire
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format_ident!("{snake}")
}

fn is_snake_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn to_pascal(snake: &str) -> String {
    snake
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}
