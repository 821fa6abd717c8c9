//! TLS: the operator's certificate, or a local CA and `localhost` certificate for development.
//!
//! The local CA is created on first start in the data directory (`ca.pem`, `cert.pem`,
//! `key.pem`) and reused later. Its private key is discarded as soon as it has signed the leaf:
//! trusting `ca.pem` can never admit any other certificate. When the leaf nears expiry both are
//! made anew (and the new CA must be trusted again). Either way the leaf's SPKI pin
//! (base64 SHA-256 of its DER SubjectPublicKeyInfo, what Chromium's
//! `--ignore-certificate-errors-spki-list` takes) is computed and written to `spki.txt`.

use crate::keys::write_private;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// The local CA certificate, to trust in a browser or system store.
pub const CA_FILE: &str = "ca.pem";
/// The local leaf certificate.
pub const CERT_FILE: &str = "cert.pem";
/// The local leaf's private key (mode 0600).
pub const KEY_FILE: &str = "key.pem";
/// The leaf's SPKI pin, one line.
pub const SPKI_FILE: &str = "spki.txt";

/// How long a local certificate is valid.
const LOCAL_VALIDITY_DAYS: i64 = 397;
/// A local certificate this close to expiry is made anew at start.
const RENEW_BEFORE_DAYS: i64 = 30;

/// A TLS setup problem.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading or writing a file.
    Io(PathBuf, std::io::Error),
    /// A PEM file without the expected certificate or key.
    Pem(PathBuf, String),
    /// A certificate that cannot be parsed.
    Certificate(String),
    /// Creating the local CA failed.
    Generate(rcgen::Error),
    /// rustls refused the certificate and key.
    Rustls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            TlsError::Pem(path, e) => write!(f, "{}: {e}", path.display()),
            TlsError::Certificate(e) => write!(f, "certificate: {e}"),
            TlsError::Generate(e) => write!(f, "creating the local CA: {e}"),
            TlsError::Rustls(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// What the local CA step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalCa {
    /// Made now (first start, or the old one was expiring): it must be trusted.
    Created,
    /// Reused from an earlier start.
    Reused,
}

/// A ready TLS configuration and what to tell the operator about it.
#[derive(Debug)]
pub struct TlsSetup {
    /// For the acceptor.
    pub server_config: Arc<ServerConfig>,
    /// The leaf's SPKI pin, base64.
    pub spki_pin: String,
    /// The local CA's state, when the local CA is used.
    pub local_ca: Option<LocalCa>,
    /// The CA certificate to trust, when the local CA is used.
    pub ca_path: Option<PathBuf>,
}

/// TLS with the operator's PEM certificate chain and key.
pub fn from_files(cert: &Path, key: &Path) -> Result<TlsSetup, TlsError> {
    let (chain, key) = read_pair(cert, key)?;
    let spki_pin = chain
        .first()
        .map(|leaf| spki_pin(leaf))
        .ok_or_else(|| TlsError::Pem(cert.to_owned(), "no certificate in the file".to_owned()))??;
    Ok(TlsSetup {
        server_config: server_config(chain, key)?,
        spki_pin,
        local_ca: None,
        ca_path: None,
    })
}

/// TLS with the local CA in `data_dir`, creating it if missing or expiring.
pub fn local(data_dir: &Path) -> Result<TlsSetup, TlsError> {
    let [ca, cert, key] = [CA_FILE, CERT_FILE, KEY_FILE].map(|f| data_dir.join(f));
    let reusable = ca.exists() && cert.exists() && key.exists() && !expiring(&cert)?;
    let local_ca = if reusable {
        LocalCa::Reused
    } else {
        generate(&ca, &cert, &key)?;
        LocalCa::Created
    };
    let (chain, private_key) = read_pair(&cert, &key)?;
    let pin = chain
        .first()
        .map(|leaf| spki_pin(leaf))
        .ok_or_else(|| TlsError::Pem(cert.clone(), "no certificate in the file".to_owned()))??;
    let spki_path = data_dir.join(SPKI_FILE);
    fs::write(&spki_path, format!("{pin}\n")).map_err(|e| TlsError::Io(spki_path, e))?;
    Ok(TlsSetup {
        server_config: server_config(chain, private_key)?,
        spki_pin: pin,
        local_ca: Some(local_ca),
        ca_path: Some(ca),
    })
}

fn read_pair(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem(cert.to_owned(), e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::Pem(
            cert.to_owned(),
            "no certificate in the file".to_owned(),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Pem(key.to_owned(), e.to_string()))?;
    Ok((chain, key_der))
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Rustls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The base64 SHA-256 of a certificate's DER SubjectPublicKeyInfo.
pub fn spki_pin(cert_der: &[u8]) -> Result<String, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let digest = Sha256::digest(cert.tbs_certificate.subject_pki.raw);
    Ok(base64::engine::general_purpose::STANDARD.encode(digest))
}

/// Whether the certificate in `path` expires within [`RENEW_BEFORE_DAYS`].
fn expiring(path: &Path) -> Result<bool, TlsError> {
    let pem = fs::read(path).map_err(|e| TlsError::Io(path.to_owned(), e))?;
    let der = CertificateDer::from_pem_slice(&pem)
        .map_err(|e| TlsError::Pem(path.to_owned(), e.to_string()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let renew_at = OffsetDateTime::now_utc() + Duration::days(RENEW_BEFORE_DAYS);
    Ok(cert.validity().not_after.timestamp() < renew_at.unix_timestamp())
}

/// Makes a CA and a leaf for `localhost`, `127.0.0.1` and `::1`; writes both certificates and
/// the leaf key; drops the CA key.
fn generate(ca_path: &Path, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let now = OffsetDateTime::now_utc();
    let not_before = now - Duration::days(1);
    let not_after = now + Duration::days(LOCAL_VALIDITY_DAYS);
    let suffix = crate::keys::random_hex(4).map_err(|e| TlsError::Io(ca_path.to_owned(), e))?;

    let ca_key = KeyPair::generate().map_err(TlsError::Generate)?;
    let mut ca_params = CertificateParams::default();
    let mut ca_name = DistinguishedName::new();
    ca_name.push(
        DnType::CommonName,
        format!("Consentry local development CA {suffix}"),
    );
    ca_name.push(
        DnType::OrganizationName,
        "Consentry collector (development)",
    );
    ca_params.distinguished_name = ca_name;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = not_before;
    ca_params.not_after = not_after;
    let ca = ca_params.self_signed(&ca_key).map_err(TlsError::Generate)?;

    let leaf_key = KeyPair::generate().map_err(TlsError::Generate)?;
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned()]).map_err(TlsError::Generate)?;
    leaf_params.subject_alt_names.extend([
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ]);
    let mut leaf_name = DistinguishedName::new();
    leaf_name.push(DnType::CommonName, "localhost");
    leaf_params.distinguished_name = leaf_name;
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.not_before = not_before;
    leaf_params.not_after = not_after;
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca, &ca_key)
        .map_err(TlsError::Generate)?;
    drop(ca_key);

    write_private(key_path, leaf_key.serialize_pem().as_bytes())
        .map_err(|e| TlsError::Io(key_path.to_owned(), e))?;
    fs::write(cert_path, leaf.pem()).map_err(|e| TlsError::Io(cert_path.to_owned(), e))?;
    fs::write(ca_path, ca.pem()).map_err(|e| TlsError::Io(ca_path.to_owned(), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_ca_is_created_once_and_its_pin_matches_the_leaf_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = local(dir.path()).unwrap();
        assert_eq!(first.local_ca, Some(LocalCa::Created));
        let second = local(dir.path()).unwrap();
        assert_eq!(second.local_ca, Some(LocalCa::Reused));
        assert_eq!(first.spki_pin, second.spki_pin);
        let written = fs::read_to_string(dir.path().join(SPKI_FILE)).unwrap();
        assert_eq!(written.trim(), first.spki_pin);
        // The pin is the hash of the key's SubjectPublicKeyInfo.
        let key =
            KeyPair::from_pem(&fs::read_to_string(dir.path().join(KEY_FILE)).unwrap()).unwrap();
        let expected =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(key.public_key_der()));
        assert_eq!(first.spki_pin, expected);
        assert_eq!(first.spki_pin.len(), 44);
    }
}
