//! For the data-subject tests: a status-callback receiver (plain HTTP on loopback) that keeps
//! every request, answers a scripted status, and a verifier of OpenDSR signatures with the
//! certificate the collector publishes.

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::http::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// One callback received.
#[derive(Clone, Debug)]
pub struct Received {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its exact body.
    pub body: Bytes,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }
}

/// A callback receiver.
#[derive(Clone)]
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    https: bool,
}

impl Receiver {
    /// Listens on a loopback port; answers `script`'s statuses in order, then 202.
    pub async fn start(script: &[u16]) -> Receiver {
        Receiver::start_with(script, None).await
    }

    /// The same over TLS, with a certificate for 127.0.0.1 from a fresh CA; returns the CA
    /// (PEM) too.
    pub async fn start_tls(script: &[u16]) -> (Receiver, String) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let leaf = params.signed_by(&key, &ca, &ca_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        (Receiver::start_with(script, Some(acceptor)).await, ca.pem())
    }

    async fn start_with(script: &[u16], tls: Option<tokio_rustls::TlsAcceptor>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            addr: listener.local_addr().unwrap(),
            received: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            https: tls.is_some(),
        };
        let serving = receiver.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let serving = serving.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serving.serve(TokioIo::new(stream)).await;
                            }
                        }
                        None => serving.serve(TokioIo::new(tcp)).await,
                    }
                });
            }
        });
        receiver
    }

    async fn serve<I>(self, io: TokioIo<I>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let serving = self.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = body.collect().await?.to_bytes();
                serving.received.lock().unwrap().push(Received {
                    headers: parts.headers,
                    body,
                });
                let status = serving.script.lock().unwrap().pop_front().unwrap_or(202);
                Ok::<_, hyper::Error>(
                    Response::builder()
                        .status(StatusCode::from_u16(status).unwrap())
                        .body(Full::new(Bytes::new()))
                        .unwrap(),
                )
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await;
    }

    /// Its callback URL.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}/opendsr/callbacks", self.addr)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Verifies OpenDSR signatures with a published certificate (its first, the leaf).
pub struct Verifier {
    key: Vec<u8>,
    /// The leaf's subject alternative DNS names.
    pub names: Vec<String>,
}

impl Verifier {
    /// From the PEM the collector serves at `processor_certificate`.
    pub fn from_pem(pem: &[u8]) -> Verifier {
        let der = CertificateDer::pem_slice_iter(pem).next().unwrap().unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let names = cert
            .subject_alternative_name()
            .unwrap()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Verifier {
            key: cert.public_key().subject_public_key.data.to_vec(),
            names,
        }
    }

    /// Whether `signature` (base64) signs `body`.
    pub fn verifies(&self, body: &[u8], signature: &str) -> bool {
        let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature) else {
            return false;
        };
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.key)
            .verify(body, &signature)
            .is_ok()
    }
}
