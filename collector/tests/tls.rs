//! Real TLS with the generated local CA (and with operator certificate files), and the refusal
//! of plain HTTP off loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use consentry_collector::config::{ConfigError, Transport};
use consentry_collector::server::{self, StartError};
use consentry_collector::tls::{self, LocalCa};
use hyper::http::Method;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use support::client::TlsClient;
use support::{fixture, TestServer};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The SPKI pin of the certificate the server presents, read off a real handshake.
async fn presented_pin(server: &TestServer, client: &TlsClient) -> String {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let stream = TlsConnector::from(Arc::clone(&client.config))
        .connect(client.server_name.clone(), tcp)
        .await
        .unwrap();
    let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    tls::spki_pin(&leaf).unwrap()
}

#[tokio::test]
async fn serves_https_with_the_generated_local_ca_and_reuses_it() {
    let mut server = TestServer::start_with(|s| s.transport = Transport::TlsLocalCa).await;
    let dir = server.dir.path().to_owned();
    for file in ["ca.pem", "cert.pem", "key.pem", "spki.txt"] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    let pin = std::fs::read_to_string(dir.join("spki.txt"))
        .unwrap()
        .trim()
        .to_owned();

    for name in ["localhost", "127.0.0.1"] {
        let client = TlsClient::trusting(&dir.join("ca.pem"), name).unwrap();
        assert_eq!(presented_pin(&server, &client).await, pin, "{name}");
        server.tls = Some(client);
        let health = server.send(Method::GET, "/healthz", &[], "").await;
        assert_eq!(health.status, 200);
    }
    let reply = server.post_batch(&fixture()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["stored"], 4);

    // A client that trusts another CA refuses the connection.
    let other = tempfile::tempdir().unwrap();
    tls::local(other.path()).unwrap();
    let stranger = TlsClient::trusting(&other.path().join("ca.pem"), "localhost").unwrap();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let handshake = TlsConnector::from(Arc::clone(&stranger.config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    assert!(handshake.is_err());

    // The next start reuses the CA and certificate, and the stored data.
    let dir = server.stop().await;
    let mut again = TestServer::start_in(dir, |s| s.transport = Transport::TlsLocalCa).await;
    let client = TlsClient::trusting(&again.dir.path().join("ca.pem"), "localhost").unwrap();
    assert_eq!(presented_pin(&again, &client).await, pin);
    again.tls = Some(client);
    assert_eq!(again.stats().await["events"], 4);
    again.stop().await;
}

#[tokio::test]
async fn the_start_reports_whether_the_local_ca_was_created() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = support::settings(dir.path());
    settings.transport = Transport::TlsLocalCa;
    let first = server::start(settings.clone()).await.unwrap();
    assert_eq!(first.local_ca, Some(LocalCa::Created));
    assert!(first.url.starts_with("https://127.0.0.1:"));
    let pin = first.spki_pin.clone().unwrap();
    first.shutdown().await.unwrap();
    let second = server::start(settings).await.unwrap();
    assert_eq!(second.local_ca, Some(LocalCa::Reused));
    assert_eq!(second.spki_pin, Some(pin));
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn serves_https_with_operator_certificate_files() {
    let certs = tempfile::tempdir().unwrap();
    let made = tls::local(certs.path()).unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let mut server =
        TestServer::start_with(|s| s.transport = Transport::TlsFiles { cert, key }).await;
    assert!(
        !server.dir.path().join("ca.pem").exists(),
        "no local CA when files are given"
    );
    let client = TlsClient::trusting(&certs.path().join("ca.pem"), "localhost").unwrap();
    assert_eq!(presented_pin(&server, &client).await, made.spki_pin);
    server.tls = Some(client);
    assert_eq!(server.post_batch(&fixture()).await.status, 200);

    let missing = {
        let mut s = support::settings(server.dir.path());
        s.transport = Transport::TlsFiles {
            cert: certs.path().join("absent.pem"),
            key: certs.path().join("key.pem"),
        };
        server::start(s).await
    };
    assert!(matches!(missing, Err(StartError::Tls(_))));
}

#[tokio::test]
async fn plain_http_off_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = support::settings(dir.path());
    settings.transport = Transport::PlainHttp;
    settings.listen = "0.0.0.0:0".parse().unwrap();
    let error = server::start(settings).await.unwrap_err();
    assert!(
        matches!(
            error,
            StartError::Config(ConfigError::PlainHttpNotLoopback(_))
        ),
        "{error}"
    );
    assert!(
        !dir.path().join("collector.sqlite3").exists(),
        "refused before anything"
    );
}

#[test]
fn the_binary_refuses_plain_http_off_loopback_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_consentry-collector"))
        .args([
            "--plain-http",
            "--generate-encryption-key",
            "--listen",
            "0.0.0.0:0",
            "--api-key",
            "demo=pk_demo",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("CONSENTRY_API_KEYS")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing plain HTTP on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(stderr.contains("loopback"), "{stderr}");
}
