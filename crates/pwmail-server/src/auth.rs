//! `Authorization: APIToken <token>` → an authenticated admin.

use pwmail_api::ApiError;
use pwmail_store::{Authenticated, Store};

use crate::error::ServiceError;
use crate::token;

const SCHEME: &str = "APIToken";

/// The same words for an unknown and a revoked token: a caller learns nothing
/// about tokens it does not hold.
const INVALID_TOKEN: &str = "unknown or revoked API token";

/// The token from an `Authorization` header value.
pub fn parse_authorization(header: Option<&str>) -> Result<&str, ApiError> {
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

/// Authenticates the caller and requires the admin role.
pub async fn admin(store: &dyn Store, header: Option<&str>) -> Result<Authenticated, ServiceError> {
    let token = parse_authorization(header)?;
    if !token::is_api_token_shaped(token) {
        return Err(ApiError::Unauthenticated(INVALID_TOKEN.into()).into());
    }
    // Lookup is by SHA-256 of the token: what the database compares is a hash,
    // so timing reveals nothing about the token itself.
    let caller = store
        .authenticate(&token::hash(token))
        .await?
        .ok_or_else(|| ApiError::Unauthenticated(INVALID_TOKEN.into()))?;
    if !caller.user.is_admin {
        return Err(ApiError::PermissionDenied(
            "the owner of this API token is not an admin; only admins may send password emails"
                .into(),
        )
        .into());
    }
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_upstream_scheme() {
        assert_eq!(parse_authorization(Some("APIToken abc")).unwrap(), "abc");
        assert_eq!(parse_authorization(Some("apitoken  abc ")).unwrap(), "abc");
        for bad in [
            None,
            Some(""),
            Some("Bearer abc"),
            Some("APIToken"),
            Some("APIToken   "),
        ] {
            assert!(
                matches!(parse_authorization(bad), Err(ApiError::Unauthenticated(_))),
                "{bad:?}"
            );
        }
    }
}
