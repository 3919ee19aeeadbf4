//! Built-in HTTPS: the certificate chain and key named by `--tls-cert` /
//! `--tls-key`, checked before the server starts so that a wrong pair is a
//! clear start-up error rather than a panic or a handshake that fails later.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The PEM files of the server's certificate chain and private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    // The cause is part of the message and not also a `source` (which
    // thiserror takes a field of that name as), so `{:#}` says it once.
    #[error("reading the TLS {what} {}: {error}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the TLS certificate file {} holds no PEM certificate{}", path.display(), detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NoCertificate {
        path: PathBuf,
        detail: Option<String>,
    },
    #[error("the TLS key file {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    NoKey { path: PathBuf },
    #[error("the TLS certificate {} cannot be read as X.509: {detail}", path.display())]
    BadCertificate { path: PathBuf, detail: String },
    #[error("the TLS certificate {} expired at {not_after}", path.display())]
    Expired { path: PathBuf, not_after: String },
    #[error("the TLS certificate {} is not valid before {not_before}", path.display())]
    NotYetValid { path: PathBuf, not_before: String },
    #[error("the TLS key {} does not belong to the certificate {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("the TLS key {} cannot be used: {detail}", path.display())]
    UnusableKey { path: PathBuf, detail: String },
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    crate::files::read_small(path).map_err(|error| TlsError::Read {
        what,
        path: path.to_owned(),
        error,
    })
}

/// Reads and checks the pair at `now` (seconds since the epoch): both files
/// readable, the leaf certificate within its validity, the key its own.
pub fn load(files: &TlsFiles, now: i64) -> Result<rustls::ServerConfig, TlsError> {
    let cert_pem = read("certificate", &files.cert)?;
    let key_pem = read("key", &files.key)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::NoCertificate {
            path: files.cert.clone(),
            detail: Some(e.to_string()),
        })?;
    let Some(leaf) = certs.first() else {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
            detail: None,
        });
    };
    check_validity(&files.cert, leaf, now)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey {
        path: files.key.clone(),
    })?;

    let provider = provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsError::UnusableKey {
            path: files.key.clone(),
            detail: e.to_string(),
        })?;
    rustls::sign::CertifiedKey::new(certs.clone(), signing_key)
        .keys_match()
        .map_err(|_| TlsError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
        })?;
    let unusable = |e: rustls::Error| TlsError::UnusableKey {
        path: files.key.clone(),
        detail: e.to_string(),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(unusable)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(unusable)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn check_validity(path: &Path, leaf: &CertificateDer<'_>, now: i64) -> Result<(), TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| {
        TlsError::BadCertificate {
            path: path.to_owned(),
            detail: e.to_string(),
        }
    })?;
    let validity = cert.validity();
    if now > validity.not_after.timestamp() {
        return Err(TlsError::Expired {
            path: path.to_owned(),
            not_after: crate::clock::format_utc(validity.not_after.timestamp() * 1000),
        });
    }
    if now < validity.not_before.timestamp() {
        return Err(TlsError::NotYetValid {
            path: path.to_owned(),
            not_before: crate::clock::format_utc(validity.not_before.timestamp() * 1000),
        });
    }
    Ok(())
}
