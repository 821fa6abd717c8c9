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
    support::store::copy_audit_log(dir)
}

fn tamper(dir: &Path, sql: &str) {
    support::store::with_db(dir, |conn| conn.execute_batch(sql).unwrap());
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

    if !support::store::on_postgres() {
        // A data directory without its SQLite file (a PostgreSQL store is made on first use).
        let nowhere = tempfile::tempdir().unwrap();
        let (ok, text) = verify(nowhere.path());
        assert!(!ok && text.contains("no database"), "{text}");
    }
}

#[tokio::test]
async fn audit_targets_name_people_by_index_even_when_the_call_fails() {
    let server = TestServer::start().await;
    server.post_batch(&fixture()).await;
    let visitor = "5a6b7c8d-9e0f-4a1b-9c3d-4e5f6a7b8c9d";
    let (_, dsr) = server.token("dsr", "processor").await;
    let (_, viewer) = server.token("viewer", "desk").await;
    let path = format!("/v1/events?anonymous_id={visitor}&limit=5");
    assert_eq!(
        server.bearer(&viewer, Method::GET, &path, "").await.status,
        200
    );
    assert_eq!(
        server.bearer(&dsr, Method::GET, &path, "").await.status,
        403
    );
    let bad = format!("/v1/events?anonymous_id={visitor}&limit=0");
    assert_eq!(
        server.bearer(&viewer, Method::GET, &bad, "").await.status,
        400
    );
    let audit = server.admin(Method::GET, "/v1/audit?limit=1000", "").await;
    let text = String::from_utf8_lossy(&audit.body).into_owned();
    assert!(!text.contains(visitor), "{text}");
    let reads: Vec<_> = audit.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "events.read")
        .map(|e| {
            (
                e["outcome"].clone(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(reads.len(), 3, "{reads:?}");
    for (outcome, target) in &reads {
        assert!(
            target.starts_with("/v1/events?anonymous_id_index=") && target.contains("&limit="),
            "{outcome}: {target}"
        );
    }
    assert_eq!(reads[0].1, reads[1].1, "the same person, the same index");
}

/// Rewrites every hash from `from` on, as someone with write access to the file could.
fn rechain(dir: &Path, from: i64) {
    support::store::with_db(dir, |conn| rechain_in(conn, from));
}

fn rechain_in(conn: &consentry_collector::store::sql::Connection, from: i64) {
    use consentry_collector::audit::{entry_hash, NewAuditEntry};
    let mut prev: String = conn
        .query_row(
            "SELECT COALESCE((SELECT hash FROM audit_log WHERE seq = ?1), ?2)",
            (from - 1, consentry_collector::audit::GENESIS_HASH),
            |r| r.get(0),
        )
        .unwrap();
    let rows: Vec<(i64, NewAuditEntry)> = conn
        .prepare("SELECT seq, at_ms, actor, role, action, target, outcome FROM audit_log WHERE seq >= ?1 ORDER BY seq")
        .unwrap()
        .query_map([from], |r| {
            Ok((
                r.get(0)?,
                NewAuditEntry {
                    at_ms: r.get(1)?,
                    actor: r.get(2)?,
                    role: r.get(3)?,
                    action: r.get(4)?,
                    target: r.get(5)?,
                    outcome: r.get(6)?,
                },
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (seq, entry) in rows {
        let hash = entry_hash(seq, &entry, &prev);
        conn.execute(
            "UPDATE audit_log SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
            (seq, &prev, &hash),
        )
        .unwrap();
        prev = hash;
    }
}

fn hash_of(dir: &Path, seq: i64) -> String {
    support::store::with_db(dir, |conn| {
        conn.query_row("SELECT hash FROM audit_log WHERE seq = ?1", [seq], |r| {
            r.get(0)
        })
        .unwrap()
    })
}

#[tokio::test]
async fn an_anchor_kept_elsewhere_catches_a_log_rewritten_whole_or_cut_short() {
    let dir = audited_dir().await;
    let anchor = format!("4:{}", hash_of(dir.path(), 4));
    let output = tool(dir.path(), &["audit", "verify", "--anchor", &anchor]);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 anchors hold"));

    // An edit with every later hash recomputed: the chain alone cannot tell, the anchor can.
    let rewritten = copy_of(dir.path());
    tamper(
        rewritten.path(),
        "UPDATE audit_log SET actor = 'nobody' WHERE seq = 2",
    );
    rechain(rewritten.path(), 2);
    let (ok, text) = verify(rewritten.path());
    assert!(
        ok,
        "an unkeyed chain recomputed whole verifies by itself: {text}"
    );
    let output = tool(rewritten.path(), &["audit", "verify", "--anchor", &anchor]);
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        text.contains("audit entry 4 does not have the anchored hash"),
        "{text}"
    );

    let cut = copy_of(dir.path());
    tamper(cut.path(), "DELETE FROM audit_log WHERE seq >= 4");
    let output = tool(cut.path(), &["audit", "verify", "--anchor", &anchor]);
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(text.contains("cut short"), "{text}");

    let output = tool(dir.path(), &["audit", "verify", "--anchor", "4:nothex"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("SEQ:HASH"));
}
