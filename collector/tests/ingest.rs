//! `POST /v1/batch` through the real server and router: what is stored, what is a duplicate,
//! what is refused by the consent check, and every kind of bad input with its status and field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use flate2::write::GzEncoder;
use flate2::Compression;
use hyper::http::Method;
use serde_json::{json, Value};
use std::io::Write;
use support::{batch_of, before_choice_fixture, fixture, track, uuid, TestServer};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn the_golden_fixture_is_stored_and_readable() {
    let server = TestServer::start().await;
    let reply = server.post_batch(&fixture()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({"stored": 4, "duplicates": 0, "refused": []})
    );

    let events = server.events().await;
    let sent = fixture();
    assert_eq!(events.len(), 4);
    for (stored, sent) in events.iter().zip(sent["events"].as_array().unwrap()) {
        assert_eq!(stored["event_id"], sent["id"]);
        assert_eq!(stored["batch_id"], "3f1c2a9e-7b4d-4e8a-9c2f-5d6e7f809a1b");
        assert_eq!(stored["type"], sent["type"]);
        assert_eq!(stored["name"], sent["name"]);
        assert_eq!(
            stored["timestamp_unixtime_ms"],
            sent["timestamp_unixtime_ms"]
        );
        assert_eq!(stored["purposes"], sent["purposes"]);
        assert_eq!(stored["anonymous_id"], sent["anonymous_id"]);
        assert_eq!(stored["properties"], sent["properties"]);
        assert_eq!(
            stored["user_id"],
            *sent.get("user_id").unwrap_or(&Value::Null)
        );
        assert_eq!(stored["page"], *sent.get("page").unwrap_or(&Value::Null));
        assert_eq!(
            stored["consent"],
            *sent.get("consent").unwrap_or(&Value::Null)
        );
        assert!(stored["seq"].as_i64().unwrap() > 0);
        assert!(stored["received_at"].as_i64().unwrap() > 1_700_000_000_000);
    }
    assert_eq!(
        server.stats().await,
        json!({"batches": 1, "events": 4, "duplicates": 0, "refused": 0, "consent_changes": 1, "suppressed": 0, "rejected_requests": {}})
    );
}

#[tokio::test]
async fn duplicate_event_ids_are_ignored_and_reported() {
    let server = TestServer::start().await;
    assert_eq!(server.post_batch(&fixture()).await.json()["stored"], 4);

    // A retry of the same batch (new batch id, same event ids), as after a lost response.
    let mut retry = fixture();
    retry["batch_id"] = json!(uuid(77));
    let reply = server.post_batch(&retry).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"stored": 0, "duplicates": 4, "refused": []})
    );

    // Partly new, and the same id twice within one batch.
    let new = track(&uuid(1), &["analytics"]);
    let old = fixture()["events"][1].clone();
    let reply = server
        .post_batch(&batch_of(vec![new.clone(), old, new]))
        .await;
    assert_eq!(
        reply.json(),
        json!({"stored": 1, "duplicates": 2, "refused": []})
    );

    assert_eq!(server.events().await.len(), 5);
    let stats = server.stats().await;
    assert_eq!(stats["events"], 5);
    assert_eq!(stats["duplicates"], 6);
    assert_eq!(stats["batches"], 3);
    assert_eq!(stats["consent_changes"], 1);
}

#[tokio::test]
async fn events_whose_purposes_are_not_granted_are_refused_and_listed() {
    let server = TestServer::start().await;
    // The fixture grants necessary and analytics, and records advertising as denied.
    let batch = batch_of(vec![
        track(&uuid(1), &["analytics"]),
        track(&uuid(2), &["advertising"]),
        track(&uuid(3), &["analytics", "personalization"]),
        track(&uuid(4), &["necessary"]),
    ]);
    let reply = server.post_batch(&batch).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({
            "stored": 2,
            "duplicates": 0,
            "refused": [
                {"id": uuid(2), "reason": "purpose_not_granted"},
                {"id": uuid(3), "reason": "purpose_not_granted"}
            ]
        })
    );
    let ids: Vec<Value> = server
        .events()
        .await
        .iter()
        .map(|e| e["event_id"].clone())
        .collect();
    assert_eq!(ids, [json!(uuid(1)), json!(uuid(4))]);
    assert_eq!(server.stats().await["refused"], 2);
}

#[tokio::test]
async fn a_ccpa_sale_opt_out_refuses_events_with_a_sale_purpose() {
    let server = TestServer::start().await; // --sale-purposes advertising
    let mut batch = batch_of(vec![
        track(&uuid(1), &["advertising"]),
        track(&uuid(2), &["analytics"]),
    ]);
    batch["consent_state"]["gdpr"]["advertising"]["consented"] = json!(true);
    let opt_out = json!({
        "consented": true, "timestamp_unixtime_ms": 1, "document": null,
        "location": "footer", "hardware_id": null, "source": "user"
    });
    batch["consent_state"]["ccpa"] = json!({ "data_sale_opt_out": opt_out });
    let reply = server.post_batch(&batch).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json()["refused"],
        json!([{"id": uuid(1), "reason": "sale_opted_out"}])
    );
    assert_eq!(reply.json()["stored"], 1);

    // Without the opt-out the same advertising event is stored.
    batch["consent_state"]["ccpa"]["data_sale_opt_out"]["consented"] = json!(false);
    batch["events"] = json!([track(&uuid(3), &["advertising"])]);
    assert_eq!(server.post_batch(&batch).await.json()["stored"], 1);
}

#[tokio::test]
async fn events_sent_before_the_first_choice_are_stored_without_an_anonymous_id() {
    let server = TestServer::start().await;
    let reply = server.post_batch(&before_choice_fixture()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({"stored": 1, "duplicates": 0, "refused": []})
    );

    // The first choice denies everything: its consent change has no anonymous id either. An
    // event needing a purpose the batch does not grant is still refused.
    let mut batch = before_choice_fixture();
    let mut change = fixture()["events"][0].clone();
    change["id"] = json!(uuid(1));
    change.as_object_mut().unwrap().remove("anonymous_id");
    change["purposes"] = json!(["necessary"]);
    let mut analytics = track(&uuid(2), &["analytics"]);
    analytics.as_object_mut().unwrap().remove("anonymous_id");
    batch["batch_id"] = json!(uuid(100));
    batch["events"] = json!([change, analytics]);
    let reply = server.post_batch(&batch).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({"stored": 1, "duplicates": 0, "refused": [{"id": uuid(2), "reason": "purpose_not_granted"}]})
    );

    let events = server.events().await;
    assert_eq!(events.len(), 2);
    let sent = before_choice_fixture()["events"][0].clone();
    assert_eq!(events[0]["event_id"], sent["id"]);
    assert_eq!(events[0]["properties"], sent["properties"]);
    assert_eq!(events[1]["type"], "consent_change");
    assert_eq!(events[1]["consent"], fixture()["events"][0]["consent"]);
    for event in &events {
        assert!(
            event.get("anonymous_id").is_none(),
            "no anonymous id field: {event}"
        );
        assert_eq!(event["user_id"], Value::Null);
    }
    assert_eq!(server.stats().await["consent_changes"], 1);

    // Present, it must still be a lower-case v4 UUID, and null is not absent.
    for bad in [json!("not-a-uuid"), json!(null), json!(7)] {
        let mut batch = before_choice_fixture();
        batch["events"][0]["anonymous_id"] = bad.clone();
        let reply = server.post_batch(&batch).await;
        assert_eq!(reply.status, 400, "{bad}");
        assert_eq!(reply.json()["field"], "events[0].anonymous_id", "{bad}");
    }
}

type Mutation = fn(&mut Value);

fn deep_object(levels: usize) -> Value {
    let mut value = json!({});
    for _ in 1..levels {
        value = json!({ "a": value });
    }
    value
}

#[tokio::test]
async fn invalid_batches_are_rejected_whole_naming_the_field() {
    let server = TestServer::start().await;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        ("bad version", |b| b["version"] = json!(2), "version"),
        ("version as text", |b| b["version"] = json!("1"), "version"),
        (
            "bad batch uuid",
            |b| b["batch_id"] = json!("not-a-uuid"),
            "batch_id",
        ),
        (
            "upper-case event uuid",
            |b| b["events"][1]["id"] = json!("1C2D3E4F-5A6B-4C7D-8E9F-0A1B2C3D4E5F"),
            "events[1].id",
        ),
        (
            "uuid of another version",
            |b| b["events"][2]["anonymous_id"] = json!("5a6b7c8d-9e0f-1a1b-9c3d-4e5f6a7b8c9d"),
            "events[2].anonymous_id",
        ),
        (
            "purpose breaking the name pattern",
            |b| b["events"][1]["purposes"] = json!(["Analytics"]),
            "events[1].purposes[0]",
        ),
        (
            "consent purpose breaking the name pattern",
            |b| {
                b["consent_state"]["gdpr"]["Bad Name"] =
                    b["consent_state"]["gdpr"]["analytics"].clone()
            },
            "consent_state.gdpr.Bad Name",
        ),
        (
            "repeated purpose",
            |b| b["events"][1]["purposes"] = json!(["analytics", "analytics"]),
            "events[1].purposes[1]",
        ),
        (
            "no purposes",
            |b| b["events"][1]["purposes"] = json!([]),
            "events[1].purposes",
        ),
        (
            "consent_change without consent",
            |b| {
                b["events"][0].as_object_mut().unwrap().remove("consent");
            },
            "events[0].consent",
        ),
        (
            "identify without user_id",
            |b| {
                b["events"][3].as_object_mut().unwrap().remove("user_id");
            },
            "events[3].user_id",
        ),
        (
            "properties an array",
            |b| b["events"][1]["properties"] = json!([1, 2]),
            "events[1].properties",
        ),
        (
            "properties a string",
            |b| b["events"][1]["properties"] = json!("x"),
            "events[1].properties",
        ),
        (
            "properties 17 levels deep",
            |b| b["events"][1]["properties"] = deep_object(17),
            "events[1].properties",
        ),
        (
            "properties over 64 KiB",
            |b| b["events"][1]["properties"] = json!({"big": "x".repeat(64 * 1024)}),
            "events[1].properties",
        ),
        (
            "too many events",
            |b| {
                let event = b["events"][1].clone();
                b["events"] = Value::Array(
                    (0..501)
                        .map(|i| {
                            let mut e = event.clone();
                            e["id"] = json!(uuid(i));
                            e
                        })
                        .collect(),
                );
            },
            "events",
        ),
        ("no events", |b| b["events"] = json!([]), "events"),
        (
            "unknown top-level field",
            |b| b["extra"] = json!(1),
            "extra",
        ),
        (
            "unknown event field",
            |b| b["events"][1]["color"] = json!("red"),
            "events[1].color",
        ),
        (
            "unknown consent record field",
            |b| b["consent_state"]["gdpr"]["analytics"]["why"] = json!("x"),
            "consent_state.gdpr.analytics.why",
        ),
        (
            "unknown event type",
            |b| b["events"][1]["type"] = json!("click"),
            "events[1].type",
        ),
        (
            "missing sent_at",
            |b| {
                b.as_object_mut().unwrap().remove("sent_at");
            },
            "sent_at",
        ),
        (
            "consent record missing source",
            |b| {
                b["consent_state"]["gdpr"]["analytics"]
                    .as_object_mut()
                    .unwrap()
                    .remove("source");
            },
            "consent_state.gdpr.analytics.source",
        ),
        (
            "consent source outside the enum",
            |b| b["consent_state"]["gdpr"]["analytics"]["source"] = json!("admin"),
            "consent_state.gdpr.analytics.source",
        ),
        (
            "document neither string nor null",
            |b| b["consent_state"]["gdpr"]["analytics"]["document"] = json!(3),
            "consent_state.gdpr.analytics.document",
        ),
        (
            "name too long",
            |b| b["events"][1]["name"] = json!("n".repeat(257)),
            "events[1].name",
        ),
        (
            "empty name",
            |b| b["events"][1]["name"] = json!(""),
            "events[1].name",
        ),
        (
            "timestamp past the year 9999",
            |b| b["events"][1]["timestamp_unixtime_ms"] = json!(253_402_300_800_000u64),
            "events[1].timestamp_unixtime_ms",
        ),
        (
            "negative timestamp",
            |b| b["sent_at"] = json!(-1),
            "sent_at",
        ),
        (
            "page url too long",
            |b| b["events"][2]["page"]["url"] = json!("u".repeat(2049)),
            "events[2].page.url",
        ),
        (
            "user_id null",
            |b| b["events"][3]["user_id"] = Value::Null,
            "events[3].user_id",
        ),
        (
            "previous consent state with an unknown field",
            |b| b["events"][0]["consent"]["previous"]["tcf"] = json!({}),
            "events[0].consent.previous.tcf",
        ),
        (
            "sdk name too long",
            |b| b["sdk"]["name"] = json!("s".repeat(65)),
            "sdk.name",
        ),
    ];
    for (name, mutate, field) in cases {
        let mut batch = fixture();
        mutate(&mut batch);
        let reply = server.post_batch(&batch).await;
        assert_eq!(reply.status, 400, "{name}: {reply:?}");
        let body = reply.json();
        assert_eq!(body["field"], field, "{name}: {body}");
        assert!(!body["error"].as_str().unwrap().is_empty(), "{name}");
    }
    for (name, body) in [
        ("not JSON", "{\"version\": 1,"),
        ("a JSON array", "[]"),
        ("trailing garbage", &format!("{} x", fixture())),
    ] {
        let reply = server
            .send(
                Method::POST,
                "/v1/batch",
                &[("content-type", "text/plain")],
                body.to_owned(),
            )
            .await;
        assert_eq!(reply.status, 400, "{name}: {reply:?}");
        assert_eq!(reply.json()["field"], Value::Null, "{name}");
    }
    let stats = server.stats().await;
    assert_eq!(
        stats["events"], 0,
        "nothing from a rejected batch is stored"
    );
    assert_eq!(stats["batches"], 0);
}

#[tokio::test]
async fn properties_exactly_16_levels_deep_are_accepted() {
    let server = TestServer::start().await;
    let mut batch = fixture();
    batch["events"][1]["properties"] = deep_object(16);
    assert_eq!(server.post_batch(&batch).await.status, 200);
    let stored = server.events().await;
    assert_eq!(stored[1]["properties"], deep_object(16));
}

#[tokio::test]
async fn a_wrong_or_missing_api_key_is_401() {
    let server = TestServer::start().await;
    for key in [json!("pk_wrong"), json!(""), json!(42)] {
        let mut batch = fixture();
        batch["api_key"] = key.clone();
        let reply = server.post_batch(&batch).await;
        assert_eq!(reply.status, 401, "{key}");
        assert_eq!(reply.json()["field"], "api_key");
    }
    // The key is checked before the rest: an invalid batch with a wrong key says only 401.
    let mut invalid = fixture();
    invalid["api_key"] = json!("pk_wrong");
    invalid["version"] = json!(9);
    assert_eq!(server.post_batch(&invalid).await.status, 401);

    // Without a key in the body, `?api_key=` is the fallback.
    let mut keyless = fixture();
    keyless.as_object_mut().unwrap().remove("api_key");
    assert_eq!(server.post_batch(&keyless).await.status, 401);
    let reply = server
        .send(
            Method::POST,
            "/v1/batch?api_key=pk_demo",
            &[("content-type", "text/plain")],
            keyless.to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(server.stats().await["rejected_requests"]["401"], 5);
}

#[tokio::test]
async fn content_types_from_fetch_beacon_and_servers_are_accepted_others_are_415() {
    let server = TestServer::start().await;
    for (i, content_type) in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/json",
        "application/json; charset=utf-8",
    ]
    .into_iter()
    .enumerate()
    {
        let batch = batch_of(vec![track(&uuid(i as u64), &["analytics"])]);
        let reply = server
            .send(
                Method::POST,
                "/v1/batch",
                &[("content-type", content_type)],
                batch.to_string(),
            )
            .await;
        assert_eq!(reply.status, 200, "{content_type}: {reply:?}");
    }
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("text/plain; charset=iso-8859-1"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|t| ("content-type", t))
            .into_iter()
            .collect();
        let reply = server
            .send(Method::POST, "/v1/batch", &headers, fixture().to_string())
            .await;
        assert_eq!(reply.status, 415, "{content_type:?}");
    }
    assert_eq!(server.stats().await["rejected_requests"]["415"], 4);
}

#[tokio::test]
async fn gzip_bodies_are_accepted_and_gzip_bombs_are_413() {
    let server = TestServer::start().await;
    let reply = server
        .send(
            Method::POST,
            "/v1/batch",
            &[("content-type", "text/plain"), ("content-encoding", "gzip")],
            gzip(fixture().to_string().as_bytes()),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["stored"], 4);

    // 16 MiB of spaces is a few KiB of gzip: small on the wire, too large once expanded.
    let bomb = gzip(&vec![b' '; 16 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let reply = server
        .send(
            Method::POST,
            "/v1/batch",
            &[("content-type", "text/plain"), ("content-encoding", "gzip")],
            bomb,
        )
        .await;
    assert_eq!(reply.status, 413, "{reply:?}");

    let reply = server
        .send(
            Method::POST,
            "/v1/batch",
            &[("content-type", "text/plain"), ("content-encoding", "gzip")],
            b"not gzip at all".to_vec(),
        )
        .await;
    assert_eq!(reply.status, 400);
    let reply = server
        .send(
            Method::POST,
            "/v1/batch",
            &[("content-type", "text/plain"), ("content-encoding", "br")],
            fixture().to_string(),
        )
        .await;
    assert_eq!(reply.status, 415);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let server = TestServer::start().await;
    let mut batch = fixture();
    batch["padding"] = json!("x".repeat(1024 * 1024));
    let reply = server.post_batch(&batch).await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_eq!(server.stats().await["rejected_requests"]["413"], 1);

    // The limit is configurable (never below what the SDK sends).
    let small = TestServer::start_with(|s| s.max_body_bytes = 300 * 1024).await;
    let mut batch = fixture();
    batch["events"][1]["properties"] = json!({"a": "x".repeat(60 * 1024)});
    let events = (0..6)
        .map(|i| {
            let mut e = batch["events"][1].clone();
            e["id"] = json!(uuid(i));
            e
        })
        .collect();
    let reply = small.post_batch(&batch_of(events)).await;
    assert_eq!(reply.status, 413);
}
