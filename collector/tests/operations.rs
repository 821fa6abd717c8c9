//! Operations: health and readiness, the Prometheus metrics and who may read them, and
//! `/v1/stats` read from counters kept as rows are stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hyper::http::Method;
use serde_json::json;
use support::{batch_of, fixture, track, uuid, TestServer};

/// The value of one sample line (`name{labels} value`) in the text format.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn health_and_readiness_check_the_store() {
    let server = TestServer::start().await;
    for path in ["/healthz", "/readyz"] {
        let reply = server.send(Method::GET, path, &[], "").await;
        assert_eq!(reply.status, 200, "{path}");
    }
    assert_eq!(
        &server.send(Method::GET, "/readyz", &[], "").await.body[..],
        b"ready"
    );
}

#[tokio::test]
async fn metrics_count_requests_events_refusals_and_the_audit_chain() {
    let server = TestServer::start().await;
    let (_, viewer) = server.token("viewer", "prometheus").await;
    let (_, dsr) = server.token("dsr", "dsr processor").await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    assert_eq!(
        server.post_batch(&fixture()).await.status,
        200,
        "4 duplicates"
    );
    let refused = batch_of(vec![track(&uuid(77), &["advertising"])]);
    assert_eq!(
        server.post_batch(&refused).await.json()["refused"][0]["reason"],
        "purpose_not_granted"
    );
    let mut keyless = fixture();
    keyless["api_key"] = json!("pk_nope");
    assert_eq!(server.post_batch(&keyless).await.status, 401);

    assert_eq!(
        server
            .bearer(&dsr, Method::GET, "/metrics", "")
            .await
            .status,
        403
    );
    assert_eq!(
        server.send(Method::GET, "/metrics", &[], "").await.status,
        401
    );
    let reply = server.bearer(&viewer, Method::GET, "/metrics", "").await;
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    for (series, value) in [
        ("consentry_events_accepted_total", 4.0),
        ("consentry_events_duplicate_total", 4.0),
        (
            "consentry_events_refused_total{reason=\"purpose_not_granted\"}",
            1.0,
        ),
        ("consentry_batches_rejected_total{status=\"401\"}", 1.0),
        (
            "consentry_http_requests_total{route=\"batch.ingest\",status=\"200\"}",
            3.0,
        ),
        (
            "consentry_http_requests_total{route=\"batch.ingest\",status=\"401\"}",
            1.0,
        ),
        (
            "consentry_http_requests_total{route=\"metrics.read\",status=\"403\"}",
            1.0,
        ),
        ("consentry_store_queue_depth", 0.0),
        ("consentry_connections_open", 1.0),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series}:\n{text}");
    }
    // collector.start, two token.create and the dsr token's denied read (the anonymous one has
    // no actor); this read is recorded after it is answered.
    assert_eq!(
        sample(&text, "consentry_audit_chain_length"),
        Some(4.0),
        "{text}"
    );
    assert!(sample(&text, "consentry_store_commit_seconds_count").unwrap() >= 3.0);
}

#[tokio::test]
async fn stats_are_read_from_counters_kept_as_rows_are_stored_and_survive_a_restart() {
    let server = TestServer::start().await;
    server.post_batch(&fixture()).await;
    let events = (0..30)
        .map(|i| track(&uuid(100 + i), &["analytics"]))
        .collect();
    server.post_batch(&batch_of(events)).await;
    let expected = json!({"batches": 2, "events": 34, "duplicates": 0, "refused": 0,
        "consent_changes": 1, "suppressed": 0, "rejected_requests": {}});
    assert_eq!(server.stats().await, expected);
    let dir = server.stop().await;
    // The counters agree with the rows.
    let rows: i64 = support::store::with_db(dir.path(), |conn| {
        conn.query_row("SELECT COUNT(*) FROM events", (), |r| r.get(0))
            .unwrap()
    });
    assert_eq!(rows, 34);
    let again = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(again.stats().await, expected);
    again.stop().await;
}

#[tokio::test]
async fn a_flood_of_rejected_requests_costs_at_most_a_commit_a_second() {
    let server = TestServer::start().await;
    let commits = |text: &str| sample(text, "consentry_store_commit_seconds_count").unwrap();
    let metrics = || async {
        String::from_utf8_lossy(&server.admin(Method::GET, "/metrics", "").await.body).into_owned()
    };
    let before = commits(&metrics().await);
    let started = std::time::Instant::now();
    let flood = 400;
    for _ in 0..flood {
        let reply = server
            .post_batch_with(&fixture(), &[("origin", "https://elsewhere.example")])
            .await;
        assert_eq!(reply.status, 403);
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The scrape itself is audited: one commit for its entry.
    let during = commits(&metrics().await) - before - 1.0;
    eprintln!("{flood} rejected requests in {elapsed:.2} s: {during} commits");
    assert!(
        during <= elapsed.ceil() + 1.0,
        "{during} commits for {flood} rejections in {elapsed:.2} s"
    );
    assert_eq!(
        server.stats().await["rejected_requests"]["403"],
        flood,
        "a read folds in every count"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    if support::store::on_postgres() {
        // PostgreSQL keeps its files in its own data directory, under its own user.
        return;
    }
    let server = TestServer::start().await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    for name in [
        "collector.sqlite3",
        "collector.sqlite3-wal",
        "collector.sqlite3-shm",
    ] {
        let mode = std::fs::metadata(server.dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
    let dir = std::fs::metadata(server.dir.path())
        .unwrap()
        .permissions()
        .mode();
    eprintln!(
        "data directory mode {:o} (made by the test's tempdir)",
        dir & 0o777
    );
}
