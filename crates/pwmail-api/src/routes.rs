//! The operations of the document this crate was generated from, by method
//! and path template: for naming a request's operation (metrics) and for
//! the `Allow` header of a 405, without a second copy of the paths.

use std::sync::LazyLock;

/// One operation of the document.
#[derive(Debug)]
pub struct Route {
    /// Upper case, as on the wire.
    pub method: String,
    /// The path template split at `/` (`{name}` segments match any value).
    pub segments: Vec<String>,
    pub operation_id: String,
}

impl Route {
    /// Whether `path` (no query) is an instance of this route's template.
    pub fn matches(&self, path: &str) -> bool {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        segments.len() == self.segments.len()
            && self
                .segments
                .iter()
                .zip(&segments)
                .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}') && !s.is_empty()))
    }
}

/// Every operation in the document (parsed once).
pub fn routes() -> &'static [Route] {
    static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| parse(crate::document()));
    &ROUTES
}

/// The operations whose template `path` matches, whatever their method.
pub fn matching(path: &str) -> impl Iterator<Item = &'static Route> {
    let path = path
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_string();
    routes().iter().filter(move |r| r.matches(&path))
}

fn parse(doc: &serde_json::Value) -> Vec<Route> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            if let Some(id) = operation["operationId"].as_str() {
                out.push(Route {
                    method: method.to_ascii_uppercase(),
                    segments: path
                        .trim_end_matches('/')
                        .split('/')
                        .map(str::to_string)
                        .collect(),
                    operation_id: id.to_string(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_operations() {
        let ids = |path: &str| -> Vec<(&str, &str)> {
            matching(path)
                .map(|r| (r.method.as_str(), r.operation_id.as_str()))
                .collect()
        };
        assert_eq!(
            ids("/api/web/custom/namespaces/system/send_password_email"),
            [("POST", "send_password_email")]
        );
        assert_eq!(
            ids("/api/web/custom/password/email_status?email=a"),
            [("GET", "get_password_email_status")]
        );
        assert!(ids("/api/web/custom/namespaces//send_password_email").is_empty());
        assert!(ids("/api/web/custom").is_empty());
        assert_eq!(
            ids("/api/pwmail/v1/reset_links"),
            [("POST", "create_reset_link")]
        );
        assert_eq!(routes().len(), 4);
    }
}
