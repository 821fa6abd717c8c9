//! The processor's signing key and certificate (OpenDSR sections 4 and 7.3): every OpenDSR
//! response and status callback carries `X-OpenDSR-Signature`, the base64 ECDSA P-256
//! signature (ASN.1 DER, FIPS 186-4) of the SHA-256 digest of the exact body bytes, made with
//! the key of the certificate published at the URL discovery names.
//!
//! Production: `--dsr-signing-cert` and `--dsr-signing-key` (a certificate for
//! `--dsr-processor-domain` from a trusted CA, as the spec requires; ECDSA P-256, PKCS#8).
//! Without them (development, tests) a certificate for the domain is made once in the data
//! directory (`dsr-signing-cert.pem`, `dsr-signing-key.pem`), issued by a one-off local CA
//! (`dsr-signing-ca.pem`) whose key is discarded at once, so it is not self-signed, but only
//! those who trust that CA file trust it.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivatePkcs8KeyDer;
use std::fmt;
use std::path::{Path, PathBuf};

/// The generated signing certificate (leaf, then its CA).
pub const CERT_FILE: &str = "dsr-signing-cert.pem";
/// The generated signing key (mode 0600).
pub const KEY_FILE: &str = "dsr-signing-key.pem";
/// The one-off CA that issued the generated certificate.
pub const CA_FILE: &str = "dsr-signing-ca.pem";

/// Signs OpenDSR bodies.
pub struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    certificate_pem: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(…)")
    }
}

impl Signer {
    /// The operator's certificate and key, or the generated ones in `dir` (made on first use).
    pub fn load(
        dir: &Path,
        given: Option<&(PathBuf, PathBuf)>,
        domain: &str,
    ) -> Result<Signer, String> {
        let (cert_path, key_path) = match given {
            Some((cert, key)) => (cert.clone(), key.clone()),
            None => {
                let cert = dir.join(CERT_FILE);
                let key = dir.join(KEY_FILE);
                if !cert.exists() || !key.exists() {
                    generate(dir, domain)?;
                }
                (cert, key)
            }
        };
        let certificate_pem = std::fs::read_to_string(&cert_path)
            .map_err(|e| format!("{}: {e}", cert_path.display()))?;
        let key_pem =
            std::fs::read(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(&key_pem)
            .map_err(|e| format!("{}: not a PKCS#8 PEM key: {e}", key_path.display()))?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            der.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| format!("{}: not an ECDSA P-256 key: {e}", key_path.display()))?;
        Ok(Signer {
            key,
            rng,
            certificate_pem,
        })
    }

    /// The base64 signature of `body`.
    pub fn sign(&self, body: &[u8]) -> Result<String, String> {
        let signature = self
            .key
            .sign(&self.rng, body)
            .map_err(|_| "cannot sign".to_owned())?;
        Ok(base64::engine::general_purpose::STANDARD.encode(signature.as_ref()))
    }

    /// The certificate chain, PEM, as published.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }
}

fn generate(dir: &Path, domain: &str) -> Result<(), String> {
    let fail = |e: rcgen::Error| format!("cannot make the DSR signing certificate: {e}");
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca_params = CertificateParams::default();
    let mut ca_name = DistinguishedName::new();
    ca_name.push(DnType::CommonName, "Consentry local OpenDSR signing CA");
    ca_params.distinguished_name = ca_name;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).map_err(fail)?;
    let key = KeyPair::generate().map_err(fail)?;
    let mut params = CertificateParams::new(vec![domain.to_owned()]).map_err(fail)?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, domain);
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let leaf = params.signed_by(&key, &ca, &ca_key).map_err(fail)?;
    drop(ca_key);
    let io = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
    let key_path = dir.join(KEY_FILE);
    write_private(&key_path, key.serialize_pem().as_bytes()).map_err(|e| io(&key_path, e))?;
    let cert_path = dir.join(CERT_FILE);
    std::fs::write(&cert_path, format!("{}{}", leaf.pem(), ca.pem()))
        .map_err(|e| io(&cert_path, e))?;
    let ca_path = dir.join(CA_FILE);
    std::fs::write(&ca_path, ca.pem()).map_err(|e| io(&ca_path, e))?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};

    #[test]
    fn a_signature_verifies_with_the_published_certificate_and_not_for_another_body() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::load(dir.path(), None, "localhost").unwrap();
        let again = Signer::load(dir.path(), None, "localhost").unwrap();
        assert_eq!(signer.certificate_pem(), again.certificate_pem());
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signer.sign(b"{\"a\":1}").unwrap())
            .unwrap();
        let pem =
            rustls::pki_types::CertificateDer::pem_slice_iter(signer.certificate_pem().as_bytes())
                .next()
                .unwrap()
                .unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&pem).unwrap();
        let public = cert.public_key().subject_public_key.data.to_vec();
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public);
        assert!(key.verify(b"{\"a\":1}", &signature).is_ok());
        assert!(key.verify(b"{\"a\":2}", &signature).is_err());
        assert_ne!(cert.issuer(), cert.subject(), "not self-signed");
    }
}
