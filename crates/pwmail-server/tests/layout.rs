//! ARCHITECTURE.md's layout rules, checked so they cannot go stale: no two
//! modules of the server crate depend on each other (directly or through
//! others), and the rules (`app`) are handed what they need from the
//! adapters (HTTP, CLI, mail, outbox, …) instead of naming them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What `app` may name: itself and the layers below every adapter.
const APP_MAY_USE: &[&str] = &["app", "secrets", "clock", "config"];
/// Adapters that take requests (HTTP, the command line): they go through
/// `app` for everything the store holds.
const REQUEST_ADAPTERS: &[&str] = &["http", "cli"];

/// Every `.rs` file under `src/`, with its code (comments aside).
fn sources() -> Vec<(std::path::PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).expect("source");
            let code: Vec<&str> = text
                .lines()
                .map(|line| line.split("//").next().unwrap_or_default())
                .collect();
            let relative = file.strip_prefix(&src).expect("under src").to_path_buf();
            (relative, code.join("\n"))
        })
        .collect()
}

/// The top-level module a file under `src/` belongs to (`None`: the crate
/// root, `lib.rs` and `main.rs`).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string();
    (first != "lib" && first != "main").then_some(first)
}

/// Each top-level module of `src/` and the top-level modules it names
/// through `crate::` paths.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (relative, code) in sources() {
        let Some(first) = module_of(&relative) else {
            continue;
        };
        let names = graph.entry(first.clone()).or_default();
        for name in crate_paths(&code) {
            if name != first {
                names.insert(name);
            }
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for names in graph.values_mut() {
        names.retain(|n| modules.contains(n));
    }
    graph
}

/// The first segment of every `crate::` path in `code`, groups included
/// (`crate::{mail, secrets}` names both).
fn crate_paths(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or_default();
            names.extend(inner.split(',').map(ident).filter(|n| !n.is_empty()));
        } else {
            names.push(ident(after));
        }
        rest = after;
    }
    names
}

/// Calls of a method on a value named `store` (`store.list_users(`, also
/// split over lines), as written in `code`.
fn store_calls(code: &str) -> Vec<String> {
    let mut calls = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("store") {
        let before = rest[..at].chars().next_back();
        let after = rest[at + "store".len()..].trim_start();
        rest = &rest[at + "store".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(method) = after.strip_prefix('.') else {
            continue;
        };
        let name: String = method
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if method.trim_start()[name.len()..].starts_with('(') {
            calls.push(name);
        }
    }
    calls
}

/// A cycle through the graph, if there is one, as the modules on it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn paths_are_read_with_their_groups() {
    assert_eq!(
        crate_paths("use crate::{mail, secrets::hash}; x = crate::app::App;"),
        ["mail", "secrets", "app"]
    );
}

#[test]
fn store_calls_are_found_across_lines() {
    assert_eq!(
        store_calls("let u = store\n    .find_user(1); restore.x(); store.open; self.store.ping()"),
        ["find_user", "ping"]
    );
}

#[test]
fn a_cycle_is_found_and_named() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", &["b"][..]),
        ("b", &["c"][..]),
        ("c", &["a"][..]),
        ("d", &[][..]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
    .collect();
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
}

#[test]
fn no_two_modules_depend_on_each_other() {
    let graph = imports();
    assert!(
        graph.contains_key("app") && graph.contains_key("http"),
        "{graph:?}"
    );
    if let Some(found) = cycle(&graph) {
        panic!("modules import each other: {}", found.join(" → "));
    }
}

#[test]
fn the_rules_name_no_adapter() {
    let graph = imports();
    let named: Vec<_> = graph["app"]
        .iter()
        .filter(|n| !APP_MAY_USE.contains(&n.as_str()))
        .collect();
    assert!(
        named.is_empty(),
        "app names {named:?}: hand it what it needs (a trait in app, implemented there)"
    );
}

#[test]
fn adapters_reach_the_store_only_through_app() {
    let mut found = Vec::new();
    for (relative, code) in sources() {
        if module_of(&relative).is_some_and(|m| REQUEST_ADAPTERS.contains(&m.as_str())) {
            for call in store_calls(&code) {
                found.push(format!("{}: store.{call}(…)", relative.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "adapters call the store: {found:#?}; call a function of app instead"
    );
}

#[test]
fn the_bulk_sender_is_a_client_of_the_api_and_nothing_else() {
    let graph = imports();
    assert!(
        graph["bulk"].is_empty(),
        "bulk names {:?}: it reaches the service through its API only",
        graph["bulk"]
    );
}
