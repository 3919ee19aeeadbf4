//! The `Authorization: APIToken <token>` header, as upstream spells it.

use pwmail_api::ApiError;

const SCHEME: &str = "APIToken";

/// Refuses a request with more than one `Authorization` header: which one
/// counts would be a guess (the extractor takes the last), so `[bad, admin]`
/// must not pass as the admin.
pub fn only_one(headers: &http::HeaderMap) -> Result<(), ApiError> {
    if headers.get_all(http::header::AUTHORIZATION).iter().count() > 1 {
        return Err(ApiError::Unauthenticated(
            "more than one Authorization header; send exactly one `Authorization: APIToken <token>`"
                .into(),
        ));
    }
    Ok(())
}

/// The token from an `Authorization` header value.
pub fn api_token(header: Option<&str>) -> Result<&str, ApiError> {
    let header = header.ok_or_else(|| {
        ApiError::Unauthenticated(
            "missing Authorization header; send `Authorization: APIToken <token>`".into(),
        )
    })?;
    match header.trim().split_once(char::is_whitespace) {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case(SCHEME) && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::Unauthenticated(
            "malformed Authorization header; expected `APIToken <token>`".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_upstream_scheme() {
        assert_eq!(api_token(Some("APIToken abc")).unwrap(), "abc");
        assert_eq!(api_token(Some("apitoken  abc ")).unwrap(), "abc");
        for bad in [
            None,
            Some(""),
            Some("Bearer abc"),
            Some("APIToken"),
            Some("APIToken   "),
        ] {
            assert!(
                matches!(api_token(bad), Err(ApiError::Unauthenticated(_))),
                "{bad:?}"
            );
        }
    }
}
