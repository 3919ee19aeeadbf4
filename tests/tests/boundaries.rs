//! Every constraint the document declares is enforced, at its boundary.
//!
//! For each constrained input of each operation (body properties, path,
//! query and header parameters), read from `openapi/pwmail.yaml`: a value just inside
//! each `pattern`, `minLength` and `maxLength` is accepted (200), a value
//! just outside is refused with 400 in the error shape, and a missing
//! `required` field is refused too. Refusals write nothing.

use serde_json::{Map, Value, json};

use pwmail_server::config::{LINK_TTL_MAX, LINK_TTL_MIN, LinkTtlRange, ReturnTo};
use pwmail_tests::{Options, TestServer, now};

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/pwmail.yaml");
    let text = std::fs::read_to_string(path).expect("read openapi/pwmail.yaml");
    serde_yaml::from_str(&text).expect("parse openapi/pwmail.yaml")
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .trim_start_matches("#/")
            .split('/')
            .fold(doc, |node, part| &node[part]),
        None => v,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Place {
    Body,
    Path,
    Query,
    Header,
}

/// One constrained input of one operation.
#[derive(Debug)]
struct Input {
    method: String,
    path: String,
    place: Place,
    name: String,
    schema: Value,
    required: bool,
}

fn inputs(doc: &Value) -> Vec<Input> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let p = resolve(doc, p);
                out.push(Input {
                    method: method.clone(),
                    path: path.clone(),
                    place: match p["in"].as_str().unwrap() {
                        "path" => Place::Path,
                        "query" => Place::Query,
                        "header" => Place::Header,
                        other => panic!("parameter in {other}"),
                    },
                    name: p["name"].as_str().unwrap().to_string(),
                    schema: p["schema"].clone(),
                    required: p["required"].as_bool().unwrap_or(false),
                });
            }
            let body = &op["requestBody"]["content"]["application/json"]["schema"];
            if body.is_null() {
                continue;
            }
            let body = resolve(doc, body);
            let required: Vec<&str> = body["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for (name, schema) in body["properties"].as_object().unwrap() {
                out.push(Input {
                    method: method.clone(),
                    path: path.clone(),
                    place: Place::Body,
                    name: name.clone(),
                    schema: schema.clone(),
                    required: required.contains(&name.as_str()),
                });
            }
        }
    }
    out
}

/// The origin the server under test allows `return_to` under.
const RETURN_TO: &str = "https://app.example.com/";

/// A valid value for an input, by its name.
fn base(name: &str) -> String {
    match name {
        "email" => "hello@example.com".into(),
        "namespace" => "system".into(),
        "request_id" => "r".into(),
        "Idempotency-Key" => "k".into(),
        "return_to" => RETURN_TO.into(),
        "deliver" => "email".into(),
        "locale" => "de-AT".into(),
        other => panic!("no base value for {other}: add one"),
    }
}

/// `value` made exactly `len` characters long, keeping its shape: an
/// address grows its local part, anything else its tail.
fn resized(value: &str, len: usize) -> String {
    let have = value.chars().count();
    match value.split_once('@') {
        Some((local, domain)) if len > have => {
            format!("{}{local}@{domain}", "a".repeat(len - have))
        }
        _ if len > have => format!("{value}{}", "x".repeat(len - have)),
        _ => value.chars().take(len).collect(),
    }
}

fn matches(pattern: Option<&str>, value: &str) -> bool {
    pattern.is_none_or(|p| {
        regress::Regex::new(p)
            .expect("the document's pattern compiles")
            .find(value)
            .is_some()
    })
}

/// (value, whether it must be accepted, what the case checks).
fn cases(input: &Input) -> Vec<(Option<String>, bool, String)> {
    let s = &input.schema;
    // Numbers and booleans travel as JSON numbers and booleans (`call`).
    match s["type"].as_str() {
        Some("boolean") => {
            return vec![
                (Some("true".into()), true, "true".into()),
                (Some("\"yes\"".into()), false, "a string".into()),
            ];
        }
        // An enumerated string: a value of the list, and one outside it.
        Some("string") if s["enum"].is_array() => {
            return vec![
                (Some(base(&input.name)), true, "a listed value".into()),
                (Some("fax".into()), false, "a value outside the list".into()),
            ];
        }
        Some("integer") => {
            let (min, max) = (
                s["minimum"].as_i64().unwrap(),
                s["maximum"].as_i64().unwrap(),
            );
            return vec![
                (Some(min.to_string()), true, format!("minimum {min}")),
                (
                    Some((min - 1).to_string()),
                    false,
                    format!("minimum {min} - 1"),
                ),
                (Some(max.to_string()), true, format!("maximum {max}")),
                (
                    Some((max + 1).to_string()),
                    false,
                    format!("maximum {max} + 1"),
                ),
                (Some("\"600\"".into()), false, "a string".into()),
            ];
        }
        _ => {}
    }
    let pattern = s["pattern"].as_str();
    let ok = base(&input.name);
    assert!(
        matches(pattern, &ok),
        "base value of {} is valid",
        input.name
    );
    let mut out = vec![(Some(ok.clone()), true, "a valid value".to_string())];
    // A path without its segment is another route, not a missing value.
    if input.required && input.place != Place::Path {
        out.push((None, false, "missing".into()));
    }
    if pattern.is_some() {
        // `!` is outside every pattern but printable ASCII's; `é` is outside
        // that one (and still a byte a header may carry).
        let bad = match pattern {
            Some(p) if matches(Some(p), &format!("{ok}!")) => format!("{ok}é"),
            _ => format!("{ok}!"),
        };
        assert!(!matches(pattern, &bad));
        out.push((Some(bad), false, "outside the pattern".into()));
    }
    if let Some(max) = s["maxLength"].as_u64().map(|m| m as usize) {
        let at = resized(&ok, max);
        // A pattern may pin the value (namespace is `^system$`): then no
        // value of the maximum length is valid, and only the outside is.
        if matches(pattern, &at) {
            out.push((Some(at), true, format!("maxLength {max}")));
        }
        out.push((
            Some(resized(&ok, max + 1)),
            false,
            format!("maxLength {max} + 1"),
        ));
        // Lengths are characters, not bytes: two-byte characters count once.
        // (`return_to` must also be a URL under an allowed origin, as its
        // description says: a run of `é` is refused whatever its length.)
        if pattern.is_none() && input.name != "return_to" {
            out.push((Some("é".repeat(max)), true, format!("maxLength {max} in é")));
            out.push((
                Some("é".repeat(max + 1)),
                false,
                format!("maxLength {max} + 1 in é"),
            ));
        }
    }
    if let Some(min) = s["minLength"].as_u64().map(|m| m as usize) {
        let at = resized(&ok, min);
        if matches(pattern, &at) {
            out.push((Some(at), true, format!("minLength {min}")));
        }
        if min > 0 {
            out.push((
                Some(resized(&ok, min - 1)),
                false,
                format!("minLength {min} - 1"),
            ));
        }
    }
    out
}

async fn call(server: &TestServer, input: &Input, value: Option<&str>) -> (u16, Value) {
    let mut path = input.path.replace("{namespace}", "system");
    let mut body = Map::new();
    let mut query: Vec<(String, String)> = Vec::new();
    let mut headers = reqwest::header::HeaderMap::new();
    // The other required body fields, valid.
    if !(input.place == Place::Body && input.name == "email") {
        body.insert("email".into(), json!(base("email")));
    }
    match (input.place, value) {
        (Place::Body, Some(v)) => {
            let typed = match input.schema["type"].as_str() {
                Some("integer" | "boolean") => serde_json::from_str(v).unwrap(),
                _ => json!(v),
            };
            body.insert(input.name.clone(), typed);
        }
        (Place::Path, Some(v)) => {
            path = input.path.replace(&format!("{{{}}}", input.name), v);
        }
        (Place::Query, Some(v)) => query.push((input.name.clone(), v.to_string())),
        (Place::Header, Some(v)) => {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(input.name.as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        (_, None) => {}
    }
    let client = reqwest::Client::new();
    let url = server.endpoint(&path);
    let request = match input.method.as_str() {
        "post" => client.post(url).json(&Value::Object(body)),
        "get" => client.get(url).query(&query),
        other => panic!("method {other}"),
    };
    let response = request
        .headers(headers)
        .header("Authorization", format!("APIToken {}", server.admin_token))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_declared_constraint_holds_at_its_boundary() {
    let doc = document();
    let inputs = inputs(&doc);
    let server = TestServer::start_with(Options {
        user_rate: (1_000_000, 1),
        // The document's whole range of lifetimes, and one origin.
        link_ttl_range: LinkTtlRange::new(LINK_TTL_MIN, LINK_TTL_MAX).unwrap(),
        return_to: ReturnTo::new(&[RETURN_TO.to_string()], None).unwrap(),
        ..Options::default()
    })
    .await;
    // Every address a case accepts belongs to a user, where a user can have
    // it: an address at the maximum length matches the pattern but is no
    // address mail can reach (the local part is over 64 characters), so no
    // user has it and the valid request finds no one (404, not 400).
    let mut users = std::collections::HashSet::new();
    let mut checked = 0;
    for input in &inputs {
        for (value, _, _) in cases(input) {
            if let Some(v) = value.filter(|_| input.name == "email")
                && matches(input.schema["pattern"].as_str(), &v)
                && v.chars().count() <= 1024
                && !users.contains(&v)
                && pwmail_server::app::users::add_user(server.store(), &v, false, None, now())
                    .await
                    .is_ok()
            {
                users.insert(v);
            }
        }
    }
    for input in &inputs {
        for (value, accepted, what) in cases(input) {
            let before = server.read_all_outbox().await.len();
            let (status, body) = call(&server, input, value.as_deref()).await;
            let case = format!(
                "{} {} {:?} {}: {what} ({} chars)",
                input.method,
                input.path,
                input.place,
                input.name,
                value.as_deref().map_or(0, |v| v.chars().count())
            );
            let no_such_user =
                input.name == "email" && value.as_ref().is_some_and(|v| !users.contains(v));
            if accepted && no_such_user {
                assert_eq!(status, 404, "{case}: {body}");
                assert_eq!(body["code"], 5, "{case}: {body}");
            } else if accepted {
                assert_eq!(status, 200, "{case}: {body}");
            } else {
                assert_eq!(status, 400, "{case}: {body}");
                assert_eq!(body["code"], 3, "{case}: {body}");
                assert!(body["message"].is_string(), "{case}: {body}");
                assert_eq!(
                    server.read_all_outbox().await.len(),
                    before,
                    "{case}: a refusal writes nothing"
                );
            }
            checked += 1;
        }
    }
    // Both operations' email, the namespace (path and body), and the status
    // query's email and request_id were all covered.
    for name in [
        "email",
        "namespace",
        "request_id",
        "Idempotency-Key",
        "ttl_secs",
        "return_to",
        "invalidate_password",
        "deliver",
    ] {
        assert!(inputs.iter().any(|i| i.name == name), "{name}");
    }
    assert!(checked >= 20, "{checked} cases");
    eprintln!("{checked} boundary cases over {} inputs", inputs.len());
    server.stop().await;
}
