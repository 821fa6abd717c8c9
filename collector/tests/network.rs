//! Network controls: the admin address allowlist, rate limits per client address and per API
//! key (429 with Retry-After), X-Forwarded-For believed only from trusted proxies, and the
//! client address never stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use consentry_collector::keys::ApiKeys;
use consentry_collector::network::{parse_network, Networks, Rate};
use hyper::http::Method;
use serde_json::json;
use support::{fixture, TestServer, ADMIN_TOKEN};

fn networks(list: &[&str]) -> Networks {
    Networks::new(list.iter().map(|t| parse_network(t).unwrap()).collect())
}

async fn stats_from(server: &TestServer, forwarded_for: Option<&str>) -> u16 {
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let mut headers = vec![("authorization", bearer.as_str())];
    if let Some(ip) = forwarded_for {
        headers.push(("x-forwarded-for", ip));
    }
    server
        .send(Method::GET, "/v1/stats", &headers, "")
        .await
        .status
        .as_u16()
}

#[tokio::test]
async fn the_admin_api_answers_only_allowed_addresses() {
    let server = TestServer::start_with(|s| s.admin_allow = networks(&["10.0.0.0/8"])).await;
    assert_eq!(
        stats_from(&server, None).await,
        403,
        "127.0.0.1 is not allowed"
    );
    assert_eq!(
        stats_from(&server, Some("10.1.2.3")).await,
        403,
        "X-Forwarded-For from a peer that is no trusted proxy is ignored"
    );
    let reply = server.send(Method::GET, "/v1/stats", &[], "").await;
    assert_eq!(
        reply.json()["error"],
        "address not allowed",
        "before authentication"
    );
    assert_eq!(
        server.post_batch(&fixture()).await.status,
        200,
        "ingestion is not affected"
    );
    assert_eq!(
        server.send(Method::GET, "/healthz", &[], "").await.status,
        200
    );

    let proxied = TestServer::start_with(|s| {
        s.admin_allow = networks(&["10.0.0.0/8"]);
        s.trusted_proxies = networks(&["127.0.0.1"]);
    })
    .await;
    assert_eq!(stats_from(&proxied, Some("10.1.2.3")).await, 200);
    assert_eq!(
        stats_from(&proxied, Some("10.1.2.3, 203.0.113.5")).await,
        403,
        "the right-most untrusted entry counts"
    );
    assert_eq!(stats_from(&proxied, None).await, 403);

    let local = TestServer::start_with(|s| s.admin_allow = networks(&["127.0.0.1/32"])).await;
    assert_eq!(stats_from(&local, None).await, 200);
}

#[tokio::test]
async fn batches_over_the_per_address_limit_are_429_with_retry_after() {
    let server = TestServer::start_with(|s| {
        s.ip_rate = Rate {
            per_minute: 6,
            burst: 2,
        };
        s.trusted_proxies = networks(&["127.0.0.1"]);
    })
    .await;
    let from = |ip: &'static str| vec![("x-forwarded-for", ip), ("origin", support::SHOP)];
    for _ in 0..2 {
        let reply = server
            .post_batch_with(&fixture(), &from("203.0.113.1"))
            .await;
        assert_eq!(reply.status, 200);
    }
    let limited = server
        .post_batch_with(&fixture(), &from("203.0.113.1"))
        .await;
    assert_eq!(limited.status, 429, "{limited:?}");
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    assert_eq!(
        limited.header("access-control-allow-origin"),
        Some(support::SHOP),
        "the SDK can read it"
    );
    assert_eq!(
        limited.header("access-control-expose-headers"),
        Some("retry-after")
    );
    assert_eq!(
        limited.json()["error"],
        "too many requests from this address"
    );
    assert_eq!(
        server
            .post_batch_with(&fixture(), &from("203.0.113.2"))
            .await
            .status,
        200,
        "another address has its own bucket"
    );
    let stats = server.stats().await;
    assert_eq!(stats["rejected_requests"]["429"], 1);

    // The client address decides limits only: it is stored nowhere.
    let dir = server.stop().await;
    assert!(!support::store::stored_contains(dir.path(), "203.0.113.1"));
}

#[tokio::test]
async fn batches_over_the_per_key_limit_are_429_and_other_keys_go_on() {
    let server = TestServer::start_with(|s| {
        s.api_keys = ApiKeys::new(vec![
            "demo=pk_demo".parse().unwrap(),
            "demo=pk_other".parse().unwrap(),
        ])
        .unwrap();
        s.key_rate = Rate {
            per_minute: 1,
            burst: 2,
        };
    })
    .await;
    let mut other = fixture();
    other["api_key"] = json!("pk_other");
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    let limited = server.post_batch(&fixture()).await;
    assert_eq!(limited.status, 429);
    assert!(
        limited
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(
        limited.json()["error"],
        "too many requests from this API key"
    );
    assert_eq!(server.post_batch(&other).await.status, 200);
}

#[tokio::test]
async fn a_garbled_forwarded_for_never_borrows_a_trusted_proxys_address() {
    // The proxies' own network is allowed; a client behind them must not pass as one of them.
    let server = TestServer::start_with(|s| {
        s.admin_allow = networks(&["10.0.0.0/8"]);
        s.trusted_proxies = networks(&["127.0.0.1", "10.0.0.0/8"]);
    })
    .await;
    assert_eq!(
        stats_from(&server, Some("10.0.0.7")).await,
        200,
        "a client inside the trusted network, vouched for by the proxy"
    );
    for garbled in ["garbage, 10.0.0.3", "10.0.0.3, ", "10.0.0.3,, 10.0.0.4", ""] {
        assert_eq!(
            stats_from(&server, Some(garbled)).await,
            403,
            "X-Forwarded-For {garbled:?}"
        );
    }
    assert_eq!(
        stats_from(&server, None).await,
        403,
        "a trusted proxy that names no client is not the client"
    );
}

#[tokio::test]
async fn an_address_that_keeps_failing_to_authenticate_gets_429_and_others_are_served() {
    let server = TestServer::start_with(|s| {
        s.auth_failure_rate = Rate {
            per_minute: 1,
            burst: 5,
        };
        s.trusted_proxies = networks(&["127.0.0.1"]);
    })
    .await;
    let guess = |from: &'static str, token: &'static str| {
        let server = &server;
        async move {
            let bearer = format!("Bearer {token}");
            server
                .send(
                    Method::GET,
                    "/v1/stats",
                    &[("authorization", &bearer), ("x-forwarded-for", from)],
                    "",
                )
                .await
        }
    };
    for _ in 0..5 {
        assert_eq!(guess("203.0.113.7", "cst_guess").await.status, 401);
    }
    let throttled = guess("203.0.113.7", "cst_guess").await;
    assert_eq!(throttled.status, 429);
    assert!(
        throttled
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(
        guess("203.0.113.7", ADMIN_TOKEN).await.status,
        429,
        "while blocked, even the right token waits: no lookups for this address"
    );
    assert_eq!(
        guess("203.0.113.8", ADMIN_TOKEN).await.status,
        200,
        "another address is served"
    );
    let reply = server
        .send(
            Method::GET,
            "/metrics",
            &[
                ("authorization", &format!("Bearer {ADMIN_TOKEN}")),
                ("x-forwarded-for", "203.0.113.8"),
            ],
            "",
        )
        .await;
    let text = String::from_utf8_lossy(&reply.body);
    assert!(
        text.contains("consentry_rate_limited_total{limit=\"auth\"} 2"),
        "{text}"
    );
}
