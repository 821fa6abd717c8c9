//! Connection hygiene, tried as a hostile client would: silent connections after the TLS
//! handshake, too many connections, stalled bodies on HTTP/1.1 and HTTP/2, idle and old HTTP/2
//! connections, and early answers on keep-alive connections. Each test holds the hostile
//! connections while a normal client is served, and prints that client's latency (not asserted:
//! timings on a shared machine are noise).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use consentry_collector::config::Transport;
use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame};
use hyper::http::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use support::client::{Connection, TlsClient};
use support::{fixture, TestServer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const MIB: usize = 1024 * 1024;

/// Waits (bounded) until the peer closes `stream`; returns how long that took.
async fn closed_within<S: AsyncRead + Unpin>(stream: &mut S, bound: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(bound, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server kept the connection open for {bound:?}"),
        }
    }
}

async fn tls_server(
    customize: impl FnOnce(&mut consentry_collector::config::Settings),
) -> TestServer {
    let mut server = TestServer::start_with(|s| {
        s.transport = Transport::TlsLocalCa;
        customize(s);
    })
    .await;
    server.tls = Some(TlsClient::trusting(&server.dir.path().join("ca.pem"), "localhost").unwrap());
    server
}

fn with_alpn(client: &TlsClient, alpn: &[u8]) -> TlsConnector {
    let mut config = (*client.config).clone();
    config.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// A normal batch on a new connection: must be stored; its latency goes to the test's log.
async fn normal_batch_is_served(server: &TestServer, while_what: &str) {
    let started = Instant::now();
    let reply = server.post_batch(&fixture()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    eprintln!(
        "normal batch while {while_what}: {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
}

#[tokio::test]
async fn silent_connections_after_the_tls_handshake_are_closed_and_others_are_served() {
    let server = tls_server(|s| {
        s.limits.header_timeout = Duration::from_millis(300);
        s.limits.idle_timeout = Duration::from_millis(300);
    })
    .await;
    let client = server.tls.clone().unwrap();
    let mut silent = Vec::new();
    for i in 0..40 {
        let alpn: &[u8] = if i % 2 == 0 { b"h2" } else { b"http/1.1" };
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let stream = with_alpn(&client, alpn)
            .connect(client.server_name.clone(), tcp)
            .await
            .unwrap();
        silent.push(stream);
    }
    normal_batch_is_served(&server, "40 silent TLS connections are open").await;
    let mut slowest = Duration::ZERO;
    for stream in &mut silent {
        slowest = slowest.max(closed_within(stream, Duration::from_secs(10)).await);
    }
    eprintln!("all 40 silent connections closed; the last after {slowest:?}");
}

#[tokio::test]
async fn one_connection_over_the_cap_is_closed_and_places_free_up_as_idle_ones_close() {
    let server = TestServer::start_with(|s| {
        s.limits.max_connections = 4;
        s.limits.header_timeout = Duration::from_millis(500);
        s.limits.idle_timeout = Duration::from_millis(500);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let mut over = TcpStream::connect(server.addr).await.unwrap();
    let _ = over
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), over.read_to_end(&mut answer)).await;
    assert!(answer.is_empty(), "served over the cap: {answer:?}");
    for stream in &mut held {
        closed_within(stream, Duration::from_secs(10)).await;
    }
    normal_batch_is_served(&server, "the idle connections over the cap were closed").await;
}

/// Writes headers declaring a 1 MiB batch and `sent` bytes of it, then stalls.
async fn stalled_http1_body(server: &TestServer, sent: usize) -> TcpStream {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/batch HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: {MIB}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&vec![b' '; sent]).await.unwrap();
    tcp
}

/// Reads an HTTP/1.1 answer's head (bounded).
async fn answer_head(tcp: &mut TcpStream, bound: Duration) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = bound.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            other => panic!("no answer: {other:?} after {:?}", started.elapsed()),
        }
    }
    String::from_utf8_lossy(&head).to_lowercase()
}

#[tokio::test]
async fn stalled_http1_bodies_are_capped_in_memory_and_cut_at_the_deadline() {
    let server = TestServer::start_with(|s| {
        s.limits.max_body_memory = 4 * MIB + MIB / 2;
        s.limits.max_body_memory_per_client = Some(4 * MIB + MIB / 2);
        s.limits.request_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(stalled_http1_body(&server, 512 * 1024).await);
    }
    // Let the four reserve their memory before more arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = stalled_http1_body(&server, 512 * 1024).await;
    let head = answer_head(&mut over, Duration::from_secs(5)).await;
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(
        head.contains("connection: close") && head.contains("retry-after"),
        "{head}"
    );
    normal_batch_is_served(&server, "4 bodies of 1 MiB are stalled half-way").await;
    for tcp in &mut stalled {
        let head = answer_head(tcp, Duration::from_secs(10)).await;
        assert!(head.starts_with("http/1.1 408"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
    }
    normal_batch_is_served(&server, "the stalled bodies were cut").await;
}

#[tokio::test]
async fn one_address_holds_only_its_share_of_body_memory_and_bodies_that_stop_are_cut() {
    let server = TestServer::start_with(|s| {
        s.limits.max_body_memory = 8 * MIB;
        s.limits.max_body_memory_per_client = Some(2 * MIB);
        s.limits.body_idle_timeout = Duration::from_millis(500);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(stalled_http1_body(&server, 512 * 1024).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = stalled_http1_body(&server, 1024).await;
    let head = answer_head(&mut third, Duration::from_secs(5)).await;
    assert!(
        head.starts_with("http/1.1 503"),
        "the address's share is spent: {head}"
    );

    // Another address is served while the first one's bodies are stalled.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = socket.connect(server.addr).await.unwrap();
    let body = fixture().to_string();
    let started = Instant::now();
    other
        .write_all(
            format!(
                "POST /v1/batch HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let head = answer_head(&mut other, Duration::from_secs(5)).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    eprintln!(
        "normal batch from another address while one address's share is spent: {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    // A body that stops arriving is cut after the idle gap, well before the request deadline.
    for tcp in &mut held {
        let head = answer_head(tcp, Duration::from_secs(10)).await;
        assert!(head.starts_with("http/1.1 408"), "{head}");
    }
}

/// A request body that sends one chunk and then never another.
struct Stall(Option<Bytes>);

impl Body for Stall {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.0.take() {
            Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            None => Poll::Pending,
        }
    }
}

async fn h2_connection<B>(
    server: &TestServer,
) -> (
    hyper::client::conn::http2::SendRequest<B>,
    tokio::task::JoinHandle<()>,
)
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let client = server.tls.clone().unwrap();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let stream = with_alpn(&client, b"h2")
        .connect(client.server_name.clone(), tcp)
        .await
        .unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (sender, task)
}

#[tokio::test]
async fn one_http2_connection_with_many_stalled_streams_is_capped_too() {
    let server = tls_server(|s| {
        s.limits.max_body_memory = 4 * MIB + MIB / 2;
        s.limits.max_body_memory_per_client = Some(4 * MIB + MIB / 2);
        s.limits.request_timeout = Duration::from_secs(1);
    })
    .await;
    let (sender, _connection) = h2_connection::<Stall>(&server).await;
    let mut streams = Vec::new();
    for _ in 0..50 {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("https://localhost:{}/v1/batch", server.addr.port()))
            .header("content-type", "text/plain")
            .header("content-length", MIB.to_string())
            .body(Stall(Some(Bytes::from(vec![b' '; 16 * 1024]))))
            .unwrap();
        let mut sender = sender.clone();
        streams.push(tokio::spawn(async move {
            let started = Instant::now();
            let response = sender.send_request(request).await.unwrap();
            (response.status().as_u16(), started.elapsed())
        }));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    normal_batch_is_served(&server, "50 streams of one HTTP/2 connection are stalled").await;
    let mut statuses = Vec::new();
    for stream in streams {
        let (status, took) = tokio::time::timeout(Duration::from_secs(10), stream)
            .await
            .unwrap()
            .unwrap();
        statuses.push((status, took));
    }
    let cut = statuses.iter().filter(|(s, _)| *s == 408).count();
    let refused = statuses.iter().filter(|(s, _)| *s == 503).count();
    assert_eq!(cut + refused, 50, "{statuses:?}");
    assert!(
        cut <= 4,
        "at most 4 bodies of 1 MiB fit 4.5 MiB: {statuses:?}"
    );
    eprintln!(
        "HTTP/2 stalled streams: {cut} cut at the deadline (408), {refused} refused at once (503)"
    );
}

#[tokio::test]
async fn idle_http2_connections_are_closed() {
    let server = tls_server(|s| s.limits.idle_timeout = Duration::from_millis(300)).await;
    let (mut sender, connection) = h2_connection::<http_body_util::Empty<Bytes>>(&server).await;
    let request = Request::get(format!("https://localhost:{}/healthz", server.addr.port()))
        .body(http_body_util::Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), connection)
        .await
        .expect("the idle HTTP/2 connection is closed")
        .unwrap();
    eprintln!(
        "idle HTTP/2 connection closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_busy_connection_is_closed_gracefully_at_its_maximum_age() {
    let server = tls_server(|s| s.limits.max_age = Duration::from_millis(500)).await;
    let (mut sender, connection) = h2_connection::<http_body_util::Empty<Bytes>>(&server).await;
    let started = Instant::now();
    let mut answered = 0;
    while started.elapsed() < Duration::from_secs(10) && !connection.is_finished() {
        let request = Request::get(format!("https://localhost:{}/healthz", server.addr.port()))
            .body(http_body_util::Empty::new())
            .unwrap();
        match sender.send_request(request).await {
            Ok(response) => {
                assert_eq!(response.status(), 200);
                let _ = response.into_body().collect().await;
                answered += 1;
            }
            Err(_) => break,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("the old connection is closed")
        .unwrap();
    assert!(answered > 0);
    eprintln!(
        "busy HTTP/2 connection closed at {:?} after {answered} requests",
        started.elapsed()
    );
}

#[tokio::test]
async fn early_answers_on_keep_alive_connections_arrive_with_connection_close() {
    let server = TestServer::start().await;
    let big = vec![b' '; 900 * 1024];
    for (headers, body, status) in [
        (
            vec![
                ("origin", "https://evil.example"),
                ("content-type", "text/plain"),
            ],
            big.clone(),
            403,
        ),
        (vec![("content-type", "image/png")], big.clone(), 415),
        (
            vec![("content-type", "text/plain")],
            vec![b' '; 2 * MIB],
            413,
        ),
    ] {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/v1/batch")
            .header("host", server.addr.to_string());
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(http_body_util::Full::new(Bytes::from(body)))
            .unwrap();
        let mut connection = Connection::open(server.addr, None).await.unwrap();
        let reply = connection
            .send(request)
            .await
            .expect("the status, not a network error");
        assert_eq!(reply.status, status, "{headers:?}");
        assert_eq!(reply.header("connection"), Some("close"), "{headers:?}");
    }
    // A request whose body was read keeps its connection.
    let mut connection = Connection::open(server.addr, None).await.unwrap();
    for _ in 0..2 {
        let request = Request::get("/healthz")
            .header("host", server.addr.to_string())
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        let reply = connection.send(request).await.unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("connection"), None);
    }
}

/// A request on a new connection from `source`, as raw HTTP/1.1; what came back (empty if the
/// server closed the connection without answering).
async fn healthz_from(server: &TestServer, source: &str) -> Vec<u8> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut tcp = socket.connect(server.addr).await.unwrap();
    let _ = tcp
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    answer
}

#[tokio::test]
async fn one_address_holds_only_its_share_of_connections_and_others_are_served() {
    let server = TestServer::start_with(|s| {
        s.limits.max_connections = 100;
        s.limits.max_connections_per_address = 3;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let over = healthz_from(&server, "127.0.0.1").await;
    assert!(over.is_empty(), "served over the address's share: {over:?}");
    let other = healthz_from(&server, "127.0.0.2").await;
    assert!(
        other.starts_with(b"HTTP/1.1 200"),
        "another address is served: {:?}",
        String::from_utf8_lossy(&other)
    );
    drop(held.pop());
    // The server sees the close on its own schedule: try until the place is back (bounded).
    let mut served = false;
    for _ in 0..50 {
        if healthz_from(&server, "127.0.0.1")
            .await
            .starts_with(b"HTTP/1.1 200")
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a closed connection gives its place back");
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reply = server.admin(Method::GET, "/metrics", "").await;
    let metrics = String::from_utf8_lossy(&reply.body);
    assert!(
        metrics.lines().any(|l| l
            .starts_with("consentry_connections_refused_total{cap=\"address\"}")
            && !l.ends_with(" 0")),
        "{metrics}"
    );
}
