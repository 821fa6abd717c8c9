//! Encryption at rest: what is stored is not readable in the raw database file or its WAL, ids
//! are found through keyed-hash indexes, the wrong key is refused at start, and `key rotate`
//! re-encrypts while the collector serves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use base64::Engine;
use consentry_collector::config::{Encryption, KeySource};
use consentry_collector::server;
use hyper::http::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use support::binary::BINARY;
use support::{batch_of, track, uuid, TestServer};

const ANONYMOUS_ID: &str = "5a6b7c8d-9e0f-4a1b-9c3d-beefbeefbeef";
const MARKERS: [&str; 5] = [
    "PROPERTY-MARKER-4711",
    "USER-MARKER-0815",
    "PAGE-MARKER-2718",
    "CONSENT-DOCUMENT-MARKER-3141",
    ANONYMOUS_ID,
];

/// A batch carrying every marker: in properties, a user id, a page URL, the consent document
/// and the anonymous id.
fn marked_batch(first_id: u64) -> Value {
    let mut tracked = track(&uuid(first_id), &["analytics"]);
    tracked["properties"] = json!({"note": MARKERS[0]});
    tracked["anonymous_id"] = json!(ANONYMOUS_ID);
    let mut identify = track(&uuid(first_id + 1), &["analytics"]);
    identify["type"] = json!("identify");
    identify["user_id"] = json!(MARKERS[1]);
    identify["anonymous_id"] = json!(ANONYMOUS_ID);
    let mut page = track(&uuid(first_id + 2), &["analytics"]);
    page["type"] = json!("page");
    page["page"] = json!({"url": format!("https://shop.example/{}", MARKERS[2]), "title": "Tea"});
    page["anonymous_id"] = json!(ANONYMOUS_ID);
    let mut batch = batch_of(vec![tracked, identify, page]);
    batch["consent_state"]["gdpr"]["analytics"]["document"] = json!(MARKERS[3]);
    batch
}

/// The markers found in the database file and its WAL.
fn markers_on_disk(dir: &Path) -> Vec<&'static str> {
    if support::store::on_postgres() {
        return MARKERS
            .into_iter()
            .filter(|m| support::store::stored_contains(dir, m))
            .collect();
    }
    let mut bytes = Vec::new();
    for name in ["collector.sqlite3", "collector.sqlite3-wal"] {
        if let Ok(content) = std::fs::read(dir.join(name)) {
            bytes.extend(content);
        }
    }
    MARKERS
        .into_iter()
        .filter(|m| bytes.windows(m.len()).any(|w| w == m.as_bytes()))
        .collect()
}

fn key_file(dir: &Path, name: &str, byte: u8) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        base64::engine::general_purpose::STANDARD.encode([byte; 32]),
    )
    .unwrap();
    path
}

fn keys(current: &Path, old: &[&Path]) -> Encryption {
    Encryption::Keys {
        current: KeySource::File(current.to_owned()),
        old: old.iter().map(|p| p.to_path_buf()).collect(),
    }
}

#[tokio::test]
async fn the_raw_database_and_wal_hold_none_of_the_personal_data_stored() {
    let server = TestServer::start().await;
    assert!(
        server.dir.path().join("encryption-key").is_file(),
        "tests generate a key"
    );
    let reply = server.post_batch(&marked_batch(1)).await;
    assert_eq!(reply.json()["stored"], 3, "{reply:?}");
    assert_eq!(
        markers_on_disk(server.dir.path()),
        Vec::<&str>::new(),
        "while serving (WAL)"
    );

    let events = server.events().await;
    assert_eq!(events[0]["properties"]["note"], MARKERS[0], "reads decrypt");
    assert_eq!(events[1]["user_id"], MARKERS[1]);
    assert_eq!(events[2]["anonymous_id"], ANONYMOUS_ID);
    let found = server
        .admin(
            Method::GET,
            &format!("/v1/events?anonymous_id={ANONYMOUS_ID}"),
            "",
        )
        .await
        .json();
    assert_eq!(found["events"].as_array().unwrap().len(), 3, "{found}");
    let other = server
        .admin(
            Method::GET,
            &format!("/v1/events?anonymous_id={}", uuid(9)),
            "",
        )
        .await
        .json();
    assert_eq!(other["events"], json!([]));

    let dir = server.stop().await;
    assert_eq!(
        markers_on_disk(dir.path()),
        Vec::<&str>::new(),
        "after the checkpoint"
    );

    // The lookup uses the keyed-hash index, not a scan (SQLite's plan; PostgreSQL's planner
    // scans tables this small whatever the index).
    if !support::store::on_postgres() {
        let conn = rusqlite::Connection::open(dir.path().join("collector.sqlite3")).unwrap();
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT seq FROM events WHERE anonymous_id_index IN (?1) AND seq > 0",
                [vec![0u8; 32]],
                |row| row.get(3),
            )
            .unwrap();
        assert!(plan.contains("events_by_anonymous_id_index"), "{plan}");
    }

    // The scan can fail: in clear, every marker is there.
    let clear = TestServer::start_with(|s| s.encryption = Encryption::Insecure).await;
    clear.post_batch(&marked_batch(1)).await;
    let dir = clear.stop().await;
    assert_eq!(markers_on_disk(dir.path()).len(), MARKERS.len());
}

#[tokio::test]
async fn the_wrong_key_or_no_key_is_refused_at_start_with_a_clear_error() {
    let keys_dir = tempfile::tempdir().unwrap();
    let a = key_file(keys_dir.path(), "a.key", 1);
    let b = key_file(keys_dir.path(), "b.key", 2);
    let server = TestServer::start_with(|s| s.encryption = keys(&a, &[])).await;
    server.post_batch(&marked_batch(1)).await;
    let dir = server.stop().await;

    for (encryption, needle) in [
        (keys(&b, &[]), "wrong key"),
        (Encryption::Insecure, "no key was given"),
    ] {
        let mut settings = support::settings(dir.path());
        settings.encryption = encryption;
        let error = server::start(settings).await.unwrap_err().to_string();
        assert!(error.contains(needle), "{error}");
    }
    let bad = key_file(keys_dir.path(), "bad.key", 0);
    std::fs::write(&bad, "too short").unwrap();
    let mut settings = support::settings(dir.path());
    settings.encryption = keys(&bad, &[]);
    let error = server::start(settings).await.unwrap_err().to_string();
    assert!(
        error.contains("bad.key") && error.contains("base64"),
        "{error}"
    );

    let again = TestServer::start_in(dir, |s| s.encryption = keys(&a, &[])).await;
    assert_eq!(again.events().await.len(), 3);
    again.stop().await;
}

/// A consent change sent when the first choice granted nothing: no anonymous id.
fn anonymous_consent_change(id: &str) -> Value {
    let mut change = support::fixture()["events"][0].clone();
    change["id"] = json!(id);
    change.as_object_mut().unwrap().remove("anonymous_id");
    change["properties"] = json!({"n": 1});
    change
}

#[tokio::test]
async fn key_rotate_re_encrypts_in_batches_while_reads_and_writes_go_on() {
    let keys_dir = tempfile::tempdir().unwrap();
    let old = key_file(keys_dir.path(), "old.key", 1);
    let new = key_file(keys_dir.path(), "new.key", 2);
    let server = TestServer::start_with(|s| s.encryption = keys(&old, &[])).await;
    for b in 0..10u64 {
        let mut events: Vec<Value> = (0..500)
            .map(|i| track(&uuid(1000 + b * 500 + i), &["analytics"]))
            .collect();
        if b == 0 {
            // Sent before the first choice: no anonymous id, nothing to seal or index for it.
            events[0]["purposes"] = json!(["necessary"]);
            events[0].as_object_mut().unwrap().remove("anonymous_id");
            events[1] = anonymous_consent_change(&uuid(1001));
        }
        assert_eq!(
            server.post_batch(&batch_of(events)).await.json()["stored"],
            500
        );
    }
    let dir = server.stop().await;

    // The collector restarts with the new key, the old one still decrypting; then the rotation
    // runs beside it.
    let server = TestServer::start_in(dir, |s| s.encryption = keys(&new, &[&old])).await;
    let mut rotation = std::process::Command::new(BINARY)
        .args([
            "key",
            "rotate",
            "--batch-size",
            "20",
            "--pause-ms",
            "5",
            "--new-key-file",
        ])
        .arg(&new)
        .arg("--encryption-key-file")
        .arg(&old)
        .arg("--data-dir")
        .arg(server.dir.path())
        .envs(support::store::store_env(server.dir.path()))
        .env_remove("CONSENTRY_ENCRYPTION_KEY")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reads = 0;
    let mut written = 5000;
    loop {
        let finished = rotation.try_wait().unwrap();
        // A page somewhere in the table: rows under either key, read while they change.
        let since = (reads * 997) % 4900;
        let page = server
            .admin(
                Method::GET,
                &format!("/v1/events?since={since}&limit=100"),
                "",
            )
            .await;
        assert_eq!(page.status, 200, "{page:?}");
        let events = page.json()["events"].as_array().unwrap().clone();
        assert_eq!(events.len(), 100, "every event reads during the rotation");
        assert!(events.iter().all(|e| e["properties"] == json!({"n": 1})));
        reads += 1;
        if finished.is_some() {
            assert_eq!(server.events().await.len(), written);
            break;
        }
        let batch = batch_of(vec![track(&uuid(10_000 + written as u64), &["analytics"])]);
        assert_eq!(server.post_batch(&batch).await.status, 200);
        written += 1;
    }
    let output = rotation.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("rows re-encrypted"), "{stderr}");
    eprintln!("{stderr}");
    assert!(
        reads >= 3,
        "the reads overlapped the rotation only {reads} times"
    );
    eprintln!(
        "{reads} page reads and {} writes during the rotation",
        written - 5000
    );
    let audit = server
        .admin(Method::GET, "/v1/audit?limit=1000", "")
        .await
        .json();
    assert!(audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "key.rotate"));
    let dir = server.stop().await;

    let mut settings = support::settings(dir.path());
    settings.encryption = keys(&old, &[]);
    let error = server::start(settings).await.unwrap_err().to_string();
    assert!(
        error.contains("wrong key"),
        "the old key alone no longer opens it: {error}"
    );
    let after = TestServer::start_in(dir, |s| s.encryption = keys(&new, &[])).await;
    let events = after.events().await;
    assert_eq!(events.len(), written, "the new key alone reads everything");
    for event in &events[..2] {
        assert!(event.get("anonymous_id").is_none(), "{event}");
    }
    assert_eq!(
        events[1]["consent"]["current"]["gdpr"]["necessary"]["consented"],
        true
    );
    assert!(events[2..].iter().all(|e| e["anonymous_id"].is_string()));
    after.stop().await;
}

#[test]
fn the_binary_refuses_to_start_without_a_key_unless_told_to_store_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(BINARY)
        .args([
            "--plain-http",
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "demo=pk_demo",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .envs(support::store::store_env(dir.path()))
        .env_remove("CONSENTRY_ENCRYPTION_KEY")
        .env_remove("CONSENTRY_API_KEYS")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no encryption key") && stderr.contains("--insecure-no-encryption"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("collector.sqlite3").exists(),
        "refused before anything"
    );
    let generated = std::process::Command::new(BINARY)
        .args(["key", "generate"])
        .output()
        .unwrap();
    let key = String::from_utf8_lossy(&generated.stdout);
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .unwrap()
            .len(),
        32
    );
}

#[tokio::test]
async fn key_rotate_refuses_a_new_key_no_collector_has_started_with() {
    let keys_dir = tempfile::tempdir().unwrap();
    let old = key_file(keys_dir.path(), "old.key", 1);
    let new = key_file(keys_dir.path(), "new.key", 2);
    // The collector serves with the old key alone: rotating now would retire the key it seals
    // with.
    let server = TestServer::start_with(|s| s.encryption = keys(&old, &[])).await;
    server
        .post_batch(&batch_of(vec![track(&uuid(1), &["analytics"])]))
        .await;
    let rotate = |extra: &[&str]| {
        std::process::Command::new(BINARY)
            .args(["key", "rotate", "--new-key-file"])
            .arg(&new)
            .arg("--encryption-key-file")
            .arg(&old)
            .arg("--data-dir")
            .arg(server.dir.path())
            .envs(support::store::store_env(server.dir.path()))
            .args(extra)
            .env_remove("CONSENTRY_ENCRYPTION_KEY")
            .output()
            .unwrap()
    };
    let refused = rotate(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("no collector has started with the new key"),
        "{stderr}"
    );
    assert_eq!(
        server.events().await.len(),
        1,
        "nothing was rewritten or retired"
    );
    let audit = server
        .admin(Method::GET, "/v1/audit?limit=1000", "")
        .await
        .json();
    assert!(audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "key.rotate" && e["outcome"] == "failed"));

    // Offline, with no collector serving the file, the operator may say so.
    let dir = server.stop().await;
    let offline = std::process::Command::new(BINARY)
        .args(["key", "rotate", "--offline", "--new-key-file"])
        .arg(&new)
        .arg("--encryption-key-file")
        .arg(&old)
        .arg("--data-dir")
        .arg(dir.path())
        .envs(support::store::store_env(dir.path()))
        .env_remove("CONSENTRY_ENCRYPTION_KEY")
        .output()
        .unwrap();
    assert!(offline.status.success(), "{offline:?}");
    let after = TestServer::start_in(dir, |s| s.encryption = keys(&new, &[])).await;
    assert_eq!(after.events().await.len(), 1);
    after.stop().await;
}

/// `consentry_encryption_sealed_values` from `/metrics`.
async fn sealed_values(server: &TestServer) -> u64 {
    let reply = server.admin(Method::GET, "/metrics", "").await;
    String::from_utf8_lossy(&reply.body)
        .lines()
        .find_map(|l| l.strip_prefix("consentry_encryption_sealed_values "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_key_seals_at_most_its_limit_and_the_count_survives_a_restart() {
    let limit = 60;
    let server = TestServer::start_with(|s| s.seal_limit = limit).await;
    let mut stored = 0;
    let mut refused = None;
    for n in 0..100u64 {
        let reply = server
            .post_batch(&batch_of(vec![track(&uuid(n + 1), &["analytics"])]))
            .await;
        match reply.status.as_u16() {
            200 => stored += 1,
            status => {
                refused = Some(status);
                break;
            }
        }
    }
    assert_eq!(refused, Some(503), "the key stops sealing at its limit");
    assert!(stored > 5, "{stored} batches before the limit");
    let counted = sealed_values(&server).await;
    assert!(
        counted <= limit && counted + 5 > limit,
        "{counted} of {limit}"
    );
    assert_eq!(
        server.events().await.len(),
        stored,
        "what was answered 200 is stored"
    );

    let dir = server.stop().await;
    let restarted = TestServer::start_in(dir, |s| s.seal_limit = limit).await;
    let reply = restarted
        .post_batch(&batch_of(vec![track(&uuid(500), &["analytics"])]))
        .await;
    assert_eq!(
        reply.status, 503,
        "the count was recorded, not reset by a restart"
    );
    let dir = restarted.stop().await;
    let rotated_limit = TestServer::start_in(dir, |_| {}).await;
    let reply = rotated_limit
        .post_batch(&batch_of(vec![track(&uuid(501), &["analytics"])]))
        .await;
    assert_eq!(reply.status, 200);
    assert!(sealed_values(&rotated_limit).await > counted);
}
