//! CORS: grants only to configured origins, separately for ingestion and the admin API;
//! disallowed origins get 403 and no grant; requests without `Origin` pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hyper::http::Method;
use support::{fixture, TestServer, ADMIN_TOKEN, INSPECTOR, SHOP};

#[tokio::test]
async fn an_allowed_origin_gets_the_grant_and_retry_after_exposed() {
    let server = TestServer::start().await;
    let reply = server
        .post_batch_with(&fixture(), &[("origin", SHOP)])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some(SHOP));
    assert_eq!(
        reply.header("access-control-expose-headers"),
        Some("retry-after")
    );
    assert_eq!(reply.header("vary"), Some("origin"));

    // Errors carry the grant too, so the SDK can read their status.
    let mut bad = fixture();
    bad["version"] = 2.into();
    let reply = server.post_batch_with(&bad, &[("origin", SHOP)]).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("access-control-allow-origin"), Some(SHOP));
}

#[tokio::test]
async fn a_disallowed_origin_is_403_without_a_grant_and_nothing_is_stored() {
    let server = TestServer::start().await;
    for origin in [
        "https://evil.example",
        "null",
        "http://localhost:3000",
        INSPECTOR,
    ] {
        let reply = server
            .post_batch_with(&fixture(), &[("origin", origin)])
            .await;
        assert_eq!(reply.status, 403, "{origin}");
        assert_eq!(
            reply.header("access-control-allow-origin"),
            None,
            "{origin}"
        );
        assert_eq!(
            reply.header("access-control-expose-headers"),
            None,
            "{origin}"
        );
    }
    let stats = server.stats().await;
    assert_eq!(stats["events"], 0);
    assert_eq!(stats["rejected_requests"]["403"], 4);
}

#[tokio::test]
async fn requests_without_origin_are_served_without_a_grant() {
    let server = TestServer::start().await;
    let reply = server.post_batch(&fixture()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn preflights_are_answered_for_allowed_origins_only() {
    let server = TestServer::start().await;
    let preflight = |origin: &'static str| {
        let server = &server;
        async move {
            server
                .send(
                    Method::OPTIONS,
                    "/v1/batch",
                    &[
                        ("origin", origin),
                        ("access-control-request-method", "POST"),
                        ("access-control-request-headers", "content-type"),
                    ],
                    "",
                )
                .await
        }
    };
    let reply = preflight(SHOP).await;
    assert_eq!(
        reply.status, 200,
        "tower-http answers preflights 200, an ok status"
    );
    assert_eq!(reply.header("access-control-allow-origin"), Some(SHOP));
    assert!(reply
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert!(reply
        .header("access-control-allow-headers")
        .unwrap()
        .contains("content-type"));
    assert_eq!(reply.header("access-control-max-age"), Some("600"));

    let reply = preflight("https://evil.example").await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(reply.header("access-control-allow-methods"), None);
}

#[tokio::test]
async fn a_browser_preflight_for_a_gzip_body_is_granted() {
    // The SDK gzips bodies over 1 KiB with `Content-Encoding: gzip`, which makes the request a
    // preflighted one; Chromium asks for the headers in lower case, comma-separated.
    let server = TestServer::start().await;
    let reply = server
        .send(
            Method::OPTIONS,
            "/v1/batch",
            &[
                ("origin", SHOP),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "content-encoding,content-type",
                ),
                ("sec-fetch-mode", "cors"),
            ],
            "",
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some(SHOP));
    let allowed: Vec<String> = reply
        .header("access-control-allow-headers")
        .unwrap()
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    assert!(
        allowed.contains(&"content-encoding".to_owned()),
        "{allowed:?}"
    );
    assert!(allowed.contains(&"content-type".to_owned()), "{allowed:?}");
    assert!(reply
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));

    // And the gzip request itself, as the browser then sends it.
    let body = gzip(fixture().to_string().as_bytes());
    let reply = server
        .send(
            Method::POST,
            "/v1/batch",
            &[
                ("origin", SHOP),
                ("content-type", "text/plain;charset=UTF-8"),
                ("content-encoding", "gzip"),
            ],
            body,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some(SHOP));
    assert_eq!(reply.json()["stored"], 4);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn loopback_origins_are_allowed_only_when_asked_for() {
    let server = TestServer::start_with(|s| {
        s.ingest_origins = consentry_collector::origin::OriginPolicy::new(vec![], true);
    })
    .await;
    for origin in [
        "http://localhost:5173",
        "https://127.0.0.1:8443",
        "http://[::1]:8080",
    ] {
        let reply = server
            .post_batch_with(&fixture(), &[("origin", origin)])
            .await;
        assert_eq!(reply.status, 200, "{origin}");
        assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
    }
    let reply = server
        .post_batch_with(&fixture(), &[("origin", "http://localhost.evil.example")])
        .await;
    assert_eq!(reply.status, 403);
}

#[tokio::test]
async fn the_admin_api_grants_only_admin_origins() {
    let server = TestServer::start().await;
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let reply = server
        .send(
            Method::GET,
            "/v1/stats",
            &[("origin", INSPECTOR), ("authorization", &bearer)],
            "",
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some(INSPECTOR));

    // An ingestion origin is not an admin origin.
    let reply = server
        .send(
            Method::GET,
            "/v1/events",
            &[("origin", SHOP), ("authorization", &bearer)],
            "",
        )
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.header("access-control-allow-origin"), None);

    // The preflight for the Authorization header is answered without the token.
    let reply = server
        .send(
            Method::OPTIONS,
            "/v1/events",
            &[
                ("origin", INSPECTOR),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "authorization"),
            ],
            "",
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
}
