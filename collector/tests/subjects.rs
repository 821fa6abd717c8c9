//! One data subject through the admin API, against the real server and SQLite: identity links
//! from identify events, the per-user view, suppression before storage, erasure at once with a
//! tombstone, rectification of traits, and the audit log naming people by index only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hyper::http::Method;
use serde_json::{json, Value};
use support::{batch_of, fixture, track, uuid, TestServer};

/// The fixture's visitor and the user its identify event names.
const ANONYMOUS: &str = "5a6b7c8d-9e0f-4a1b-9c3d-4e5f6a7b8c9d";
const USER: &str = "user-42";

async fn audit(server: &TestServer) -> Vec<Value> {
    server
        .admin(Method::GET, "/v1/audit?limit=1000", "")
        .await
        .json()["entries"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn the_user_view_joins_a_user_to_its_anonymous_ids_and_their_consent_history() {
    let server = TestServer::start().await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    // A later event of the same visitor carries no user id: the link finds it.
    let later = batch_of(vec![track(&uuid(1), &["analytics"])]);
    assert_eq!(server.post_batch(&later).await.status, 200);

    let view = server
        .admin(Method::GET, &format!("/v1/users/{USER}"), "")
        .await;
    assert_eq!(view.status, 200, "{view:?}");
    let view = view.json();
    assert_eq!(view["events"].as_array().unwrap().len(), 5, "{view}");
    assert_eq!(view["identity_links"][0]["anonymous_id"], ANONYMOUS);
    assert_eq!(view["identity_links"][0]["user_id"], USER);
    assert_eq!(view["consent_history"].as_array().unwrap().len(), 1);
    assert_eq!(
        view["consent_history"][0]["current"]["gdpr"]["analytics"]["document"],
        "notice-v3"
    );
    assert_eq!(view["suppressed_since_ms"], Value::Null);

    // Paged by the events' sequence numbers.
    let page = server
        .admin(Method::GET, &format!("/v1/users/{USER}?limit=2"), "")
        .await
        .json();
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let next = page["next_since"].as_i64().unwrap();
    let rest = server
        .admin(
            Method::GET,
            &format!("/v1/users/{USER}?since={next}&limit=10"),
            "",
        )
        .await
        .json();
    assert_eq!(rest["events"].as_array().unwrap().len(), 3);

    // The anonymous id finds the same person.
    let by_anonymous = server
        .admin(Method::GET, &format!("/v1/users/{ANONYMOUS}"), "")
        .await
        .json();
    assert_eq!(by_anonymous["events"].as_array().unwrap().len(), 5);

    // A viewer may read it; the audit log names the person by index, never in clear.
    let (_, viewer) = server.token("viewer", "support desk").await;
    let read = server
        .bearer(&viewer, Method::GET, &format!("/v1/users/{USER}"), "")
        .await;
    assert_eq!(read.status, 200);
    let entries = audit(&server).await;
    let reads: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "user.read")
        .collect();
    assert_eq!(reads.len(), 5);
    for entry in &entries {
        let text = entry.to_string();
        assert!(!text.contains(USER) && !text.contains(ANONYMOUS), "{text}");
    }

    // Bad input names the field.
    let long = "x".repeat(257);
    let reply = server
        .admin(Method::GET, &format!("/v1/users/{long}"), "")
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["field"], "id");
    let reply = server
        .admin(Method::GET, &format!("/v1/users/{USER}?limit=0"), "")
        .await;
    assert_eq!(reply.json()["field"], "limit");
}

#[tokio::test]
async fn suppressed_identities_are_dropped_before_storage_and_answered_as_stored() {
    let server = TestServer::start().await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    let put = server
        .admin(Method::PUT, &format!("/v1/suppressions/{USER}"), "")
        .await;
    assert_eq!(put.status, 201, "{put:?}");
    let again = server
        .admin(Method::PUT, &format!("/v1/suppressions/{USER}"), "")
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["added"], false);

    // The visitor's anonymous id is linked to the suppressed user: its events are dropped too.
    let events: Vec<Value> = (0..3)
        .map(|i| track(&uuid(10 + i), &["analytics"]))
        .collect();
    let reply = server.post_batch(&batch_of(events)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["stored"], 3, "answered as if stored");
    assert_eq!(server.events().await.len(), 4, "nothing of them stored");
    let stats = server.stats().await;
    assert_eq!(stats["suppressed"], 3);
    assert_eq!(stats["events"], 4);
    let metrics = server.admin(Method::GET, "/metrics", "").await;
    assert!(String::from_utf8_lossy(&metrics.body).contains("consentry_events_suppressed_total 3"));
    let view = server
        .admin(Method::GET, &format!("/v1/users/{USER}"), "")
        .await
        .json();
    assert!(view["suppressed_since_ms"].as_i64().is_some());

    // Another visitor is not suppressed.
    let mut other = track(&uuid(20), &["analytics"]);
    other["anonymous_id"] = json!(uuid(21));
    server.post_batch(&batch_of(vec![other])).await;
    assert_eq!(server.events().await.len(), 5);

    // Off the list, the visitor's events are stored again.
    let removed = server
        .admin(Method::DELETE, &format!("/v1/suppressions/{USER}"), "")
        .await;
    assert_eq!(removed.json()["removed"], true);
    server
        .post_batch(&batch_of(vec![track(&uuid(30), &["analytics"])]))
        .await;
    assert_eq!(server.events().await.len(), 6);
    let entries = audit(&server).await;
    assert!(entries
        .iter()
        .any(|e| e["action"] == "suppression.add" && e["outcome"] == "201"));
    assert!(entries
        .iter()
        .any(|e| e["action"] == "suppression.remove" && e["outcome"] == "200"));
}

#[tokio::test]
async fn erasure_deletes_a_user_and_the_ids_linked_to_it_and_leaves_a_tombstone() {
    let server = TestServer::start().await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    let mut stranger = track(&uuid(40), &["analytics"]);
    stranger["anonymous_id"] = json!(uuid(41));
    server.post_batch(&batch_of(vec![stranger])).await;
    assert_eq!(server.events().await.len(), 5);

    let (_, viewer) = server.token("viewer", "support desk").await;
    let refused = server
        .bearer(&viewer, Method::DELETE, &format!("/v1/users/{USER}"), "")
        .await;
    assert_eq!(refused.status, 403);
    let (_, editor) = server.token("editor", "dpo").await;
    let erased = server
        .bearer(&editor, Method::DELETE, &format!("/v1/users/{USER}"), "")
        .await;
    assert_eq!(erased.status, 200, "{erased:?}");
    let body = erased.json();
    assert_eq!(body["erased"]["events"], 4);
    assert_eq!(body["erased"]["consent_changes"], 1);
    assert_eq!(body["erased"]["identity_links"], 1);
    let request_id = body["request_id"].as_str().unwrap().to_owned();

    let left = server.events().await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["anonymous_id"], uuid(41));
    let view = server
        .admin(Method::GET, &format!("/v1/users/{USER}"), "")
        .await
        .json();
    assert_eq!(view["events"], json!([]));
    assert_eq!(view["identity_links"], json!([]));
    assert_eq!(view["consent_history"], json!([]));
    assert_eq!(view["erasures"][0]["request_id"], request_id.as_str());
    assert_eq!(view["erasures"][0]["events_deleted"], 4);
    let entries = audit(&server).await;
    let entry = entries
        .iter()
        .find(|e| e["action"] == "user.erase" && e["outcome"] == "200")
        .unwrap();
    assert!(entry["actor"].as_str().unwrap().starts_with("dpo [tok_"));
    assert!(entry["target"].as_str().unwrap().contains(&request_id));

    // Nothing of the person is left in the database file.
    let dir = server.stop().await;
    let (rows, tombstones): (i64, i64) = support::store::with_db(dir.path(), |conn| {
        conn.query_row(
            "SELECT (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM consent_changes)
             + (SELECT COUNT(*) FROM identity_links), (SELECT COUNT(*) FROM erasures)",
            (),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    });
    assert_eq!(rows, 1);
    assert_eq!(tombstones, 1);
}

#[tokio::test]
async fn rectified_traits_replace_the_stored_ones_and_the_change_is_audited() {
    let server = TestServer::start().await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    let reply = server
        .admin(
            Method::PATCH,
            &format!("/v1/users/{USER}/traits"),
            r#"{"traits": {"plan": "team", "name": "Ada"}}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["updated_events"], 1);
    let view = server
        .admin(Method::GET, &format!("/v1/users/{USER}"), "")
        .await
        .json();
    let identify = view["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "identify")
        .unwrap()
        .clone();
    assert_eq!(
        identify["properties"],
        json!({"plan": "team", "name": "Ada"})
    );
    assert_eq!(identify["user_id"], USER);
    assert_eq!(identify["anonymous_id"], ANONYMOUS);

    let removed = server
        .admin(
            Method::PATCH,
            &format!("/v1/users/{USER}/traits"),
            r#"{"traits": {"name": null}}"#,
        )
        .await;
    assert_eq!(removed.status, 200);
    for (body, field) in [
        (r#"{"traits": {}}"#, "traits"),
        (r#"{"traits": []}"#, "traits"),
        (r#"{"name": "x"}"#, "traits"),
    ] {
        let reply = server
            .admin(Method::PATCH, &format!("/v1/users/{USER}/traits"), body)
            .await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.json()["field"], field, "{body}");
    }
    let entries = audit(&server).await;
    let entry = entries
        .iter()
        .find(|e| e["action"] == "user.rectify" && e["outcome"] == "200")
        .unwrap();
    assert!(
        entry["target"]
            .as_str()
            .unwrap()
            .contains("names=name,plan"),
        "{entry}"
    );
}

#[tokio::test]
async fn a_subject_change_and_its_audit_entry_commit_together_or_not_at_all() {
    let server = TestServer::start().await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    let before = server.events().await.len();
    support::store::refuse_audit_inserts(server.dir.path());
    for (method, path, body) in [
        (Method::DELETE, format!("/v1/users/{USER}"), ""),
        (
            Method::PATCH,
            format!("/v1/users/{USER}/traits"),
            r#"{"traits": {"name": "Ada"}}"#,
        ),
        (Method::PUT, format!("/v1/suppressions/{USER}"), ""),
    ] {
        let reply = server.admin(method.clone(), &path, body).await;
        assert_eq!(reply.status, 503, "{method} {path}: {reply:?}");
    }
    support::store::allow_audit_inserts(server.dir.path());
    assert_eq!(server.events().await.len(), before, "nothing was erased");
    let view = server
        .admin(Method::GET, &format!("/v1/users/{USER}"), "")
        .await
        .json();
    assert_eq!(view["suppressed_since_ms"], Value::Null, "nor suppressed");
    assert!(!view.to_string().contains("Ada"), "nor rectified: {view}");
}
