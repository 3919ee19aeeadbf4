//! The delivery hook's settings: `--mail-webhook-url` and its secret.

use std::time::Duration;

use base64::Engine;

/// Where each message is POSTed, and the key its signature is made with.
/// `Debug` leaves the key out.
#[derive(Clone)]
pub struct HookConfig {
    pub url: url::Url,
    /// The Standard Webhooks secret, decoded (`whsec_` + base64 in its file).
    pub key: Vec<u8>,
    pub timeout: Duration,
}

/// `url` as logs and errors may show it: scheme, host, port and path, with
/// no user, password, query or fragment (a hook URL often carries a token
/// in its query).
pub fn shown(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

impl HookConfig {
    /// The URL as logs and errors show it ([`shown`]).
    pub fn shown_url(&self) -> String {
        shown(&self.url)
    }
}

impl std::fmt::Debug for HookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookConfig")
            .field("url", &self.shown_url())
            .field("key", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The flags an endpoint is set with, for its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HookFlags {
    pub url: &'static str,
    pub secret: &'static str,
}

/// The delivery hook's (`MailConfig::Hook`).
pub const MAIL_HOOK: HookFlags = HookFlags {
    url: "--mail-webhook-url",
    secret: "--mail-webhook-secret-file",
};

/// The events receiver's.
pub const EVENTS: HookFlags = HookFlags {
    url: "--events-url",
    secret: "--events-secret-file",
};

#[derive(Debug, thiserror::Error)]
pub enum HookConfigError {
    #[error("{}: {why}", flags.url)]
    Url { flags: HookFlags, why: String },
    #[error(
        "{} {url}: refusing plain HTTP to a host that is not loopback \
         (what it carries is as secret as a password or names your users); use https://",
        flags.url
    )]
    Insecure { flags: HookFlags, url: String },
    #[error("{} needs {} (a whsec_… secret to sign with)", flags.url, flags.secret)]
    NoSecret { flags: HookFlags },
    #[error(
        "{} {path}: {why} (write one with: \
         echo \"whsec_$(openssl rand -base64 32)\" > FILE)",
        flags.secret
    )]
    Secret {
        flags: HookFlags,
        path: String,
        why: &'static str,
    },
}

impl HookConfig {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// `url` must be https, or http to a loopback host; `secret` is the
    /// text of the secret file: `whsec_` and the base64 of 24 to 64 bytes
    /// (as the Standard Webhooks specification has it).
    pub fn new(
        flags: HookFlags,
        url: &str,
        secret: &str,
        secret_path: &str,
    ) -> Result<Self, HookConfigError> {
        let url = Self::url(flags, url)?;
        let secret = secret.trim();
        let bad = |why| HookConfigError::Secret {
            flags,
            path: secret_path.to_string(),
            why,
        };
        let encoded = secret
            .strip_prefix("whsec_")
            .ok_or_else(|| bad("it does not start with whsec_"))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| bad("what follows whsec_ is not base64"))?;
        if !(24..=64).contains(&key.len()) {
            return Err(bad("the key must be 24 to 64 bytes"));
        }
        Ok(HookConfig {
            url,
            key,
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// The hook's URL, if it is one pwmail may post links to.
    pub fn url(flags: HookFlags, url: &str) -> Result<url::Url, HookConfigError> {
        let url = url::Url::parse(url).map_err(|e| HookConfigError::Url {
            flags,
            why: format!("{}: {e}", redacted(url)),
        })?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(HookConfigError::Insecure {
                    flags,
                    url: shown(&url),
                });
            }
            other => {
                return Err(HookConfigError::Url {
                    flags,
                    why: format!(
                        "{}: scheme {other} (https:// or, to loopback, http://)",
                        shown(&url)
                    ),
                });
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(HookConfigError::Url {
                flags,
                why: format!("{}: no host", shown(&url)),
            });
        }
        Ok(url)
    }
}

/// A URL that does not parse, as an error may show it: up to its query.
fn redacted(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    match url.find('@') {
        Some(at) => &url[at + 1..],
        None => url,
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "https://hooks.example.com/mail",
            "http://127.0.0.1:9000/x",
            "http://[::1]:9000/",
            "http://localhost/",
        ] {
            HookConfig::new(MAIL_HOOK, ok, SECRET, "f").unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let e = HookConfig::new(MAIL_HOOK, "http://hooks.example.com/", SECRET, "f").unwrap_err();
        assert!(matches!(e, HookConfigError::Insecure { .. }), "{e}");
        let e = HookConfig::new(EVENTS, "ftp://x/", SECRET, "f").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--events-url: ftp://x/: scheme ftp"),
            "{e}"
        );
    }

    #[test]
    fn the_secret_is_whsec_and_base64_of_24_to_64_bytes() {
        let url = "https://h.example/";
        let key = HookConfig::new(MAIL_HOOK, url, &format!("{SECRET}\n"), "f")
            .unwrap()
            .key;
        assert_eq!(key.len(), 24);
        for (bad, says) in [
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"),
            ("whsec_not base64!", "not base64"),
            ("whsec_AAAA", "24 to 64"),
        ] {
            let e = HookConfig::new(MAIL_HOOK, url, bad, "/etc/pwmail/hook")
                .unwrap_err()
                .to_string();
            assert!(e.contains(says) && e.contains("/etc/pwmail/hook"), "{e}");
            assert!(!e.contains(bad), "the secret is never shown: {e}");
        }
        let debug = format!(
            "{:?}",
            HookConfig::new(MAIL_HOOK, url, SECRET, "f").unwrap()
        );
        assert!(
            debug.contains("redacted") && !debug.contains("MfKQ"),
            "{debug}"
        );
    }
}
