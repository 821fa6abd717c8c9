//! Test support: a collector on a loopback port with a temporary data directory, requests to it,
//! and batches built from the golden fixture.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod binary;
pub mod client;
pub mod dsr;
pub mod store;

use client::{Connection, Reply, TlsClient};
use consentry_collector::config::{Settings, Transport};
use consentry_collector::keys::{AdminToken, ApiKeys};
use consentry_collector::network::Rate;
use consentry_collector::origin::{Origin, OriginPolicy};
use consentry_collector::server::{self, Running};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::http::{Method, Request};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;

/// The fixture's API key, configured for environment `demo`.
pub const API_KEY: &str = "pk_demo";
/// The admin token of test servers.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// An origin allowed to send batches.
pub const SHOP: &str = "https://shop.example";
/// An origin allowed to call the admin API.
pub const INSPECTOR: &str = "https://inspector.example";
/// The golden fixture.
pub const FIXTURE: &str = include_str!("../../../schema/v1/fixtures/batch-analytics.json");

/// The golden fixture of a batch sent before the visitor's first choice: an essential event
/// with no anonymous id and no user id.
pub const BEFORE_CHOICE_FIXTURE: &str =
    include_str!("../../../schema/v1/fixtures/batch-before-choice.json");

/// The fixture as JSON.
pub fn fixture() -> Value {
    serde_json::from_str(FIXTURE).unwrap()
}

/// The before-choice fixture as JSON.
pub fn before_choice_fixture() -> Value {
    serde_json::from_str(BEFORE_CHOICE_FIXTURE).unwrap()
}

/// A deterministic version 4 UUID.
pub fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// A track event needing `purposes`.
pub fn track(id: &str, purposes: &[&str]) -> Value {
    json!({
        "id": id,
        "type": "track",
        "name": "Clicked",
        "timestamp_unixtime_ms": 1_763_800_002_000u64,
        "purposes": purposes,
        "anonymous_id": "5a6b7c8d-9e0f-4a1b-9c3d-4e5f6a7b8c9d",
        "properties": {"n": 1}
    })
}

/// The fixture's envelope (consent: necessary and analytics granted, advertising denied) with
/// these events.
pub fn batch_of(events: Vec<Value>) -> Value {
    let mut batch = fixture();
    batch["events"] = Value::Array(events);
    batch
}

/// Settings for a test server in `dir`: plain HTTP on loopback, key `demo=pk_demo`, origin
/// [`SHOP`] for ingestion, [`INSPECTOR`] for the admin API, sale purpose `advertising`, fault
/// injection on, a data key generated in `dir`, no rate limits.
pub fn settings(dir: &Path) -> Settings {
    let keys = ApiKeys::new(vec!["demo=pk_demo".parse().unwrap()]).unwrap();
    let mut settings = Settings::new("127.0.0.1:0".parse().unwrap(), dir.to_owned(), keys);
    settings.transport = Transport::PlainHttp;
    settings.store = Some(store::location(dir));
    settings.ingest_origins = OriginPolicy::new(vec![Origin::parse(SHOP).unwrap()], false);
    settings.admin_origins = OriginPolicy::new(vec![Origin::parse(INSPECTOR).unwrap()], false);
    settings.admin_token = Some(AdminToken::new(ADMIN_TOKEN).unwrap());
    settings.sale_purposes = vec!["advertising".to_owned()];
    settings.fault_injection = true;
    // Tests send bursts from one address; the rate-limit tests set their own limits.
    settings.ip_rate = Rate {
        per_minute: 0,
        burst: 0,
    };
    settings.key_rate = Rate {
        per_minute: 0,
        burst: 0,
    };
    // The route-table test presents many bad tokens on purpose; the throttle test sets its own.
    settings.auth_failure_rate = Rate {
        per_minute: 0,
        burst: 0,
    };
    settings
}

/// Sends one request to `addr` on a new connection; `Err` if it closed without a response.
pub async fn try_send_to(
    addr: SocketAddr,
    tls: Option<&TlsClient>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Reply, hyper::Error> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into())).unwrap();
    let mut connection = Connection::open(addr, tls).await.unwrap();
    connection.send(request).await
}

/// A request with `Authorization: Bearer <token>` to `addr` (plain HTTP).
pub async fn bearer_to(
    addr: SocketAddr,
    token: &str,
    method: Method,
    path: &str,
    body: &str,
) -> Reply {
    let bearer = format!("Bearer {token}");
    try_send_to(
        addr,
        None,
        method,
        path,
        &[
            ("authorization", &bearer),
            ("content-type", "application/json"),
        ],
        body.to_owned(),
    )
    .await
    .unwrap()
}

/// A running collector on a temporary data directory.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// TLS client settings, when it serves TLS.
    pub tls: Option<TlsClient>,
    /// The data directory (deleted on drop).
    pub dir: tempfile::TempDir,
    running: Option<Running>,
}

impl TestServer {
    /// A server with [`settings`].
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server with [`settings`] changed by `customize`.
    pub async fn start_with(customize: impl FnOnce(&mut Settings)) -> TestServer {
        TestServer::start_in(tempfile::tempdir().unwrap(), customize).await
    }

    /// A server with [`settings`] changed by `customize`, on an existing data directory.
    pub async fn start_in(
        dir: tempfile::TempDir,
        customize: impl FnOnce(&mut Settings),
    ) -> TestServer {
        let mut settings = settings(dir.path());
        customize(&mut settings);
        let running = server::start(settings).await.unwrap();
        TestServer {
            addr: running.local_addr,
            tls: None,
            dir,
            running: Some(running),
        }
    }

    /// Sends one request on a new connection; `Err` if the connection closed without a response.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Reply, hyper::Error> {
        try_send_to(self.addr, self.tls.as_ref(), method, path, headers, body).await
    }

    /// The routes the server registered.
    pub fn routes(&self) -> &[consentry_collector::api::routes::RouteInfo] {
        &self.running.as_ref().unwrap().routes
    }

    /// Sends one request and expects a response.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.try_send(method, path, headers, body).await.unwrap()
    }

    /// Posts `batch` as `fetch` does: `text/plain;charset=UTF-8`, plus `headers`.
    pub async fn post_batch_with(&self, batch: &Value, headers: &[(&str, &str)]) -> Reply {
        let mut all = vec![("content-type", "text/plain;charset=UTF-8")];
        all.extend_from_slice(headers);
        self.send(Method::POST, "/v1/batch", &all, batch.to_string())
            .await
    }

    /// Posts `batch` as `fetch` does.
    pub async fn post_batch(&self, batch: &Value) -> Reply {
        self.post_batch_with(batch, &[]).await
    }

    /// An admin API request with the right token.
    pub async fn admin(&self, method: Method, path: &str, body: &str) -> Reply {
        self.bearer(ADMIN_TOKEN, method, path, body).await
    }

    /// A read/admin API request with `token`.
    pub async fn bearer(&self, token: &str, method: Method, path: &str, body: &str) -> Reply {
        let bearer = format!("Bearer {token}");
        self.send(
            method,
            path,
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            body.to_owned(),
        )
        .await
    }

    /// Makes a token with `role` through the API; returns its id and secret.
    pub async fn token(&self, role: &str, name: &str) -> (String, String) {
        let reply = self
            .admin(
                Method::POST,
                "/v1/tokens",
                &json!({"name": name, "role": role}).to_string(),
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        let body = reply.json();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Every stored event, oldest first.
    pub async fn events(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut since = 0;
        loop {
            let reply = self
                .admin(
                    Method::GET,
                    &format!("/v1/events?since={since}&limit=1000"),
                    "",
                )
                .await;
            assert_eq!(reply.status, 200, "{reply:?}");
            let page = reply.json();
            let events = page["events"].as_array().unwrap().clone();
            // A page may stop short of the limit at its content budget: the end is an empty page.
            if events.is_empty() {
                return all;
            }
            all.extend(events);
            since = page["next_since"].as_i64().unwrap();
        }
    }

    /// `GET /v1/stats`.
    pub async fn stats(&self) -> Value {
        let reply = self.admin(Method::GET, "/v1/stats", "").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.json()
    }

    /// Shuts down gracefully and keeps the data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(running) = self.running.take() {
            running.shutdown().await.unwrap();
        }
        self.dir
    }
}
