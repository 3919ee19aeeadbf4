//! Amazon SES settings: `--ses-region`, `--ses-endpoint`, and credentials
//! found where every AWS tool looks for them.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// An access key. `Debug` shows only the key id.
#[derive(Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Where they were found, for the start-up line.
    pub source: String,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("source", &self.source)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct SesConfig {
    pub region: String,
    /// `https://email.REGION.amazonaws.com` unless `--ses-endpoint`.
    pub endpoint: url::Url,
    pub credentials: AwsCredentials,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SesConfigError {
    #[error("--ses-region {0:?} is not an AWS region (e.g. eu-west-1)")]
    Region(String),
    #[error("--ses-endpoint {0}")]
    Endpoint(String),
    #[error(
        "no AWS credentials for SES: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put \
         aws_access_key_id and aws_secret_access_key under [{profile}] in {file}"
    )]
    NoCredentials { profile: String, file: String },
    #[error("{file}: {problem}")]
    CredentialsFile { file: String, problem: String },
}

impl SesConfig {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// `region`, with `endpoint` or SES's own; credentials as `env` (the
    /// process environment, as a lookup) names them.
    pub fn new(
        region: &str,
        endpoint: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SesConfigError> {
        let region_ok = !region.is_empty()
            && region.len() <= 32
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(SesConfigError::Region(region.to_string()));
        }
        let endpoint = match endpoint {
            None => url::Url::parse(&format!("https://email.{region}.amazonaws.com"))
                .map_err(|e| SesConfigError::Region(format!("{region} ({e})")))?,
            Some(text) => {
                let url = url::Url::parse(text)
                    .map_err(|e| SesConfigError::Endpoint(format!("{text}: {e}")))?;
                let loopback = match url.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                    None => false,
                };
                match url.scheme() {
                    "https" => {}
                    "http" if loopback => {}
                    _ => {
                        return Err(SesConfigError::Endpoint(format!(
                            "{text}: https://, or http:// to loopback only (messages carry reset links)"
                        )));
                    }
                }
                url
            }
        };
        Ok(SesConfig {
            region: region.to_string(),
            endpoint,
            credentials: AwsCredentials::find(env)?,
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }
}

impl AwsCredentials {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and
    /// `AWS_SESSION_TOKEN`), else the shared credentials file
    /// (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`), profile
    /// `AWS_PROFILE` or `default`.
    pub fn find(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, SesConfigError> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            return Ok(AwsCredentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: var("AWS_SESSION_TOKEN"),
                source: "the environment (AWS_ACCESS_KEY_ID)".into(),
            });
        }
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let file = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| Path::new(&home).join(".aws/credentials")))
            .unwrap_or_else(|| PathBuf::from("~/.aws/credentials"));
        let shown = file.display().to_string();
        let none = || SesConfigError::NoCredentials {
            profile: profile.clone(),
            file: shown.clone(),
        };
        let text = match crate::files::read_small_text(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(none()),
            Err(e) => {
                return Err(SesConfigError::CredentialsFile {
                    file: shown,
                    problem: e.to_string(),
                });
            }
        };
        let section = ini_section(&text, &profile);
        match (
            section.get("aws_access_key_id"),
            section.get("aws_secret_access_key"),
        ) {
            (Some(id), Some(secret)) => Ok(AwsCredentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: section.get("aws_session_token").cloned(),
                source: format!("{shown} [{profile}]"),
            }),
            _ => Err(none()),
        }
    }
}

/// The `key = value` lines of `[name]` in an INI text (`#` and `;`
/// comment lines skipped).
fn ini_section(text: &str, name: &str) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == name;
            continue;
        }
        if inside && let Some((key, value)) = line.split_once('=') {
            out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn credentials_from_the_environment_else_the_shared_file() {
        let from_env = AwsCredentials::find(&env(&[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "s3cret"),
        ]))
        .unwrap();
        assert_eq!(from_env.access_key_id, "AKIDENV");
        assert!(!format!("{from_env:?}").contains("s3cret"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = a\n\n\
             # the mailer's\n[mailer]\naws_access_key_id=AKIDMAILER\naws_secret_access_key=b\n\
             aws_session_token = tok\n",
        )
        .unwrap();
        let path = file.display().to_string();
        let found = |profile: Option<&str>| {
            let mut vars = vec![("AWS_SHARED_CREDENTIALS_FILE", path.as_str())];
            if let Some(p) = profile {
                vars.push(("AWS_PROFILE", p));
            }
            AwsCredentials::find(&env(&vars))
        };
        assert_eq!(found(None).unwrap().access_key_id, "AKIDDEFAULT");
        let mailer = found(Some("mailer")).unwrap();
        assert_eq!(
            (
                mailer.access_key_id.as_str(),
                mailer.session_token.as_deref()
            ),
            ("AKIDMAILER", Some("tok"))
        );
        let e = found(Some("nobody")).unwrap_err().to_string();
        assert!(e.contains("[nobody]") && e.contains(&path), "{e}");
        let e = AwsCredentials::find(&env(&[("HOME", "/nonexistent")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/.aws/credentials"), "{e}");
    }

    #[test]
    fn endpoints_are_https_or_loopback() {
        let creds = env(&[("AWS_ACCESS_KEY_ID", "A"), ("AWS_SECRET_ACCESS_KEY", "B")]);
        let c = SesConfig::new("eu-west-1", None, &creds).unwrap();
        assert_eq!(
            c.endpoint.as_str(),
            "https://email.eu-west-1.amazonaws.com/"
        );
        SesConfig::new("us-east-1", Some("http://127.0.0.1:5000"), &creds).unwrap();
        let e = SesConfig::new("us-east-1", Some("http://ses.example"), &creds).unwrap_err();
        assert!(e.to_string().contains("loopback only"), "{e}");
        let e = SesConfig::new("EU west", None, &creds).unwrap_err();
        assert!(e.to_string().contains("not an AWS region"), "{e}");
    }
}
