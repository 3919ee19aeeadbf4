//! Where the done page may send a user back to: the origins an operator
//! allows (`--return-to-origin`) and a default (`--default-return-to`).
//! One rule for a URL, used for the default at start and for each call's
//! `return_to`: no open redirect, no `javascript:`, no credentials in it.

use url::Url;

use super::ConfigError;

/// Longest `return_to` accepted (the document's `maxLength`).
pub const MAX_LEN: usize = 2048;

/// Why a URL may not be linked; the message has no subject, so each
/// caller names what it checked (`return_to`, a flag).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReturnToError {
    #[error("is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("{0:?} is not an absolute URL")]
    NotUrl(String),
    #[error("must be https (http only to a loopback host), got {0:?}")]
    Scheme(String),
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("is not accepted: this server allows no origin (give --return-to-origin)")]
    NoOrigins,
    #[error("origin {origin} is not allowed; allowed: {allowed} (--return-to-origin)")]
    Origin { origin: String, allowed: String },
    #[error("{0:?} must be an origin: scheme, host and port, no path")]
    NotAnOrigin(String),
}

/// The origins a `return_to` may point under, and the link every done page
/// gets when its call gave none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReturnTo {
    origins: Vec<url::Origin>,
    default: Option<Url>,
}

impl ReturnTo {
    /// From the flags' texts; the default must pass the same rule as a call's.
    pub fn new(origins: &[String], default: Option<&str>) -> Result<ReturnTo, ConfigError> {
        let mut allowed = Vec::new();
        for text in origins {
            let origin = |e| ConfigError::ReturnToOrigin(text.clone(), e);
            let url = absolute(text).map_err(origin)?;
            if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some()
            {
                return Err(origin(ReturnToError::NotAnOrigin(text.clone())));
            }
            allowed.push(url.origin());
        }
        let mut return_to = ReturnTo {
            origins: allowed,
            default: None,
        };
        return_to.default = default
            .map(|text| return_to.check(text))
            .transpose()
            .map_err(ConfigError::DefaultReturnTo)?;
        Ok(return_to)
    }

    /// `text` as a link the done page may show, or why not.
    pub fn check(&self, text: &str) -> Result<Url, ReturnToError> {
        let url = absolute(text)?;
        if self.origins.is_empty() {
            return Err(ReturnToError::NoOrigins);
        }
        let origin = url.origin();
        if !self.origins.contains(&origin) {
            return Err(ReturnToError::Origin {
                origin: origin.ascii_serialization(),
                allowed: self
                    .origins
                    .iter()
                    .map(url::Origin::ascii_serialization)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(url)
    }

    /// The link a done page shows: its call's, else the default.
    pub fn for_link(&self, asked: Option<&str>) -> Option<Url> {
        // A stored `return_to` passed `check` when its call was made; it is
        // checked again, so a origin the operator has since removed is no
        // longer linked.
        match asked {
            Some(text) => self.check(text).ok(),
            None => self.default.clone(),
        }
    }
}

/// An absolute http(s) URL with no credentials, `https` unless its host is
/// loopback.
fn absolute(text: &str) -> Result<Url, ReturnToError> {
    if text.len() > MAX_LEN {
        return Err(ReturnToError::TooLong);
    }
    let url = Url::parse(text).map_err(|_| ReturnToError::NotUrl(cut(text)))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if loopback => {}
        _ => return Err(ReturnToError::Scheme(cut(text))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ReturnToError::Credentials);
    }
    Ok(url)
}

/// Caller input in a message, cut to a readable length.
fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowing(origins: &[&str]) -> ReturnTo {
        let origins: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
        ReturnTo::new(&origins, None).unwrap()
    }

    #[test]
    fn only_allowed_https_origins_without_credentials_pass() {
        let r = allowing(&["https://app.example.com", "http://127.0.0.1:3000"]);
        assert!(r.check("https://app.example.com/login?next=%2F").is_ok());
        assert!(r.check("http://127.0.0.1:3000/x").is_ok());
        for (bad, want) in [
            (
                "https://evil.example.com/",
                ReturnToError::Origin {
                    origin: "https://evil.example.com".into(),
                    allowed: "https://app.example.com, http://127.0.0.1:3000".into(),
                },
            ),
            // Same host, another port or scheme: another origin.
            (
                "https://app.example.com:8443/",
                ReturnToError::Origin {
                    origin: "https://app.example.com:8443".into(),
                    allowed: "https://app.example.com, http://127.0.0.1:3000".into(),
                },
            ),
            (
                "http://app.example.com/login",
                ReturnToError::Scheme("http://app.example.com/login".into()),
            ),
            (
                "javascript:alert(1)",
                ReturnToError::Scheme("javascript:alert(1)".into()),
            ),
            (
                "https://user:pw@app.example.com/",
                ReturnToError::Credentials,
            ),
            ("https://user@app.example.com/", ReturnToError::Credentials),
            ("/login", ReturnToError::NotUrl("/login".into())),
        ] {
            assert_eq!(r.check(bad), Err(want), "{bad}");
        }
        assert_eq!(
            r.check(&format!("https://app.example.com/{}", "a".repeat(MAX_LEN))),
            Err(ReturnToError::TooLong)
        );
    }

    #[test]
    fn nothing_passes_when_no_origin_is_allowed() {
        assert_eq!(
            ReturnTo::default().check("https://app.example.com/"),
            Err(ReturnToError::NoOrigins)
        );
    }

    #[test]
    fn origins_and_the_default_are_checked_at_start() {
        let refusal = |origins: &[&str], default: Option<&str>| {
            let origins: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
            ReturnTo::new(&origins, default).unwrap_err().to_string()
        };
        assert_eq!(
            refusal(&["https://app.example.com/login"], None),
            "--return-to-origin \"https://app.example.com/login\": \
             \"https://app.example.com/login\" must be an origin: scheme, host and port, no path"
        );
        assert_eq!(
            refusal(&["http://app.example.com"], None),
            "--return-to-origin \"http://app.example.com\": must be https (http only to a \
             loopback host), got \"http://app.example.com\""
        );
        assert_eq!(
            refusal(
                &["https://app.example.com"],
                Some("https://other.example.com/")
            ),
            "--default-return-to: origin https://other.example.com is not allowed; allowed: \
             https://app.example.com (--return-to-origin)"
        );
        let origins = vec!["https://app.example.com".to_string()];
        let r = ReturnTo::new(&origins, Some("https://app.example.com/home")).unwrap();
        assert_eq!(
            r.for_link(None).map(String::from).as_deref(),
            Some("https://app.example.com/home")
        );
        assert_eq!(
            r.for_link(Some("https://app.example.com/x"))
                .map(String::from)
                .as_deref(),
            Some("https://app.example.com/x")
        );
        assert_eq!(r.for_link(Some("https://gone.example.com/")), None);
    }
}
