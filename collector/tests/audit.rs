//! The audit trail: what is recorded, `GET /v1/audit` paging, and `audit verify` finding rows
//! edited, deleted or reordered directly in SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hyper::http::Method;
use std::path::Path;
use support::binary::tool;
use support::{fixture, TestServer};

/// A stopped collector's data directory with a few audited calls in its log.
async fn audited_dir() -> tempfile::TempDir {
    let server = TestServer::start().await;
    server.post_batch(&fixture()).await;
    server
        .admin(Method::GET, "/v1/events?since=0&limit=10", "")
        .await;
    server.admin(Method::GET, "/v1/stats", "").await;
    server.token("viewer", "grafana").await;
    server.stop().await
}

fn copy_of(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.join("collector.sqlite3"),
        copy.path().join("collector.sqlite3"),
    )
    .unwrap();
    copy
}

fn tamper(dir: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(dir.join("collector.sqlite3")).unwrap();
    conn.execute_batch(sql).unwrap();
}

fn verify(dir: &Path) -> (bool, String) {
    let output = tool(dir, &["audit", "verify"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn admin_calls_and_start_and_stop_are_recorded_and_paged() {
    let dir = audited_dir().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let first = server
        .admin(Method::GET, "/v1/audit?limit=3", "")
        .await
        .json();
    let entries = first["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["seq"], 1);
    assert_eq!(entries[0]["action"], "collector.start");
    assert_eq!(entries[0]["actor"], "system");
    assert_eq!(entries[1]["action"], "events.read");
    assert_eq!(entries[2]["action"], "stats.read");
    assert_eq!(entries[1]["target"], "/v1/events?since=0&limit=10");
    assert_eq!(entries[1]["actor"], "admin-token");
    assert_eq!(entries[1]["role"], "admin");
    assert_eq!(entries[1]["outcome"], "200");
    assert_eq!(entries[1]["prev_hash"], entries[0]["hash"]);
    assert_eq!(first["next_since"], 3);

    let rest = server
        .admin(Method::GET, "/v1/audit?since=3", "")
        .await
        .json();
    let actions: Vec<_> = rest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "token.create",
            "collector.stop",
            "collector.start",
            "audit.read"
        ],
        "the read of the first page is recorded, this one after it is answered"
    );
    let created = &rest["entries"][0];
    assert!(created["target"].as_str().unwrap().starts_with("tok_"));
    let bad = server.admin(Method::GET, "/v1/audit?limit=0", "").await;
    assert_eq!(
        (bad.status.as_u16(), bad.json()["field"].clone()),
        (400, "limit".into())
    );
    server.stop().await;
}

#[tokio::test]
async fn verify_passes_an_untouched_log_and_names_the_first_edited_deleted_or_reordered_row() {
    let dir = audited_dir().await;
    let (ok, text) = verify(dir.path());
    assert!(ok, "{text}");
    assert!(text.contains("audit log verified: 5 entries"), "{text}");

    for (sql, broken) in [
        ("UPDATE audit_log SET target = '/v1/stats' WHERE seq = 2", 2),
        (
            "UPDATE audit_log SET actor = 'someone else' WHERE seq = 4",
            4,
        ),
        ("DELETE FROM audit_log WHERE seq = 3", 3),
        (
            "UPDATE audit_log SET seq = -1 WHERE seq = 2;
             UPDATE audit_log SET seq = 2 WHERE seq = 3;
             UPDATE audit_log SET seq = 3 WHERE seq = -1;",
            2,
        ),
        ("DELETE FROM audit_log WHERE seq = 1", 1),
    ] {
        let copy = copy_of(dir.path());
        tamper(copy.path(), sql);
        let (ok, text) = verify(copy.path());
        assert!(!ok, "{sql}: {text}");
        assert!(
            text.contains(&format!("audit entry {broken} is broken")),
            "{sql}: {text}"
        );
    }

    let nowhere = tempfile::tempdir().unwrap();
    let (ok, text) = verify(nowhere.path());
    assert!(!ok && text.contains("no database"), "{text}");
}
