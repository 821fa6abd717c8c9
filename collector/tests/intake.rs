//! The visitor's own data-subject requests (`POST /v1/dsr`, `GET /v1/dsr/{id}?secret=`),
//! against the real server and SQLite: an export and an erasure of exactly the caller's ids,
//! and abuse: another user's id, floods (429), malformed bodies (400 naming the field), a
//! foreign origin (403), a wrong secret (404).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use consentry_collector::network::Rate;
use hyper::http::Method;
use serde_json::{json, Value};
use std::time::Duration;
use support::client::Reply;
use support::{batch_of, fixture, track, uuid, TestServer, SHOP};

const ANONYMOUS: &str = "5a6b7c8d-9e0f-4a1b-9c3d-4e5f6a7b8c9d";

async fn intake(server: &TestServer, body: &Value, origin: Option<&str>) -> Reply {
    let mut headers = vec![("content-type", "text/plain;charset=UTF-8")];
    if let Some(origin) = origin {
        headers.push(("origin", origin));
    }
    server
        .send(Method::POST, "/v1/dsr", &headers, body.to_string())
        .await
}

fn path_of(server: &TestServer, url: &str) -> String {
    url.split_once(&server.addr.to_string())
        .unwrap()
        .1
        .to_owned()
}

async fn wait_completed(server: &TestServer, status_path: &str) -> Value {
    for _ in 0..500 {
        let reply = server.send(Method::GET, status_path, &[], "").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        if reply.json()["status"] == "completed" {
            return reply.json();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never completed");
}

async fn fast_server(
    customize: impl FnOnce(&mut consentry_collector::config::Settings),
) -> TestServer {
    TestServer::start_with(|s| {
        s.rights.poll_interval = Duration::from_millis(20);
        customize(s);
    })
    .await
}

#[tokio::test]
async fn a_visitor_exports_and_erases_its_own_data_and_nobody_elses() {
    let server = fast_server(|_| {}).await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    // Another visitor of the same user on another device.
    let mut other_device = track(&uuid(50), &["analytics"]);
    other_device["anonymous_id"] = json!(uuid(51));
    other_device["user_id"] = json!("user-42");
    server.post_batch(&batch_of(vec![other_device])).await;

    let reply = intake(
        &server,
        &json!({"api_key": "pk_demo", "type": "portability", "anonymous_id": ANONYMOUS}),
        Some(SHOP),
    )
    .await;
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some(SHOP));
    let answer = reply.json();
    assert_eq!(answer["status"], "pending");
    let status_path = path_of(&server, answer["status_url"].as_str().unwrap());
    let done = wait_completed(&server, &status_path).await;
    // The browser may read its status.
    let read = server
        .send(Method::GET, &status_path, &[("origin", SHOP)], "")
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.header("access-control-allow-origin"), Some(SHOP));
    let download = server
        .send(
            Method::GET,
            &path_of(&server, done["results_url"].as_str().unwrap()),
            &[],
            "",
        )
        .await;
    assert_eq!(download.status, 200);
    let text = String::from_utf8_lossy(&download.body).into_owned();
    // Its own four events (and its consent change), not the other device's.
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("\"record\":\"event\""))
            .count(),
        4
    );
    assert!(!text.contains(&uuid(51)));

    // A wrong secret is no request at all.
    let (base, _) = status_path.split_once("?secret=").unwrap();
    let wrong = server
        .send(Method::GET, &format!("{base}?secret=guess"), &[], "")
        .await;
    assert_eq!(wrong.status, 404);
    assert_eq!(server.send(Method::GET, base, &[], "").await.status, 404);

    // Someone else's user id: refused, naming it.
    let reply = intake(
        &server,
        &json!({"api_key": "pk_demo", "type": "erasure", "anonymous_id": ANONYMOUS, "user_id": "user-7"}),
        Some(SHOP),
    )
    .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["field"], "user_id");

    // Erasure of its own anonymous id reaches that id's events only: the same user's events
    // from another device stay (the request named no user id).
    let reply = intake(
        &server,
        &json!({"api_key": "pk_demo", "type": "erasure", "anonymous_id": ANONYMOUS}),
        None,
    )
    .await;
    assert_eq!(reply.status, 202);
    let status_path = path_of(&server, reply.json()["status_url"].as_str().unwrap());
    let done = wait_completed(&server, &status_path).await;
    assert_eq!(done["results_count"], 4);
    let left = server.events().await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["anonymous_id"], uuid(51));

    let audit = server
        .admin(Method::GET, "/v1/audit?limit=1000", "")
        .await
        .json();
    assert!(audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "dsr.status"
            && e["role"] == "visitor"
            && e["outcome"] == "pending"));
}

#[tokio::test]
async fn malformed_intake_bodies_are_400_naming_the_field_and_strangers_are_refused() {
    let server = fast_server(|s| s.rights.worker = false).await;
    let good = json!({"api_key": "pk_demo", "type": "access", "anonymous_id": ANONYMOUS});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value;
        }
        body
    };
    for (body, status, field) in [
        (with("type", json!("delete")), 400, json!("type")),
        (with("type", Value::Null), 400, json!("type")),
        (
            with("anonymous_id", json!("me")),
            400,
            json!("anonymous_id"),
        ),
        (
            with("anonymous_id", Value::Null),
            400,
            json!("anonymous_id"),
        ),
        (with("user_id", json!(42)), 400, json!("user_id")),
        (with("user_id", json!("")), 400, json!("user_id")),
        (with("email", json!("a@b.example")), 400, json!("email")),
        (with("api_key", json!("pk_unknown")), 401, json!("api_key")),
        (with("api_key", Value::Null), 401, json!("api_key")),
    ] {
        let reply = intake(&server, &body, None).await;
        assert_eq!(reply.status, status, "{body}");
        assert_eq!(reply.json()["field"], field, "{body}");
    }
    for body in ["not json", "[1]"] {
        let reply = server
            .send(
                Method::POST,
                "/v1/dsr",
                &[("content-type", "text/plain")],
                body,
            )
            .await;
        assert_eq!(reply.status, 400);
    }
    let huge = json!({"api_key": "pk_demo", "type": "access", "anonymous_id": ANONYMOUS, "pad": "x".repeat(5000)});
    assert_eq!(intake(&server, &huge, None).await.status, 413);
    let foreign = intake(&server, &good, Some("https://evil.example")).await;
    assert_eq!(foreign.status, 403);
    assert!(foreign.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_flood_of_intake_requests_is_429_by_address_and_by_key() {
    let server = fast_server(|s| {
        s.rights.worker = false;
        s.ip_rate = Rate {
            per_minute: 60,
            burst: 3,
        };
    })
    .await;
    let good = json!({"api_key": "pk_demo", "type": "access", "anonymous_id": ANONYMOUS});
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let reply = intake(&server, &good, Some(SHOP)).await;
        if reply.status == 429 {
            assert!(reply.header("retry-after").is_some());
        }
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429]);

    let server = fast_server(|s| {
        s.rights.worker = false;
        s.key_rate = Rate {
            per_minute: 60,
            burst: 2,
        };
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(intake(&server, &good, None).await.status.as_u16());
    }
    assert_eq!(statuses, [202, 202, 429]);
}
