//! Client for the pwmail API: an admin has pwmail email a user a single-use
//! link to set a new password.
//!
//! `generated.rs` comes from `openapi/pwmail.yaml` via `cargo xtask codegen`
//! (one method per operation, named after its `operationId`, returning a
//! builder: set the body and headers, then `send()`); this file adds
//! what the generator cannot know: how to build a client with a token, a
//! private CA and timeouts ([`Builder`]), the fixed `system` namespace, and
//! an error type that prints what a person needs ([`CallError`]).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use pwmail_client::types::{ResetPasswordByAdminRequest, SendPasswordEmailRequest};
//! use pwmail_client::{Builder, CallError};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Builder::new("https://pwmail.example.com")
//!     .api_token(&std::env::var("PWMAIL_TOKEN")?)
//!     // A private CA, on top of the system's roots.
//!     .ca_file("/etc/pwmail/ca.pem")
//!     .timeout(Duration::from_secs(10))
//!     .build()?;
//!
//! // ResetPasswordByAdmin: the password stops working, the user gets a link.
//! // The Idempotency-Key makes a retry after a lost answer safe.
//! client
//!     .reset_password_by_admin()
//!     .body(ResetPasswordByAdminRequest::builder().email("user@example.com"))
//!     .idempotency_key("3f1c9a52-reset-user")
//!     .send()
//!     .await?;
//!
//! // SendPasswordEmail (deprecated upstream) in the fixed `system` namespace.
//! let sent = client
//!     .send_password_email_system()
//!     .body(SendPasswordEmailRequest::builder().email("user@example.com"))
//!     .send()
//!     .await;
//! // Every call's `send` fails with a `CallError`.
//! match sent {
//!     Ok(_) => println!("queued"),
//!     // 429: this user was emailed a moment ago; the server says when to retry.
//!     Err(e @ CallError::Api { status: 429, .. }) => {
//!         let wait = e.retry_after().unwrap_or(Duration::from_secs(60));
//!         println!("{e}; retry in {} s", wait.as_secs());
//!     }
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Whatever the operation, a failed call is a [`CallError`]: here, with no
//! server listening, each one says so the same way.
//!
//! ```
//! use pwmail_client::types::{ResetPasswordByAdminRequest, SendPasswordEmailRequest};
//! use pwmail_client::{CallError, with_api_token};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let client = with_api_token("http://127.0.0.1:1", "pwm_example").unwrap();
//! let email = "user@example.com";
//! let failures: [Result<(), CallError>; 4] = [
//!     client.reset_password_by_admin()
//!         .body(ResetPasswordByAdminRequest::builder().email(email))
//!         .send().await.map(drop),
//!     client.send_password_email_system()
//!         .body(SendPasswordEmailRequest::builder().email(email))
//!         .send().await.map(drop),
//!     client.send_password_email()
//!         .namespace("system")
//!         .body(SendPasswordEmailRequest::builder().email(email))
//!         .send().await.map(drop),
//!     client.get_password_email_status().email(email).send().await.map(drop),
//! ];
//! for failure in failures {
//!     assert!(matches!(failure, Err(CallError::Transport(_))), "{failure:?}");
//! }
//! # }
//! ```

mod generated;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use generated::*;
/// The HTTP client underneath, re-exported so that
/// `Client::new_with_client(url, reqwest::Client)` needs no reqwest of your own.
pub use reqwest;

/// Why a [`Builder`] could not build a client.
#[derive(Debug)]
pub enum BuildError {
    /// The token holds characters an HTTP header cannot carry.
    InvalidToken,
    /// The CA file could not be read.
    CaFile(PathBuf, std::io::Error),
    /// The CA file holds no PEM certificate reqwest accepts (a malformed
    /// one, or none at all: every call would then fail `UnknownIssuer`).
    CaCertificates(PathBuf, String),
    /// The base URL is not an `http://` or `https://` URL with a host.
    BaseUrl(String),
    Http(reqwest::Error),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::InvalidToken => f.write_str("the API token is not a valid header value"),
            BuildError::CaFile(path, e) => write!(f, "reading CA file {}: {e}", path.display()),
            BuildError::CaCertificates(path, reason) => write!(
                f,
                "CA file {} holds no usable PEM certificate: {reason}",
                path.display()
            ),
            BuildError::BaseUrl(url) => write!(
                f,
                "{url:?} is not a server URL: give its scheme and host, e.g. \
                 https://pwmail.example.com or http://127.0.0.1:8080"
            ),
            BuildError::Http(e) => write!(f, "building the HTTP client: {}", chain(e)),
        }
    }
}

impl std::error::Error for BuildError {}

/// Builds a [`Client`]: the API token sent on every call, extra trusted CA
/// certificates, and timeouts.
#[derive(Debug)]
pub struct Builder {
    baseurl: String,
    token: Option<String>,
    ca_files: Vec<PathBuf>,
    ca_pems: Vec<Vec<u8>>,
    connect_timeout: Duration,
    timeout: Duration,
}

impl Builder {
    /// A client of the server at `baseurl` (`https://host[:port]`; `http://`
    /// for one on loopback or behind your own TLS proxy).
    pub fn new(baseurl: &str) -> Builder {
        Builder {
            baseurl: baseurl.trim_end_matches('/').to_string(),
            token: None,
            ca_files: Vec::new(),
            ca_pems: Vec::new(),
            connect_timeout: Duration::from_secs(15),
            timeout: Duration::from_secs(30),
        }
    }

    /// Sent as `Authorization: APIToken <token>`, marked sensitive so that
    /// reqwest never prints it.
    pub fn api_token(mut self, token: &str) -> Builder {
        self.token = Some(token.to_string());
        self
    }

    /// Trust the CA certificates in this PEM file as well as the system's.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Builder {
        self.ca_files.push(path.as_ref().to_owned());
        self
    }

    /// Trust these PEM CA certificates as well as the system's.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Builder {
        self.ca_pems.push(pem.into());
        self
    }

    /// Longest wait for a connection (default 15 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Builder {
        self.connect_timeout = timeout;
        self
    }

    /// Longest wait for a whole call (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Builder {
        self.timeout = timeout;
        self
    }

    /// Whether the base URL is one a call can go to (`http`/`https` and a
    /// host), before anything else is done with it.
    pub fn check_base_url(&self) -> Result<(), BuildError> {
        match reqwest::Url::parse(&self.baseurl) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
            _ => Err(BuildError::BaseUrl(self.baseurl.clone())),
        }
    }

    pub fn build(self) -> Result<Client, BuildError> {
        self.check_base_url()?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &self.token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("APIToken {token}"))
                .map_err(|_| BuildError::InvalidToken)?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let mut roots = Vec::new();
        for path in &self.ca_files {
            let pem = std::fs::read(path).map_err(|e| BuildError::CaFile(path.clone(), e))?;
            roots.extend(certificates(&pem, path)?);
        }
        for pem in &self.ca_pems {
            roots.extend(certificates(pem, Path::new("<PEM>"))?);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .tls_certs_merge(roots)
            .build()
            .map_err(BuildError::Http)?;
        Ok(Client::new_with_client(&self.baseurl, client))
    }
}

/// The certificates of a PEM bundle; one with none is refused here, not at
/// every call as an unknown issuer.
fn certificates(pem: &[u8], source: &Path) -> Result<Vec<reqwest::Certificate>, BuildError> {
    let refused = |reason: String| BuildError::CaCertificates(source.to_owned(), reason);
    let found = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| refused(chain(&e)))?;
    if found.is_empty() {
        return Err(refused("no -----BEGIN CERTIFICATE----- block".into()));
    }
    Ok(found)
}

/// A client that sends `Authorization: APIToken <token>` on every request,
/// with the default timeouts and the system's CA roots.
pub fn with_api_token(baseurl: &str, token: &str) -> Result<Client, BuildError> {
    Builder::new(baseurl).api_token(token).build()
}

/// Why a call failed, printed as a person needs it: the HTTP status, the
/// API's gRPC code and message, or the transport's reason (connection
/// refused, an unknown certificate issuer), never the response headers.
#[derive(Debug)]
pub enum CallError {
    /// The server refused the call with its error body.
    Api {
        status: u16,
        /// gRPC status code of the body (5 NotFound, 8 ResourceExhausted, ...).
        code: i32,
        message: String,
        /// Seconds from a `Retry-After` header (429 and 503).
        retry_after_secs: Option<u64>,
        /// The call's `x-request-id`: what the operator finds it by in the
        /// server's log and audit rows.
        request_id: Option<String>,
    },
    /// No answer: the connection, TLS or the timeout failed.
    Transport(String),
    /// An answer outside the API document, or one that did not parse.
    Unexpected { status: Option<u16>, detail: String },
    /// The request could not be built (an invalid argument).
    Request(String),
}

impl CallError {
    /// The HTTP status, when an answer came.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Api { status, .. } => Some(*status),
            CallError::Unexpected { status, .. } => *status,
            CallError::Transport(_) | CallError::Request(_) => None,
        }
    }

    /// How long the server asked to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Api {
                retry_after_secs, ..
            } => retry_after_secs.map(Duration::from_secs),
            _ => None,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Api {
                status,
                code,
                message,
                retry_after_secs,
                ..
            } => {
                write!(f, "HTTP {status} (code {code}): {message}")?;
                if let Some(secs) = retry_after_secs {
                    write!(f, " (retry after {secs} s)")?;
                }
                Ok(())
            }
            CallError::Transport(reason) => write!(f, "no answer: {reason}"),
            CallError::Unexpected {
                status: Some(status),
                detail,
            } => write!(f, "unexpected answer HTTP {status}: {detail}"),
            CallError::Unexpected {
                status: None,
                detail,
            } => write!(f, "unexpected answer: {detail}"),
            CallError::Request(reason) => write!(f, "invalid request: {reason}"),
        }
    }
}

impl std::error::Error for CallError {}

impl From<Error<types::ErrorResponse>> for CallError {
    fn from(error: Error<types::ErrorResponse>) -> CallError {
        match error {
            Error::ErrorResponse(rv) => {
                let status = rv.status().as_u16();
                let header = |name: &str| {
                    rv.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(|v| v.trim().to_string())
                };
                let retry_after_secs = header("retry-after").and_then(|v| v.parse().ok());
                let request_id = header("x-request-id");
                let body = rv.into_inner();
                CallError::Api {
                    status,
                    code: body.code,
                    message: body.message,
                    retry_after_secs,
                    request_id,
                }
            }
            Error::CommunicationError(e) | Error::InvalidUpgrade(e) => {
                CallError::Transport(chain(&e))
            }
            Error::ResponseBodyError(e) => CallError::Unexpected {
                status: e.status().map(|s| s.as_u16()),
                detail: chain(&e),
            },
            Error::InvalidResponsePayload(_, e) => CallError::Unexpected {
                status: None,
                detail: format!("the body does not parse: {e}"),
            },
            Error::UnexpectedResponse(response) => CallError::Unexpected {
                status: Some(response.status().as_u16()),
                detail: "not an answer the API document lists".into(),
            },
            Error::InvalidRequest(reason) | Error::Custom(reason) => CallError::Request(reason),
        }
    }
}

/// An error and its sources on one line: reqwest's own message alone says
/// "error sending request" and keeps the reason (refused, unknown issuer)
/// in its sources.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

/// The namespace SendPasswordEmail accepts: always `system`.
pub const SYSTEM_NAMESPACE: &str = "system";

impl Client {
    /// SendPasswordEmail in the `system` namespace (the only one): the
    /// generated [`send_password_email`](Client::send_password_email) with
    /// the namespace set.
    pub fn send_password_email_system(&self) -> builder::SendPasswordEmail<'_> {
        self.send_password_email().namespace(SYSTEM_NAMESPACE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_that_cannot_be_a_header_is_refused() {
        assert!(matches!(
            with_api_token("http://127.0.0.1:1", "pwm_x\nInjected: 1"),
            Err(BuildError::InvalidToken)
        ));
        assert!(with_api_token("http://127.0.0.1:1", "pwm_ok").is_ok());
    }

    #[test]
    fn a_ca_file_that_is_missing_or_not_pem_is_named() {
        let err = Builder::new("https://127.0.0.1:1")
            .ca_file("/nonexistent/ca.pem")
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let dir = std::env::temp_dir().join(format!("pwmail-client-ca-{}", std::process::id()));
        std::fs::write(
            &dir,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = Builder::new("https://127.0.0.1:1")
            .ca_file(&dir)
            .build()
            .map(|_| ())
            .unwrap_err()
            .to_string();
        let _ = std::fs::remove_file(&dir);
        assert!(err.contains("holds no usable PEM certificate"), "{err}");
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused_at_build() {
        // A key alone, as a misplaced file would hold: valid PEM, no
        // certificate. Accepted, every call would fail `UnknownIssuer`.
        let path =
            std::env::temp_dir().join(format!("pwmail-client-nocert-{}", std::process::id()));
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = Builder::new("https://127.0.0.1:1").ca_file(&path).build();
        let _ = std::fs::remove_file(&path);
        match err {
            Err(BuildError::CaCertificates(named, reason)) => {
                assert_eq!(named, path);
                assert!(
                    reason.contains("no -----BEGIN CERTIFICATE-----"),
                    "{reason}"
                );
            }
            other => panic!("expected CaCertificates, got {:?}", other.map(|_| ())),
        }
        assert!(matches!(
            Builder::new("https://127.0.0.1:1").ca_pem("").build(),
            Err(BuildError::CaCertificates(..))
        ));
    }

    #[tokio::test]
    async fn a_refused_connection_says_so_without_headers() {
        // Port 1 on loopback: nothing listens, the connection is refused.
        let client = with_api_token("http://127.0.0.1:1", "pwm_x").unwrap();
        let err = client
            .reset_password_by_admin()
            .body(types::ResetPasswordByAdminRequest::builder().email("a@example.com"))
            .send()
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("no answer: "), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
        assert_eq!(err.status(), None);
    }

    #[tokio::test]
    async fn an_invalid_argument_is_named_before_anything_is_sent() {
        let client = with_api_token("http://127.0.0.1:1", "pwm_x").unwrap();
        let err = client
            .reset_password_by_admin()
            .body(types::ResetPasswordByAdminRequest::builder().email("x".repeat(2000)))
            .idempotency_key("")
            .send()
            .await
            .unwrap_err();
        // The first invalid part is named, with the document's rule; no
        // connection was tried (it would have been refused).
        let CallError::Request(reason) = &err else {
            panic!("expected a request error, got {err}");
        };
        assert!(reason.starts_with("idempotency_key: "), "{reason}");
        let err = client
            .reset_password_by_admin()
            .body(types::ResetPasswordByAdminRequest::builder().email("x".repeat(2000)))
            .send()
            .await
            .unwrap_err();
        let CallError::Request(reason) = &err else {
            panic!("expected a request error, got {err}");
        };
        assert!(
            reason.starts_with("body: ") && reason.contains("email"),
            "{reason}"
        );
    }

    #[test]
    fn an_api_error_prints_status_code_message_and_wait() {
        let err = CallError::Api {
            status: 429,
            code: 8,
            message: "this user was emailed a moment ago".into(),
            retry_after_secs: Some(42),
            request_id: Some("0193a5e2-0000-7000-8000-000000000000".into()),
        };
        assert_eq!(
            err.to_string(),
            "HTTP 429 (code 8): this user was emailed a moment ago (retry after 42 s)"
        );
        assert_eq!(err.retry_after(), Some(Duration::from_secs(42)));
    }
}
