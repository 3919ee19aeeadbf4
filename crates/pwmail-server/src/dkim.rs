//! DKIM signatures (RFC 6376), RSA-SHA256 and Ed25519-SHA256 (RFC 8463),
//! relaxed/relaxed, over the exact bytes a transport sends.
//!
//! lettre 0.11 has a signer, but it signs lettre's own `Message` (pwmail
//! writes most messages itself) and wants PKCS#1 RSA keys and raw Ed25519
//! seeds; this one takes what `openssl genpkey` writes (PKCS#8 PEM) and
//! signs with aws-lc-rs, which rustls already builds.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

/// The headers signed, those a message has: what a reader sees and what
/// says how to read the body. `from` is listed twice (over-signed), so a
/// second From added on the way breaks the signature.
const SIGNED_HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "auto-submitted",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// Which headers go into `h=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signed {
    /// Every header of [`SIGNED_HEADERS`] the message has.
    Whole,
    /// The same without `Message-ID` and `Date`, which Amazon SES replaces.
    ForSes,
}

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("--dkim-key {path}: {problem}")]
    Key { path: String, problem: String },
    /// The message could not be signed (it has no body, its headers are
    /// not ASCII, or the key refused).
    #[error("DKIM: {0}")]
    Sign(&'static str),
    #[error("--dkim-selector {0:?}: a selector is letters, digits, '-' and '.' (e.g. pwmail2026)")]
    Selector(String),
    #[error(
        "the DKIM signing domain {0:?} (--dkim-domain, else the domain of --mail-from) is not \
         a domain name that can publish a key"
    )]
    Domain(String),
}

enum Key {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A signing key with its selector and domain. `Debug` shows no key.
pub struct DkimSigner {
    key: Key,
    selector: String,
    domain: String,
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSigner")
            .field("algorithm", &self.algorithm())
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .finish()
    }
}

/// `ed25519-sha256 s=SELECTOR d=DOMAIN`, for the start-up line.
impl std::fmt::Display for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} s={} d={}",
            self.algorithm(),
            self.selector,
            self.domain
        )
    }
}

impl DkimSigner {
    /// A PEM private key (PKCS#8, as `openssl genpkey` writes RSA and
    /// Ed25519 keys, or PKCS#1 `RSA PRIVATE KEY`); RSA keys of at least
    /// 1024 bits (RFC 8301; 2048 is what to use).
    pub fn from_pem(
        pem: &[u8],
        path: &str,
        selector: &str,
        domain: &str,
    ) -> Result<Self, DkimError> {
        let problem = |problem: &str| DkimError::Key {
            path: path.to_string(),
            problem: problem.to_string(),
        };
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|_| {
            problem(
                "no PEM private key in it (make one with `openssl genpkey -algorithm ed25519` \
                 or `openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048`)",
            )
        })?;
        let key = match &der {
            PrivateKeyDer::Pkcs8(der) => {
                let der = der.secret_pkcs8_der();
                match RsaKeyPair::from_pkcs8(der) {
                    Ok(rsa) => Key::Rsa(rsa),
                    Err(_) => Key::Ed25519(
                        Ed25519KeyPair::from_pkcs8(der)
                            .map_err(|_| problem("a PKCS#8 key that is neither RSA nor Ed25519"))?,
                    ),
                }
            }
            PrivateKeyDer::Pkcs1(der) => Key::Rsa(
                RsaKeyPair::from_der(der.secret_pkcs1_der())
                    .map_err(|_| problem("an RSA PRIVATE KEY that does not parse"))?,
            ),
            _ => return Err(problem("an EC key; DKIM signs with RSA or Ed25519")),
        };
        if let Key::Rsa(rsa) = &key
            && rsa.public_modulus_len() * 8 < 1024
        {
            return Err(problem(
                "an RSA key under 1024 bits, which verifiers refuse (RFC 8301); use 2048",
            ));
        }
        let selector_ok = !selector.is_empty()
            && selector.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !selector_ok {
            return Err(DkimError::Selector(selector.to_string()));
        }
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !domain_ok {
            return Err(DkimError::Domain(domain.to_string()));
        }
        Ok(DkimSigner {
            key,
            selector: selector.to_string(),
            domain: domain.to_ascii_lowercase(),
        })
    }

    fn algorithm(&self) -> &'static str {
        match self.key {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// The TXT record to publish: its name and its value.
    pub fn dns_record(&self) -> (String, String) {
        let (k, public) = match &self.key {
            // SubjectPublicKeyInfo, as `openssl pkey -pubout` writes it.
            Key::Rsa(rsa) => (
                "rsa",
                rsa.public_key()
                    .as_der()
                    .map(|der| der.as_ref().to_vec())
                    .unwrap_or_default(),
            ),
            // RFC 8463: the 32 bytes of the key alone.
            Key::Ed25519(ed) => ("ed25519", ed.public_key().as_ref().to_vec()),
        };
        (
            format!("{}._domainkey.{}", self.selector, self.domain),
            format!("v=DKIM1; k={k}; p={}", B64.encode(public)),
        )
    }

    /// The `DKIM-Signature` header line (CRLF-ended) for `message`, signed
    /// at `now` (seconds), to be put before its first header.
    pub fn sign(&self, message: &[u8], now: u64, signed: Signed) -> Result<String, DkimError> {
        let split = memchr::memmem::find(message, b"\r\n\r\n")
            .ok_or(DkimError::Sign("the message has no body"))?;
        let (head, body) = (&message[..split + 2], &message[split + 4..]);
        let head =
            std::str::from_utf8(head).map_err(|_| DkimError::Sign("its headers are not ASCII"))?;
        let fields = fields(head);
        let mut names: Vec<&str> = SIGNED_HEADERS
            .iter()
            .copied()
            .filter(|name| signed == Signed::Whole || !matches!(*name, "date" | "message-id"))
            .filter(|name| fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
            .collect();
        // Signing picks instances from the bottom; each of these appears
        // once, so the extra `from` stands for "no other From".
        let mut data = String::with_capacity(head.len() + 256);
        for name in &names {
            if let Some((field_name, value)) = fields
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                relaxed_header(&mut data, field_name, value);
                data.push_str("\r\n");
            }
        }
        names.push("from");
        let body_hash = B64.encode(Sha256::digest(relaxed_body(body)));
        let value = format!(
            "v=1; a={}; c=relaxed/relaxed; d={}; s={};\r\n\tt={now}; h={};\r\n\tbh={body_hash};\r\n\tb=",
            self.algorithm(),
            self.domain,
            self.selector,
            names.join(":"),
        );
        relaxed_header(&mut data, "DKIM-Signature", &value);
        let signature = match &self.key {
            Key::Rsa(rsa) => {
                let mut signature = vec![0; rsa.public_modulus_len()];
                rsa.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    data.as_bytes(),
                    &mut signature,
                )
                .map_err(|_| DkimError::Sign("RSA signing failed"))?;
                signature
            }
            // RFC 8463: Ed25519 signs the SHA-256 of the data.
            Key::Ed25519(ed) => ed.sign(&Sha256::digest(data.as_bytes())).as_ref().to_vec(),
        };
        Ok(format!(
            "DKIM-Signature: {value}{}\r\n",
            B64.encode(signature)
        ))
    }
}

/// The header fields of `head` (CRLF-ended lines), each name with its
/// value as written (continuation lines included, without the last CRLF).
fn fields(head: &str) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    let mut start = 0;
    let bytes = head.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\r' && bytes[i + 1] == b'\n' {
            let continued = bytes.get(i + 2).is_some_and(|b| *b == b' ' || *b == b'\t');
            if !continued {
                let field = &head[start..i];
                if let Some((name, value)) = field.split_once(':') {
                    out.push((name, value));
                }
                start = i + 2;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

/// RFC 6376 3.4.2: the name in lower case, the value unfolded, runs of
/// white space as one space, none at either end of it.
fn relaxed_header(out: &mut String, name: &str, value: &str) {
    out.push_str(&name.trim_end().to_ascii_lowercase());
    out.push(':');
    let (mut space, mut started) = (false, false);
    for c in value.chars() {
        match c {
            '\r' | '\n' => {}
            ' ' | '\t' => space = true,
            c => {
                if space && started {
                    out.push(' ');
                }
                (space, started) = (false, true);
                out.push(c);
            }
        }
    }
}

/// RFC 6376 3.4.4: each line's runs of white space as one space and none
/// at its end; empty lines at the end dropped; a body that is not empty
/// ends with CRLF.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut pending_empty = 0usize;
    let mut lines = body.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if last && line.is_empty() {
            break;
        }
        let mut canon = Vec::with_capacity(line.len());
        let mut space = false;
        for &b in line {
            if b == b' ' || b == b'\t' {
                space = true;
            } else {
                if space {
                    canon.push(b' ');
                }
                space = false;
                canon.push(b);
            }
        }
        if canon.is_empty() {
            pending_empty += 1;
            continue;
        }
        for _ in 0..pending_empty {
            out.extend_from_slice(b"\r\n");
        }
        pending_empty = 0;
        out.extend_from_slice(&canon);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_canonicalization_follows_rfc_6376_examples() {
        // RFC 6376 3.4.5.
        let mut h = String::new();
        relaxed_header(&mut h, "A", " X");
        h.push_str("\r\n");
        relaxed_header(&mut h, "B ", " Y\t\r\n\tZ  ");
        h.push_str("\r\n");
        relaxed_header(&mut h, "Subject", " Re: a  b");
        assert_eq!(h, "a:X\r\nb:Y Z\r\nsubject:Re: a b");
        assert_eq!(relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n"), b" C\r\nD E\r\n");
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
        assert_eq!(relaxed_body(b"a\r\n\r\nb"), b"a\r\n\r\nb\r\n");
    }

    #[test]
    fn fields_keep_continuation_lines() {
        let head = "From: a@b.c\r\nSubject: one\r\n two\r\nTo: x@y.z\r\n";
        assert_eq!(
            fields(head),
            [
                ("From", " a@b.c"),
                ("Subject", " one\r\n two"),
                ("To", " x@y.z")
            ]
        );
    }
}
