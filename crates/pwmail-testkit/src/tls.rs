//! A private CA made in the test, and certificates it issues, written as PEM
//! files the way an operator would hand them to `pwmail serve`.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A CA that lives for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and key as files, plus the CA file that trusts them.
pub struct TlsPair {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `127.0.0.1` and `localhost`, valid now,
    /// written under `dir` with the CA next to it.
    pub fn issue(&self, dir: &Path) -> TlsPair {
        self.issue_with(dir, "server", |_| {})
    }

    /// Like [`issue`](Self::issue), after `adjust` changed the parameters
    /// (validity, names); files are named after `stem`.
    pub fn issue_with(
        &self,
        dir: &Path,
        stem: &str,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> TlsPair {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "pwmail test server");
        adjust(&mut params);
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        let pair = TlsPair {
            cert: dir.join(format!("{stem}.crt")),
            key: dir.join(format!("{stem}.key")),
            ca: dir.join(format!("{stem}-ca.pem")),
        };
        std::fs::write(&pair.cert, cert.pem()).expect("write certificate");
        std::fs::write(&pair.key, key.serialize_pem()).expect("write key");
        std::fs::write(&pair.ca, self.pem()).expect("write CA");
        pair
    }
}

pub use rcgen::date_time_ymd;
