//! Checks the generated types cannot express: the namespace rules.
//!
//! The email's pattern and length, and the namespace's length, are enforced by
//! the generated types when the body is parsed.

use pwmail_api::ApiError;

pub const NAMESPACE: &str = "system";

/// `namespace` is always "system" upstream; when the body names one too, it
/// must be the one in the path.
pub fn namespace(path: &str, body: Option<&str>) -> Result<(), ApiError> {
    if path != NAMESPACE {
        return Err(ApiError::InvalidArgument(format!(
            "namespace must be \"system\", got {}",
            quoted(path)
        )));
    }
    match body {
        Some(body) if body != path => Err(ApiError::InvalidArgument(format!(
            "namespace in the body ({}) differs from the namespace in the path ({})",
            quoted(body),
            quoted(path)
        ))),
        _ => Ok(()),
    }
}

/// Caller input in a message, quoted and cut to a readable length.
fn quoted(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_rules() {
        assert!(namespace("system", None).is_ok());
        assert!(namespace("system", Some("system")).is_ok());
        let e = namespace("default", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "namespace must be \"system\", got \"default\""
        );
        let e = namespace("system", Some("default")).unwrap_err();
        assert!(e.to_string().contains("differs"), "{e}");
        let long = "x".repeat(1000);
        assert!(namespace(&long, None).unwrap_err().to_string().len() < 120);
    }
}
