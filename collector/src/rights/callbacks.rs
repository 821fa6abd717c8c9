//! Status callbacks (OpenDSR sections 8.5 to 8.8): the sender delivers the outbox's due
//! callbacks, each body signed (`X-OpenDSR-Signature`, and the prior name
//! `X-OpenGDPR-Signature` as section 10.1 asks), to `https` URLs verified against the system's
//! roots and `--dsr-callback-ca` certificates, or to loopback `http` URLs with
//! `--dsr-allow-loopback-http-callbacks`. A 2xx answer delivers it; anything else (another
//! status, a refused connection, a bad certificate, 10 s without an answer) is recorded and
//! retried after `--dsr-callback-backoff-ms` doubled per attempt (at most an hour), until
//! `--dsr-callback-attempts` are spent; then it is `failed` and counted.

use crate::api::App;
use crate::store::StoreError;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::http::{Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The longest a callback may take, connection included.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest wait between attempts.
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// The longest callback URL.
pub const MAX_URL_CHARS: usize = 2048;

/// Where the system's CA bundle may be (the first that reads is used).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The TLS client of callbacks: the system's roots (`SSL_CERT_FILE` or the usual bundle) and
/// every certificate in `extra`.
pub fn tls_config(extra: &[PathBuf]) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    let system: Vec<PathBuf> = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .collect();
    if let Some(bundle) = system.iter().find(|p| p.is_file()) {
        if let Ok(certs) = CertificateDer::pem_file_iter(bundle) {
            roots.add_parsable_certificates(certs.filter_map(Result::ok));
        }
    }
    for path in extra {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("--dsr-callback-ca {}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("--dsr-callback-ca {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("--dsr-callback-ca {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks a callback URL: absolute `https` with a host, or `http` to a loopback host when
/// allowed; at most [`MAX_URL_CHARS`].
pub fn check_url(url: &str, allow_loopback_http: bool) -> Result<(), &'static str> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err("is longer than 2048 characters");
    }
    let uri: Uri = url.parse().map_err(|_| "is not a URL")?;
    let host = uri.host().ok_or("has no host")?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if allow_loopback_http && is_loopback(host) => Ok(()),
        Some("http") => {
            Err("must be https (http only to loopback with --dsr-allow-loopback-http-callbacks)")
        }
        _ => Err("must be an https URL"),
    }
}

/// Sends every due callback once; how many were attempted.
pub async fn step(app: &App) -> Result<usize, StoreError> {
    let rights = &app.rights;
    let now = rights.clock.now_ms();
    let due = app.store.due_callbacks(now, 16).await?;
    let settings = &rights.settings;
    for callback in &due {
        let outcome = match check_url(&callback.url, settings.allow_loopback_http_callbacks) {
            Err(why) => Err(format!("refused: {why}")),
            Ok(()) => match rights.signer.sign(callback.body.as_bytes()) {
                Ok(signature) => post(app, &callback.url, callback.body.clone(), &signature).await,
                Err(e) => Err(e),
            },
        };
        let at = rights.clock.now_ms();
        let (delivered, text) = match &outcome {
            Ok(status) if (200..300).contains(status) => (true, status.to_string()),
            Ok(status) => (false, status.to_string()),
            Err(e) => (false, e.clone()),
        };
        let attempts = callback.attempts + 1;
        let retry_at = if delivered || attempts >= i64::from(settings.callback_attempts) {
            None
        } else {
            let base = i64::try_from(settings.callback_backoff.as_millis()).unwrap_or(i64::MAX);
            let shift = u32::try_from(attempts - 1).unwrap_or(30).min(30);
            Some(at.saturating_add(base.saturating_mul(1 << shift).min(MAX_BACKOFF_MS)))
        };
        let label = match (delivered, retry_at) {
            (true, _) => "delivered",
            (false, Some(_)) => "retry",
            (false, None) => "failed",
        };
        app.metrics
            .dsr_callback_attempts
            .with_label_values(&[label])
            .inc();
        if !delivered {
            app.metrics.dsr_callback_failures.inc();
            tracing::warn!(request_id = %callback.request_id, outcome = %text, attempts, "status callback not delivered");
        }
        app.store
            .record_callback_attempt(callback.seq, at, text, delivered, retry_at)
            .await?;
    }
    Ok(due.len())
}

/// Serves until shutdown begins.
pub async fn run(app: Arc<App>) {
    let mut stopping = app.stopping.clone();
    loop {
        if *stopping.borrow() {
            return;
        }
        match step(&app).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "sending status callbacks failed"),
        }
        tokio::select! {
            () = app.rights.callbacks.notified() => {}
            () = tokio::time::sleep(app.rights.settings.poll_interval) => {}
            _ = stopping.changed() => return,
        }
    }
}

/// POSTs `body` to `url`, signed; the answer's status.
async fn post(app: &App, url: &str, body: String, signature: &str) -> Result<u16, String> {
    match tokio::time::timeout(CALLBACK_TIMEOUT, send(app, url, body, signature)).await {
        Ok(result) => result,
        Err(_) => Err("timed out".to_owned()),
    }
}

async fn send(app: &App, url: &str, body: String, signature: &str) -> Result<u16, String> {
    let uri: Uri = url.parse().map_err(|_| "not a URL".to_owned())?;
    let host = uri.host().ok_or("no host")?.to_owned();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let path = uri
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    let domain = &app.rights.settings.processor_domain;
    let authority = uri
        .authority()
        .map_or(host.clone(), |a| a.as_str().to_owned());
    let request = Request::post(path)
        .header("host", authority)
        .header("content-type", "application/json")
        .header("x-opendsr-processor-domain", domain)
        .header("x-opendsr-signature", signature)
        .header("x-opengdpr-processor-domain", domain)
        .header("x-opengdpr-signature", signature)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    if https {
        let name = ServerName::try_from(bare).map_err(|e| format!("server name: {e}"))?;
        let tls = TlsConnector::from(Arc::clone(&app.rights.tls))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        exchange(TokioIo::new(tls), request).await
    } else {
        exchange(TokioIo::new(tcp), request).await
    }
}

async fn exchange<I>(io: TokioIo<I>, request: Request<Full<Bytes>>) -> Result<u16, String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("http: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("http: {e}"))?;
    let status = response.status().as_u16();
    // The body is read (bounded by the timeout) and ignored.
    let _ = response.into_body().collect().await;
    Ok(status)
}
