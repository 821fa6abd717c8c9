//! A crash while a data-subject request is `in_progress`: the real binary is killed (SIGKILL)
//! while it holds an erasure in progress (the test-only `--dsr-hold-in-progress`, which needs
//! `--fault-injection`), restarted on the same data directory, and the request completes
//! exactly once: one erasure, one tombstone, one `completed` status, one `completed` callback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hyper::http::Method;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use support::binary::Served;
use support::client::Reply;
use support::dsr::Receiver;
use support::{bearer_to, fixture, try_send_to, uuid, ADMIN_TOKEN};

fn args(hold: bool) -> Vec<&'static str> {
    let mut args = vec![
        "--plain-http",
        "--generate-encryption-key",
        "--api-key",
        "demo=pk_demo",
        "--admin-token",
        ADMIN_TOKEN,
        "--dsr-allow-loopback-http-callbacks",
        "--dsr-callback-backoff-ms",
        "50",
        "--ip-rate-per-minute",
        "0",
    ];
    if hold {
        args.extend(["--fault-injection", "--dsr-hold-in-progress"]);
    }
    args
}

async fn status(addr: SocketAddr, token: &str, id: &str) -> Value {
    let reply = bearer_to(
        addr,
        token,
        Method::GET,
        &format!("/opendsr/v1/requests/{id}"),
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn admin(addr: SocketAddr, method: Method, path: &str, body: &str) -> Reply {
    bearer_to(addr, ADMIN_TOKEN, method, path, body).await
}

#[tokio::test]
async fn a_request_in_progress_when_the_process_dies_completes_exactly_once_after_restart() {
    let receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let first = Served::start(dir.path(), &args(true), &[]);
    let addr = first.addr;
    let batch = try_send_to(
        addr,
        None,
        Method::POST,
        "/v1/batch",
        &[("content-type", "text/plain")],
        fixture().to_string(),
    )
    .await
    .unwrap();
    assert_eq!(batch.status, 200);
    let made = admin(
        addr,
        Method::POST,
        "/v1/tokens",
        r#"{"name": "acme", "role": "dsr"}"#,
    )
    .await;
    let token = made.json()["token"].as_str().unwrap().to_owned();
    let id = uuid(8001);
    let body = json!({
        "subject_request_id": id,
        "subject_request_type": "erasure",
        "regulation": "gdpr",
        "submitted_time": "2026-12-01T10:00:00Z",
        "subject_identities": [{"identity_type": "controller_customer_id", "identity_value": "user-42", "identity_format": "raw"}],
        "status_callback_urls": [receiver.url()],
    });
    let created = bearer_to(
        addr,
        &token,
        Method::POST,
        "/opendsr/v1/requests",
        &body.to_string(),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    // In progress, and both callbacks so far delivered and recorded.
    until("in_progress with its callbacks delivered", async || {
        let s = status(addr, &token, &id).await;
        s["request_status"] == "in_progress"
            && s["callbacks"].as_array().unwrap().len() == 2
            && s["callbacks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["state"] == "delivered")
    })
    .await;
    let log = first.kill();
    assert!(log.contains("holding the request in_progress"), "{log}");
    assert_eq!(receiver.received().len(), 2);

    // Restarted on the same directory, without the hold: the request is resumed and done.
    let second = Served::start(dir.path(), &args(false), &[]);
    let addr = second.addr;
    until("completed", async || {
        status(addr, &token, &id).await["request_status"] == "completed"
    })
    .await;
    until("the completed callback", async || {
        receiver.received().len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = admin(addr, Method::GET, "/v1/events", "").await.json();
    assert_eq!(events["events"], json!([]), "the user's events are erased");
    let done = status(addr, &token, &id).await;
    assert_eq!(done["results_count"], 4);

    let statuses: Vec<String> = receiver
        .received()
        .iter()
        .map(|c| c.json()["request_status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        statuses,
        ["pending", "in_progress", "completed"],
        "each once"
    );
    let audit = admin(addr, Method::GET, "/v1/audit?limit=1000", "")
        .await
        .json();
    let changes: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "dsr.status" && e["target"] == id.as_str())
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes,
        [
            "pending",
            "in_progress",
            "in_progress (resumed)",
            "completed"
        ]
    );
    let (status, _) = second.stop();
    assert!(status.success());
    let (tombstones, claims): (i64, i64) = support::store::with_db(dir.path(), |conn| {
        conn.query_row(
            "SELECT (SELECT COUNT(*) FROM erasures WHERE request_id = ?1),
                    (SELECT claims FROM dsr_requests WHERE id = ?1)",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    });
    assert_eq!((tombstones, claims), (1, 2));
}
