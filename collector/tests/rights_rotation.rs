//! `key rotate` over the data-subject tables: identity links, suppressions, requests (their
//! identities and export tokens) and the callback outbox are re-sealed, so after the rotation the
//! new key alone reads them and the suppression list still applies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use base64::Engine;
use consentry_collector::config::{Encryption, KeySource};
use hyper::http::Method;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::binary::BINARY;
use support::{batch_of, fixture, track, uuid, TestServer};

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
async fn the_rotation_re_seals_links_suppressions_requests_and_callbacks() {
    let keys_dir = tempfile::tempdir().unwrap();
    let old = key_file(keys_dir.path(), "old.key", 5);
    let new = key_file(keys_dir.path(), "new.key", 6);
    let server = TestServer::start_with(|s| {
        s.encryption = keys(&old, &[]);
        s.rights.poll_interval = Duration::from_millis(20);
    })
    .await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    assert_eq!(
        server
            .admin(Method::PUT, "/v1/suppressions/user-7", "")
            .await
            .status,
        201
    );
    let (_, controller) = server.token("dsr", "acme").await;
    let id = uuid(9501);
    let body = json!({
        "subject_request_id": id, "subject_request_type": "access", "regulation": "gdpr",
        "submitted_time": "2026-12-01T10:00:00Z",
        "subject_identities": [{"identity_type": "controller_customer_id", "identity_value": "user-42", "identity_format": "raw"}],
        "status_callback_urls": ["https://controller.invalid/opendsr/callbacks"],
    });
    let created = server
        .bearer(
            &controller,
            Method::POST,
            "/opendsr/v1/requests",
            &body.to_string(),
        )
        .await;
    assert_eq!(created.status, 201);
    let mut completed = false;
    for _ in 0..500 {
        let status = server
            .bearer(
                &controller,
                Method::GET,
                &format!("/opendsr/v1/requests/{id}"),
                "",
            )
            .await
            .json();
        if status["request_status"] == "completed" {
            completed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(completed);
    let dir = server.stop().await;
    // Nothing of the people is in clear in the file (links, suppressions, requests included).
    for needle in ["user-42", "user-7", "5a6b7c8d-9e0f-4a1b-9c3d-4e5f6a7b8c9d"] {
        assert!(
            !support::store::stored_contains(dir.path(), needle),
            "{needle} is in the database"
        );
    }

    // The collector is stopped: an offline rotation.
    let output = std::process::Command::new(BINARY)
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
    assert!(output.status.success(), "{output:?}");

    // The new key alone.
    let server = TestServer::start_in(dir, |s| s.encryption = keys(&new, &[])).await;
    let view = server.admin(Method::GET, "/v1/users/user-42", "").await;
    assert_eq!(view.status, 200, "{view:?}");
    let view = view.json();
    assert_eq!(view["identity_links"][0]["user_id"], "user-42");
    assert_eq!(view["events"].as_array().unwrap().len(), 4);
    let status = server
        .bearer(
            &controller,
            Method::GET,
            &format!("/opendsr/v1/requests/{id}"),
            "",
        )
        .await;
    assert_eq!(status.status, 200, "{status:?}");
    assert!(status.json()["results_url"].is_string());
    // The suppression list still applies under the new key's index.
    let mut suppressed = track(&uuid(9600), &["analytics"]);
    suppressed["user_id"] = json!("user-7");
    server.post_batch(&batch_of(vec![suppressed])).await;
    assert_eq!(server.stats().await["suppressed"], 1);
    assert_eq!(server.events().await.len(), 4);
}
