//! `cargo xtask codegen`: turns each OpenAPI document into committed Rust code.
//!
//! One document feeds three outputs: the wire types (typify, plus `JsonSchema`
//! impls that return the source schemas verbatim), a `#[dropshot::api_description]`
//! server trait, and a progenitor client that reuses the shared types.

mod api;
mod client;
mod types;

use std::path::Path;

use anyhow::{Context, Result, bail};
use openapiv3::OpenAPI;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Write,
    Check,
}

/// One OpenAPI document and where its generated code goes.
pub struct Target {
    pub spec: &'static str,
    /// Optional document whose paths and components are merged into `spec`.
    pub overlay: Option<&'static str>,
    pub types_file: &'static str,
    /// Rust path under which the api and client code reach the types.
    pub types_path: &'static str,
    pub api_file: &'static str,
    pub api_trait: &'static str,
    /// Hand-written error type that every operation of the trait returns.
    pub error_type: &'static str,
    /// Hand-written `HttpResponse` wrapper around every success type, if any.
    pub success_wrapper: Option<&'static str>,
    /// Hand-written extractor for JSON request bodies, generic over the body
    /// type, used instead of dropshot's `TypedBody` (e.g. to cap reading).
    pub body_extractor: Option<&'static str>,
    pub client_file: &'static str,
}

pub const TARGETS: &[Target] = &[
    Target {
        spec: "openapi/pwmail.yaml",
        overlay: None,
        types_file: "crates/pwmail-types/src/lib.rs",
        types_path: "pwmail_types",
        api_file: "crates/pwmail-api/src/api.rs",
        api_trait: "PwmailApi",
        error_type: "crate::ApiError",
        success_wrapper: Some("crate::Reply"),
        body_extractor: Some("crate::LimitedBody"),
        client_file: "crates/pwmail-client/src/generated.rs",
    },
    // Proves the generator is general: the pwmail document plus an operation
    // with path, query and header parameters. Nothing in xtask knows about it.
    Target {
        spec: "openapi/pwmail.yaml",
        overlay: Some("xtask/fixtures/extra-operation.yaml"),
        types_file: "crates/codegen-fixture/src/types.rs",
        types_path: "crate::types",
        api_file: "crates/codegen-fixture/src/api.rs",
        api_trait: "FixtureApi",
        error_type: "crate::FixtureError",
        success_wrapper: None,
        body_extractor: None,
        client_file: "crates/codegen-fixture/src/client.rs",
    },
];

pub fn run(root: &Path, mode: Mode) -> Result<()> {
    let mut stale = Vec::new();
    for target in TARGETS {
        let spec = load_spec(root, target)?;
        let source = match target.overlay {
            Some(overlay) => format!("{} + {overlay}", target.spec),
            None => target.spec.to_string(),
        };
        let header = header(&source);
        // The trait generator checks the document's shape with errors that
        // name the operation; progenitor would panic on some of the same
        // problems, so it runs first.
        let api = api::generate(&spec, target)?;
        let outputs = [
            (target.types_file, types::generate(&spec)?),
            (target.api_file, api),
            (target.client_file, client::generate(&spec, target)?),
        ];
        for (file, body) in outputs {
            let contents = format!("{header}{body}");
            if ensure_file_contents(&root.join(file), &contents, mode)? {
                stale.push(file);
            }
        }
    }
    match (mode, stale.is_empty()) {
        (_, true) => {
            eprintln!("codegen: generated code is up to date");
            Ok(())
        }
        (Mode::Write, false) => {
            for file in &stale {
                eprintln!("codegen: updated {file}");
            }
            Ok(())
        }
        (Mode::Check, false) => bail!(
            "generated code is stale; run `cargo xtask codegen` and commit:\n  {}",
            stale.join("\n  ")
        ),
    }
}

pub fn load_spec(root: &Path, target: &Target) -> Result<OpenAPI> {
    let mut doc = read_yaml(&root.join(target.spec))?;
    if let Some(overlay) = target.overlay {
        merge_overlay(&mut doc, read_yaml(&root.join(overlay))?)
            .with_context(|| format!("merging {overlay}"))?;
    }
    serde_json::from_value(doc).with_context(|| format!("{} is not OpenAPI 3.0", target.spec))
}

fn read_yaml(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Adds the overlay's paths and components; an existing key is an error, so
/// an overlay can only extend a document, never silently change it.
fn merge_overlay(doc: &mut serde_json::Value, overlay: serde_json::Value) -> Result<()> {
    let mut additions: Vec<(Vec<String>, serde_json::Value)> = Vec::new();
    if let Some(paths) = overlay.get("paths").and_then(|v| v.as_object()) {
        for (path, item) in paths {
            additions.push((vec!["paths".into(), path.clone()], item.clone()));
        }
    }
    if let Some(components) = overlay.get("components").and_then(|v| v.as_object()) {
        for (kind, entries) in components {
            let entries = entries
                .as_object()
                .with_context(|| format!("components.{kind} must be a map"))?;
            for (name, value) in entries {
                let at = vec!["components".into(), kind.clone(), name.clone()];
                additions.push((at, value.clone()));
            }
        }
    }
    for (at, value) in additions {
        let Some((last, parents)) = at.split_last() else {
            continue;
        };
        let mut node = &mut *doc;
        for key in parents {
            node = node
                .as_object_mut()
                .with_context(|| format!("{key}: parent is not a map"))?
                .entry(key.clone())
                .or_insert_with(|| serde_json::json!({}));
        }
        let map = node.as_object_mut().context("not a map")?;
        if map.contains_key(last) {
            bail!("overlay redefines {}", at.join("/"));
        }
        map.insert(last.clone(), value);
    }
    Ok(())
}

fn header(spec: &str) -> String {
    format!(
        "// @generated by cargo xtask codegen — do not edit\n// source: {spec}\n// Change the OpenAPI document and run `cargo xtask codegen` instead.\n\n"
    )
}

/// Writes `contents` to `path` unless it already holds them; in check mode
/// only reports. Returns whether the file was (or would be) changed.
fn ensure_file_contents(path: &Path, contents: &str, mode: Mode) -> Result<bool> {
    if let Ok(old) = std::fs::read_to_string(path)
        && old == contents
    {
        return Ok(false);
    }
    if mode == Mode::Write {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(true)
}

/// Formats a token stream as a Rust source file: prettyplease for a readable
/// layout, then rustfmt so `cargo fmt --check` agrees with the committed file.
fn format_tokens(tokens: proc_macro2::TokenStream) -> Result<String> {
    let file: syn::File = syn::parse2(tokens).context("generated code does not parse")?;
    rustfmt(&prettyplease::unparse(&file))
}

fn rustfmt(source: &str) -> Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into()))
        .args(["--edition", "2024", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running rustfmt")?;
    child
        .stdin
        .take()
        .context("rustfmt stdin")?
        .write_all(source.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "rustfmt failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// The component name a local `#/components/schemas/X` reference points at.
fn component_ref(reference: &str) -> Result<&str> {
    reference
        .strip_prefix("#/components/schemas/")
        .with_context(|| format!("unsupported reference {reference}"))
}

/// Component names must already be Rust type names, so that the types crate,
/// the trait and the client all agree on them without a mapping table.
fn check_type_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if !ok {
        bail!("component schema {name:?} must be a PascalCase Rust type name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch workspace holding only the inputs codegen reads.
    fn scratch() -> tempfile::TempDir {
        let real = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let dir = tempfile::tempdir().unwrap();
        for input in TARGETS
            .iter()
            .flat_map(|t| std::iter::once(t.spec).chain(t.overlay))
        {
            let to = dir.path().join(input);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(real.join(input), to).unwrap();
        }
        dir
    }

    #[test]
    fn check_mode_names_a_hand_edited_file_and_write_mode_repairs_it() {
        let dir = scratch();
        run(dir.path(), Mode::Write).unwrap();
        run(dir.path(), Mode::Check).expect("fresh output is up to date");

        let edited = dir.path().join("crates/pwmail-api/src/api.rs");
        let mut text = std::fs::read_to_string(&edited).unwrap();
        text.push_str("\n// hand edit\n");
        std::fs::write(&edited, text).unwrap();
        let err = run(dir.path(), Mode::Check).unwrap_err().to_string();
        assert!(err.contains("crates/pwmail-api/src/api.rs"), "{err}");
        assert!(
            !err.contains("pwmail-types"),
            "only the edited file is named: {err}"
        );

        run(dir.path(), Mode::Write).unwrap();
        run(dir.path(), Mode::Check).expect("repaired");
    }

    #[test]
    fn output_is_deterministic_and_marked_generated() {
        let (a, b) = (scratch(), scratch());
        run(a.path(), Mode::Write).unwrap();
        run(b.path(), Mode::Write).unwrap();
        for target in TARGETS {
            for file in [target.types_file, target.api_file, target.client_file] {
                let x = std::fs::read_to_string(a.path().join(file)).unwrap();
                let y = std::fs::read_to_string(b.path().join(file)).unwrap();
                assert_eq!(x, y, "{file}");
                assert!(x.starts_with("// @generated by cargo xtask codegen — do not edit"));
            }
        }
    }

    #[test]
    fn checked_in_code_matches_the_documents() {
        let real = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        run(real, Mode::Check).expect("run `cargo xtask codegen`");
    }

    #[test]
    fn error_responses_with_different_schemas_are_refused() {
        let dir = scratch();
        let spec = dir.path().join("openapi/pwmail.yaml");
        let text = std::fs::read_to_string(&spec).unwrap().replacen(
            "        '404':\n          $ref: '#/components/responses/NotFound'",
            "        '404':\n          description: other\n          content:\n            application/json:\n              schema:\n                $ref: '#/components/schemas/SendPasswordEmailRequest'",
            1,
        );
        std::fs::write(&spec, text).unwrap();
        let err = format!("{:#}", run(dir.path(), Mode::Write).unwrap_err());
        assert!(
            err.contains("all error responses must share one schema"),
            "{err}"
        );
        assert!(
            err.contains("send_password_email"),
            "names the operation: {err}"
        );
    }

    #[test]
    fn an_overlay_cannot_redefine_what_the_document_has() {
        let mut doc =
            serde_json::json!({"paths": {"/a": {}}, "components": {"schemas": {"A": {}}}});
        let err = merge_overlay(
            &mut doc,
            serde_json::json!({"components": {"schemas": {"A": {}}}}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("components/schemas/A"), "{err}");
        merge_overlay(&mut doc, serde_json::json!({"paths": {"/b": {"get": {}}}})).unwrap();
        assert!(doc["paths"]["/b"].is_object());
    }
}
