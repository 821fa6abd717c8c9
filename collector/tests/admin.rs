//! The read API (token, paging, stats), fault injection and reset.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hyper::http::Method;
use serde_json::json;
use support::{batch_of, fixture, track, uuid, TestServer, SHOP};

#[tokio::test]
async fn the_read_api_needs_the_admin_token() {
    let server = TestServer::start().await;
    for path in [
        "/v1/events",
        "/v1/stats",
        "/v1/admin/reset",
        "/v1/admin/faults",
    ] {
        for headers in [
            vec![],
            vec![("authorization", "Bearer wrong-token-0123456789")],
            vec![("authorization", "Basic dGVzdDp0ZXN0")],
        ] {
            let method = if path.starts_with("/v1/admin") {
                Method::POST
            } else {
                Method::GET
            };
            let reply = server.send(method, path, &headers, "").await;
            assert_eq!(reply.status, 401, "{path} {headers:?}");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        }
    }
    let health = server.send(Method::GET, "/healthz", &[], "").await;
    assert_eq!(
        (health.status.as_u16(), &health.body[..]),
        (200, &b"ok"[..])
    );
    let missing = server.send(Method::GET, "/nope", &[], "").await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn events_are_paged_by_sequence_number() {
    let server = TestServer::start().await;
    let events = (0..25).map(|i| track(&uuid(i), &["analytics"])).collect();
    assert_eq!(
        server.post_batch(&batch_of(events)).await.json()["stored"],
        25
    );

    let mut since = 0;
    let mut seen = Vec::new();
    loop {
        let reply = server
            .admin(
                Method::GET,
                &format!("/v1/events?since={since}&limit=10"),
                "",
            )
            .await;
        let page = reply.json();
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            assert_eq!(page["next_since"], since);
            break;
        }
        seen.extend(events.iter().map(|e| e["event_id"].clone()));
        since = page["next_since"].as_i64().unwrap();
        assert_eq!(since, events.last().unwrap()["seq"].as_i64().unwrap());
    }
    let expected: Vec<_> = (0..25).map(|i| json!(uuid(i))).collect();
    assert_eq!(seen, expected);

    for bad in ["limit=0", "limit=1001", "limit=x", "since=-1", "since=abc"] {
        let reply = server
            .admin(Method::GET, &format!("/v1/events?{bad}"), "")
            .await;
        assert_eq!(reply.status, 400, "{bad}");
        assert!(reply.json()["field"].is_string(), "{bad}");
    }
}

#[tokio::test]
async fn faults_fail_the_next_batches_in_order_and_store_nothing() {
    let server = TestServer::start().await;
    let reply = server
        .admin(
            Method::POST,
            "/v1/admin/faults",
            r#"{"next": ["500", "429:7", "drop", "503"]}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json(), json!({"queued": 4}));

    let first = server
        .post_batch_with(&fixture(), &[("origin", SHOP)])
        .await;
    assert_eq!(first.status, 500);
    assert_eq!(first.header("access-control-allow-origin"), Some(SHOP));

    let second = server
        .post_batch_with(&fixture(), &[("origin", SHOP)])
        .await;
    assert_eq!(second.status, 429);
    assert_eq!(second.header("retry-after"), Some("7"));
    assert_eq!(
        second.header("access-control-expose-headers"),
        Some("retry-after"),
        "header names are case-insensitive; tower-http writes them in lower case"
    );

    let third = server
        .try_send(
            Method::POST,
            "/v1/batch",
            &[("content-type", "text/plain")],
            fixture().to_string(),
        )
        .await;
    let error = third.expect_err("the connection closes without a response");
    assert!(
        error.is_incomplete_message() || error.is_closed() || error.is_canceled(),
        "{error:?}"
    );

    assert_eq!(server.post_batch(&fixture()).await.status, 503);
    let stats = server.stats().await;
    assert_eq!(stats["events"], 0, "a faulted batch is not stored");
    assert_eq!(
        stats["rejected_requests"],
        json!({}),
        "faults are not rejections"
    );

    let reply = server.post_batch(&fixture()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["stored"], 4);
}

#[tokio::test]
async fn faults_can_be_cleared_and_bad_ones_are_refused() {
    let server = TestServer::start().await;
    server
        .admin(
            Method::POST,
            "/v1/admin/faults",
            r#"{"next": ["500", "500"]}"#,
        )
        .await;
    let reply = server.admin(Method::DELETE, "/v1/admin/faults", "").await;
    assert_eq!(reply.json(), json!({"queued": 0}));
    assert_eq!(server.post_batch(&fixture()).await.status, 200);

    for (body, field) in [
        (r#"{"next": ["500", "teapot"]}"#, "next[1]"),
        (r#"{"next": ["200"]}"#, "next[0]"),
        (r#"{"later": []}"#, "next"),
        ("not json", "next"),
    ] {
        let reply = server.admin(Method::POST, "/v1/admin/faults", body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.json()["field"], field, "{body}");
    }
}

#[tokio::test]
async fn reset_deletes_everything_stored() {
    let server = TestServer::start().await;
    server.post_batch(&fixture()).await;
    server.post_batch(&fixture()).await;
    let reply = server.admin(Method::POST, "/v1/admin/reset", "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        server.stats().await,
        json!({"batches": 0, "events": 0, "duplicates": 0, "refused": 0, "consent_changes": 0, "suppressed": 0, "rejected_requests": {}})
    );
    assert!(server.events().await.is_empty());
    // The same ids can be stored again.
    assert_eq!(server.post_batch(&fixture()).await.json()["stored"], 4);
}

#[tokio::test]
async fn fault_and_reset_endpoints_exist_only_with_fault_injection() {
    let server = TestServer::start_with(|s| s.fault_injection = false).await;
    for (method, path) in [
        (Method::POST, "/v1/admin/faults"),
        (Method::DELETE, "/v1/admin/faults"),
        (Method::POST, "/v1/admin/reset"),
    ] {
        let reply = server.admin(method, path, r#"{"next": ["500"]}"#).await;
        assert_eq!(reply.status, 404, "{path}");
    }
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
}

#[tokio::test]
async fn acknowledged_batches_survive_a_restart() {
    let server = TestServer::start().await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    let dir = server.stop().await;
    assert!(
        !dir.path().join("collector.sqlite3-wal").exists()
            || std::fs::metadata(dir.path().join("collector.sqlite3-wal"))
                .unwrap()
                .len()
                == 0,
        "the WAL is checkpointed on shutdown"
    );

    let again = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(again.stats().await["events"], 4);
    assert_eq!(again.post_batch(&fixture()).await.json()["duplicates"], 4);
    again.stop().await;
}

#[tokio::test]
async fn a_page_of_events_stops_at_its_content_budget_and_the_cursor_goes_on() {
    let server = TestServer::start().await;
    let big = "x".repeat(60 * 1024);
    let mut n = 0u64;
    for _ in 0..6 {
        let events = (0..15)
            .map(|_| {
                n += 1;
                let mut event = track(&uuid(n), &["analytics"]);
                event["properties"] = json!({ "blob": big });
                event
            })
            .collect();
        let reply = server.post_batch(&batch_of(events)).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let first = server
        .admin(Method::GET, "/v1/events?since=0&limit=1000", "")
        .await
        .json();
    let shown = first["events"].as_array().unwrap().len();
    assert!(
        (60..90).contains(&shown),
        "4 MiB of 60 KiB events is about 69 of the 90: {shown}"
    );
    assert_eq!(
        server.events().await.len(),
        90,
        "the cursor reaches every event"
    );
}
