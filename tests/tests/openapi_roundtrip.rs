//! The document dropshot emits from the generated trait matches
//! `openapi/pwmail.yaml`: the trait is the document, not an approximation.
//!
//! Differences tolerated, each for a reason:
//! - Error responses: dropshot emits one `4XX` and one `5XX` response pointing
//!   at `#/components/responses/ErrorResponse` instead of one entry per status.
//!   Checked instead: every documented error status uses `ErrorResponse`, and
//!   the emitted ranges use the same schema.
//! - Security: dropshot cannot declare security schemes. The generator turns
//!   the `APIToken` scheme into an optional `Authorization` header parameter
//!   (optional so a missing credential is answered 401 by the handler, not 400
//!   by the extractor); checked here.
//! - Response descriptions and `summary`/`description` texts: dropshot writes
//!   its own ("successful operation", doc-comment split); not compared.
//! - `Retry-After` headers on 429/503: error responses are shared ranges in
//!   dropshot's output; the header is asserted at runtime in the contract tests.
//! - `x-ves-proto-rpc`: a vendor extension of the source only.
//! - Top-level `tags`, `info`, `components.responses`, `securitySchemes`.
//! - Schemas themselves are not compared: codegen pastes the document's
//!   schemas into the `JsonSchema` impls (`cargo xtask codegen --check`
//!   guards that copy), so comparing them could not fail. What a schema
//!   promises is checked where it can fail: `tests/boundaries.rs` sends
//!   values at each declared constraint's boundary.
//! - Request body examples: documentation for callers and conformance; dropshot
//!   emits none.

use std::collections::BTreeSet;

use serde_json::{Value, json};

fn source() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/pwmail.yaml");
    let text = std::fs::read_to_string(path).expect("read openapi/pwmail.yaml");
    serde_yaml::from_str(&text).expect("parse openapi/pwmail.yaml")
}

fn emitted() -> Value {
    pwmail_api::pwmail_api_mod::stub_api_description()
        .expect("stub description")
        .openapi("pwmail", semver::Version::new(1, 0, 0))
        .json()
        .expect("emit document")
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "put", "post", "delete", "patch"].contains(&k.as_str()))
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect()
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let mut node = doc;
            for part in r.trim_start_matches("#/").split('/') {
                node = &node[part];
            }
            node
        }
        None => v,
    }
}

#[test]
fn paths_methods_and_operation_ids_match() {
    let (src, out) = (source(), emitted());
    assert_eq!(operations(&src), operations(&out));
    for (path, method) in operations(&src) {
        let (s, o) = (&src["paths"][&path][&method], &out["paths"][&path][&method]);
        assert_eq!(s["operationId"], o["operationId"], "{method} {path}");
        assert_eq!(
            s["deprecated"].as_bool().unwrap_or(false),
            o["deprecated"].as_bool().unwrap_or(false),
            "deprecated of {method} {path}"
        );
        assert_eq!(s["tags"], o["tags"], "tags of {method} {path}");
    }
    assert_eq!(out["paths"][super_send()]["post"]["deprecated"], true);
}

fn super_send() -> &'static str {
    "/api/web/custom/namespaces/{namespace}/send_password_email"
}

#[test]
fn parameters_match_and_security_becomes_an_optional_authorization_header() {
    let (src, out) = (source(), emitted());
    let scheme = &src["components"]["securitySchemes"]["APIToken"];
    assert_eq!(scheme["in"], "header");
    assert_eq!(scheme["name"], "Authorization");
    assert!(out.get("security").is_none() && out["components"].get("securitySchemes").is_none());

    for (path, method) in operations(&src) {
        let (s, o) = (&src["paths"][&path][&method], &out["paths"][&path][&method]);
        let mut expected: Vec<Value> = s["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let p = resolve(&src, p);
                json!({
                    "name": p["name"], "in": p["in"],
                    "required": p["required"].as_bool().unwrap_or(false),
                })
            })
            .collect();
        // The document-wide `security: [{APIToken: []}]` applies to every operation.
        assert_eq!(src["security"], json!([{"APIToken": []}]));
        expected.push(json!({
            "name": "Authorization", "in": "header", "required": false,
        }));
        let actual: Vec<Value> = o["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                json!({
                    "name": p["name"], "in": p["in"],
                    "required": p["required"].as_bool().unwrap_or(false),
                })
            })
            .collect();
        let by_name = |v: &mut Vec<Value>| v.sort_by_key(|p| p["name"].to_string());
        let mut actual = actual;
        by_name(&mut expected);
        by_name(&mut actual);
        assert_eq!(expected, actual, "parameters of {method} {path}");
    }
}

#[test]
fn request_and_success_response_schemas_match() {
    let (src, out) = (source(), emitted());
    for (path, method) in operations(&src) {
        let (s, o) = (&src["paths"][&path][&method], &out["paths"][&path][&method]);
        // The schema reference, not the examples (dropshot emits none).
        assert_eq!(
            s["requestBody"]["content"]["application/json"]["schema"],
            o["requestBody"]["content"]["application/json"]["schema"],
            "body of {method} {path}"
        );
        if s.get("requestBody").is_some() {
            assert_eq!(o["requestBody"]["required"], true);
        }
        let (s200, o200) = (&s["responses"]["200"], &o["responses"]["200"]);
        assert_eq!(s200["content"], o200["content"], "200 of {method} {path}");
        let names = |r: &Value| -> BTreeSet<String> {
            r["headers"]
                .as_object()
                .map(|h| h.keys().cloned().collect())
                .unwrap_or_default()
        };
        assert_eq!(names(s200), names(o200), "200 headers of {method} {path}");
        for name in names(s200) {
            let header = resolve(&src, &s200["headers"][&name]);
            assert_eq!(header["schema"], o200["headers"][&name]["schema"], "{name}");
            assert_eq!(
                header["required"].as_bool().unwrap_or(false),
                o200["headers"][&name]["required"]
                    .as_bool()
                    .unwrap_or(false),
                "{name}"
            );
        }
    }
}

#[test]
fn every_error_status_shares_the_error_schema() {
    let (src, out) = (source(), emitted());
    let error_ref = json!({"$ref": "#/components/schemas/ErrorResponse"});
    for (path, method) in operations(&src) {
        let s = &src["paths"][&path][&method]["responses"];
        let statuses: BTreeSet<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        // The upstream operations document every status the server can return.
        if method == "post" {
            let expected: BTreeSet<&str> = [
                "200", "400", "401", "403", "404", "409", "413", "422", "429", "500", "503", "504",
            ]
            .into();
            assert_eq!(statuses, expected, "{method} {path}");
        }
        for (status, response) in s.as_object().unwrap() {
            if status != "200" {
                let r = resolve(&src, response);
                assert_eq!(
                    r["content"]["application/json"]["schema"], error_ref,
                    "{status}"
                );
            }
        }
        let o = &out["paths"][&path][&method]["responses"];
        for range in ["4XX", "5XX"] {
            let r = resolve(&out, &o[range]);
            assert_eq!(
                r["content"]["application/json"]["schema"], error_ref,
                "{range}"
            );
        }
    }
    for (name, status) in [("ResourceExhausted", "429"), ("Unavailable", "503")] {
        let headers = &src["components"]["responses"][name]["headers"];
        assert_eq!(
            headers["Retry-After"]["required"], true,
            "{status} documents Retry-After"
        );
    }
}
