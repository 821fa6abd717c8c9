//! The OpenDSR processor API against the real server and SQLite: discovery and the published
//! certificate, signed answers, idempotent requests, validation with the spec's error object,
//! fulfilment (erasure and exports), cancellation, and status callbacks received and verified
//! with the published certificate, retried with every attempt recorded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use base64::Engine;
use consentry_collector::clock::Clock;
use hyper::http::Method;
use serde_json::{json, Value};
use std::time::Duration;
use support::client::Reply;
use support::dsr::{Receiver, Verifier};
use support::{fixture, uuid, TestServer};

const USER: &str = "user-42";
const DAY_MS: i64 = 86_400_000;

async fn dsr_server(
    customize: impl FnOnce(&mut consentry_collector::config::Settings),
) -> TestServer {
    TestServer::start_with(|s| {
        s.rights.allow_loopback_http_callbacks = true;
        s.rights.poll_interval = Duration::from_millis(20);
        s.rights.callback_backoff = Duration::from_millis(20);
        customize(s);
    })
    .await
}

/// The verifier of the certificate discovery names.
async fn published(server: &TestServer) -> Verifier {
    let discovery = server
        .send(Method::GET, "/opendsr/v1/discovery", &[], "")
        .await;
    assert_eq!(discovery.status, 200);
    let url = discovery.json()["processor_certificate"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = url
        .split_once(&server.addr.to_string())
        .unwrap()
        .1
        .to_owned();
    let cert = server.send(Method::GET, &path, &[], "").await;
    assert_eq!(cert.status, 200);
    Verifier::from_pem(&cert.body)
}

fn request_body(id: &str, kind: &str, callbacks: &[String]) -> String {
    json!({
        "subject_request_id": id,
        "subject_request_type": kind,
        "regulation": "gdpr",
        "submitted_time": "2026-12-01T10:00:00Z",
        "api_version": "2.0",
        "subject_identities": [
            {"identity_type": "controller_customer_id", "identity_value": USER, "identity_format": "raw"}
        ],
        "status_callback_urls": callbacks,
    })
    .to_string()
}

fn assert_signed(verifier: &Verifier, reply: &Reply) {
    assert_eq!(
        reply.header("x-opendsr-processor-domain"),
        Some("localhost")
    );
    let signature = reply.header("x-opendsr-signature").unwrap();
    assert!(verifier.verifies(&reply.body, signature), "{reply:?}");
    assert_eq!(reply.header("x-opengdpr-signature"), Some(signature));
}

async fn wait_for_status(server: &TestServer, token: &str, id: &str, status: &str) -> Reply {
    for _ in 0..500 {
        let reply = server
            .bearer(
                token,
                Method::GET,
                &format!("/opendsr/v1/requests/{id}"),
                "",
            )
            .await;
        if reply.json()["request_status"] == status {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("request {id} never became {status}");
}

async fn wait_for_callbacks(receiver: &Receiver, n: usize) -> Vec<support::dsr::Received> {
    for _ in 0..500 {
        let got = receiver.received();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("only {} callbacks arrived", receiver.received().len());
}

#[tokio::test]
async fn an_erasure_request_is_signed_fulfilled_and_every_status_change_is_called_back_signed() {
    // The controller's endpoint fails twice before it accepts.
    let receiver = Receiver::start(&[500, 503]).await;
    let server = dsr_server(|_| {}).await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    let verifier = published(&server).await;
    assert_eq!(verifier.names, ["localhost"]);
    let (_, controller) = server.token("dsr", "acme-controller").await;

    let id = uuid(7001);
    let body = request_body(&id, "erasure", &[receiver.url()]);
    let created = server
        .bearer(&controller, Method::POST, "/opendsr/v1/requests", &body)
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_signed(&verifier, &created);
    let answer = created.json();
    assert_eq!(answer["subject_request_id"], id.as_str());
    assert_eq!(answer["controller_id"], "acme-controller");
    let encoded = base64::engine::general_purpose::STANDARD
        .decode(answer["encoded_request"].as_str().unwrap())
        .unwrap();
    assert_eq!(encoded, body.as_bytes());
    // processor_signature signs the body without itself.
    let mut unsigned = answer.clone();
    let inner = unsigned
        .as_object_mut()
        .unwrap()
        .remove("processor_signature")
        .unwrap();
    assert!(verifier.verifies(unsigned.to_string().as_bytes(), inner.as_str().unwrap()));
    let received =
        consentry_collector::rights::rfc3339::parse(answer["received_time"].as_str().unwrap())
            .unwrap();
    let expected = consentry_collector::rights::rfc3339::parse(
        answer["expected_completion_time"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(
        expected - received,
        30 * DAY_MS,
        "the default SLA is 720 hours"
    );

    // The same request again is the same request.
    let again = server
        .bearer(&controller, Method::POST, "/opendsr/v1/requests", &body)
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["received_time"], answer["received_time"]);
    // A different request under the same id is refused.
    let other = request_body(&id, "access", &[]);
    let conflict = server
        .bearer(&controller, Method::POST, "/opendsr/v1/requests", &other)
        .await;
    assert_eq!(conflict.status, 400);
    assert_eq!(
        conflict.json()["error"]["errors"][0]["field"],
        "subject_request_id"
    );

    let done = wait_for_status(&server, &controller, &id, "completed").await;
    assert_signed(&verifier, &done);
    assert_eq!(done.json()["results_count"], 4);
    assert_eq!(server.events().await, Vec::<Value>::new());

    // pending, in_progress and completed were each called back, signed; the first two
    // attempts failed and were retried.
    let got = wait_for_callbacks(&receiver, 5).await;
    let mut delivered = Vec::new();
    for callback in &got {
        assert_eq!(callback.header("x-opendsr-processor-domain"), "localhost");
        assert!(verifier.verifies(&callback.body, callback.header("x-opendsr-signature")));
        let body = callback.json();
        assert_eq!(body["status_callback_url"], receiver.url());
        assert_eq!(body["subject_request_id"], id.as_str());
        assert_eq!(body["controller_id"], "acme-controller");
        assert!(body["expected_completion_time"].is_string());
        delivered.push(body["request_status"].as_str().unwrap().to_owned());
    }
    for status in ["pending", "in_progress", "completed"] {
        assert!(delivered.iter().any(|s| s == status), "{delivered:?}");
    }
    let status = wait_for_status(&server, &controller, &id, "completed")
        .await
        .json();
    let attempts: Vec<String> = status["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["history"].as_array().unwrap().clone())
        .map(|a| a["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert!(attempts.contains(&"500".to_owned()), "{attempts:?}");
    assert!(attempts.contains(&"503".to_owned()), "{attempts:?}");
    let metrics =
        String::from_utf8_lossy(&server.admin(Method::GET, "/metrics", "").await.body).into_owned();
    assert!(
        metrics.contains("consentry_dsr_callback_failures_total 2"),
        "{metrics}"
    );

    // Every status change is in the audit log, and the person is named nowhere in it.
    let audit = server
        .admin(Method::GET, "/v1/audit?limit=1000", "")
        .await
        .json();
    let changes: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "dsr.status" && e["target"] == id.as_str())
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["pending", "in_progress", "completed"]);
    assert!(!audit.to_string().contains(USER));

    // Another controller does not see it.
    let (_, stranger) = server.token("dsr", "other-controller").await;
    let hidden = server
        .bearer(
            &stranger,
            Method::GET,
            &format!("/opendsr/v1/requests/{id}"),
            "",
        )
        .await;
    assert_eq!(hidden.status, 404);
    // It cannot be cancelled any more.
    let late = server
        .bearer(
            &controller,
            Method::DELETE,
            &format!("/opendsr/v1/requests/{id}"),
            "",
        )
        .await;
    assert_eq!(late.status, 409);
}

#[tokio::test]
async fn an_export_is_served_for_seven_days_then_gone() {
    let clock = Clock::manual(1_800_000_000_000);
    let server = dsr_server({
        let clock = clock.clone();
        move |s| s.clock = clock
    })
    .await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    let (_, controller) = server.token("dsr", "acme-controller").await;
    for (n, kind) in [(7101, "access"), (7102, "portability")] {
        let id = uuid(n);
        let created = server
            .bearer(
                &controller,
                Method::POST,
                "/opendsr/v1/requests",
                &request_body(&id, kind, &[]),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        let done = wait_for_status(&server, &controller, &id, "completed")
            .await
            .json();
        let url = done["results_url"].as_str().unwrap().to_owned();
        assert_eq!(
            done["results_count"], 6,
            "4 events, 1 consent change, 1 identity link"
        );
        let path = url
            .split_once(&server.addr.to_string())
            .unwrap()
            .1
            .to_owned();
        let download = server.send(Method::GET, &path, &[], "").await;
        assert_eq!(download.status, 200);
        assert_eq!(
            download.header("content-type"),
            Some("application/x-ndjson")
        );
        let lines: Vec<Value> = String::from_utf8_lossy(&download.body)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 6);
        assert!(lines
            .iter()
            .any(|l| l["record"] == "event" && l["event"]["user_id"] == USER));
        assert!(lines.iter().any(|l| l["record"] == "consent_change"));
        // Encrypted at rest like the database.
        let file = server
            .dir
            .path()
            .join("exports")
            .join(format!("{id}.ndjson.sealed"));
        let raw = std::fs::read(&file).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains(USER));

        clock.advance(7 * DAY_MS - 1000);
        assert_eq!(server.send(Method::GET, &path, &[], "").await.status, 200);
        clock.advance(1000);
        let gone = server.send(Method::GET, &path, &[], "").await;
        assert_eq!(gone.status, 410);
        assert!(!file.exists(), "the file is deleted");
        assert_eq!(server.send(Method::GET, &path, &[], "").await.status, 410);
        let wrong = format!("/v1/exports/{}", "A".repeat(43));
        assert_eq!(server.send(Method::GET, &wrong, &[], "").await.status, 404);
    }
    let audit = server
        .admin(Method::GET, "/v1/audit?limit=1000", "")
        .await
        .json();
    let downloads: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "export.download")
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        downloads,
        ["200", "200", "410", "410", "200", "200", "410", "410"]
    );
    let metrics = server.admin(Method::GET, "/metrics", "").await;
    let metrics = String::from_utf8_lossy(&metrics.body);
    for line in [
        "consentry_dsr_requests_total{origin=\"opendsr\",type=\"access\"} 1",
        "consentry_dsr_requests_total{origin=\"opendsr\",type=\"portability\"} 1",
        "consentry_dsr_completed_total{type=\"access\"} 1",
        "consentry_dsr_completed_total{type=\"portability\"} 1",
        "consentry_export_downloads_total{status=\"200\"} 4",
        "consentry_export_downloads_total{status=\"404\"} 2",
        "consentry_export_downloads_total{status=\"410\"} 4",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn erasing_a_person_deletes_the_exports_made_for_them() {
    let server = dsr_server(|_| {}).await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    let (_, controller) = server.token("dsr", "acme-controller").await;
    let id = uuid(7151);
    let created = server
        .bearer(
            &controller,
            Method::POST,
            "/opendsr/v1/requests",
            &request_body(&id, "access", &[]),
        )
        .await;
    assert_eq!(created.status, 201);
    let done = wait_for_status(&server, &controller, &id, "completed")
        .await
        .json();
    let url = done["results_url"].as_str().unwrap().to_owned();
    let path = url
        .split_once(&server.addr.to_string())
        .unwrap()
        .1
        .to_owned();
    assert_eq!(server.send(Method::GET, &path, &[], "").await.status, 200);
    let file = server
        .dir
        .path()
        .join("exports")
        .join(format!("{id}.ndjson.sealed"));
    assert!(file.exists());
    // Erased through the anonymous id the user was identified with.
    let erased = server
        .admin(
            Method::DELETE,
            "/v1/users/5a6b7c8d-9e0f-4a1b-9c3d-4e5f6a7b8c9d",
            "",
        )
        .await;
    assert_eq!(erased.json()["erased"]["exports"], 1, "{erased:?}");
    let erased_events = erased.json()["erased"]["events"].as_u64().unwrap();
    let metrics = server.admin(Method::GET, "/metrics", "").await;
    let line = format!("consentry_events_erased_total {erased_events}");
    assert!(
        String::from_utf8_lossy(&metrics.body)
            .lines()
            .any(|l| l == line),
        "{line}"
    );
    assert!(!file.exists());
    assert_eq!(server.send(Method::GET, &path, &[], "").await.status, 404);
    // The finished access request keeps no identity of the person: its sealed identities are
    // now the empty list (format byte, nonce, `[]`, tag: 31 bytes).
    let sealed: i64 = support::store::with_db(server.dir.path(), |db| {
        db.query_row(
            "SELECT CAST(length(identities) AS BIGINT) FROM dsr_requests WHERE id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap()
    });
    assert_eq!(sealed, 31, "identities cleared");
}

#[tokio::test]
async fn the_prior_opengdpr_names_are_honoured_and_a_request_without_regulation_is_gdpr() {
    let server = dsr_server(|s| s.rights.worker = false).await;
    let verifier = published(&server).await;
    let (_, controller) = server.token("dsr", "acme-controller").await;
    let id = uuid(7401);
    let mut body: Value = serde_json::from_str(&request_body(&id, "erasure", &[])).unwrap();
    body.as_object_mut().unwrap().remove("regulation");
    body["api_version"] = json!("1.0");
    let body = body.to_string();
    let refused = server
        .bearer(&controller, Method::POST, "/opendsr/v1/requests", &body)
        .await;
    assert_eq!(refused.json()["error"]["errors"][0]["field"], "regulation");
    let created = server
        .bearer(
            &controller,
            Method::POST,
            "/opendsr/v1/opengdpr_requests",
            &body,
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(
        created.header("x-opengdpr-processor-domain"),
        Some("localhost")
    );
    assert!(verifier.verifies(
        &created.body,
        created.header("x-opengdpr-signature").unwrap()
    ));
    let status = server
        .bearer(
            &controller,
            Method::GET,
            &format!("/opendsr/v1/opengdpr_requests/{id}"),
            "",
        )
        .await;
    assert_eq!(status.json()["request_status"], "pending");
    let cancelled = server
        .bearer(
            &controller,
            Method::DELETE,
            &format!("/opendsr/v1/opengdpr_requests/{id}"),
            "",
        )
        .await;
    assert_eq!(cancelled.status, 202);
}

#[tokio::test]
async fn a_request_whose_fulfilment_fails_stays_in_progress_and_completes_once_it_can() {
    let server = dsr_server(|_| {}).await;
    assert_eq!(server.post_batch(&fixture()).await.status, 200);
    // A file where the exports directory should be: writing the export fails.
    let blocker = server.dir.path().join("exports");
    std::fs::write(&blocker, "not a directory").unwrap();
    let (_, controller) = server.token("dsr", "acme-controller").await;
    let id = uuid(7501);
    let created = server
        .bearer(
            &controller,
            Method::POST,
            "/opendsr/v1/requests",
            &request_body(&id, "portability", &[]),
        )
        .await;
    assert_eq!(created.status, 201);
    wait_for_status(&server, &controller, &id, "in_progress").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = server
        .bearer(
            &controller,
            Method::GET,
            &format!("/opendsr/v1/requests/{id}"),
            "",
        )
        .await
        .json();
    assert_eq!(status["request_status"], "in_progress");
    std::fs::remove_file(&blocker).unwrap();
    let done = wait_for_status(&server, &controller, &id, "completed")
        .await
        .json();
    assert_eq!(done["results_count"], 6);
    let audit = server
        .admin(Method::GET, "/v1/audit?limit=1000", "")
        .await
        .json();
    let completed = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "dsr.status" && e["target"] == id.as_str() && e["outcome"] == "completed"
        })
        .count();
    assert_eq!(completed, 1);
}

#[tokio::test]
async fn a_pending_request_is_cancelled_and_called_back() {
    let receiver = Receiver::start(&[]).await;
    let server = dsr_server(|s| s.rights.worker = false).await;
    let verifier = published(&server).await;
    let (_, controller) = server.token("dsr", "acme-controller").await;
    let id = uuid(7201);
    let created = server
        .bearer(
            &controller,
            Method::POST,
            "/opendsr/v1/requests",
            &request_body(&id, "erasure", &[receiver.url()]),
        )
        .await;
    assert_eq!(created.status, 201);
    let cancelled = server
        .bearer(
            &controller,
            Method::DELETE,
            &format!("/opendsr/v1/requests/{id}"),
            "",
        )
        .await;
    assert_eq!(cancelled.status, 202, "{cancelled:?}");
    assert_signed(&verifier, &cancelled);
    assert_eq!(cancelled.json()["subject_request_id"], id.as_str());
    assert!(cancelled.json()["processor_signature"].is_string());
    let status = server
        .bearer(
            &controller,
            Method::GET,
            &format!("/opendsr/v1/requests/{id}"),
            "",
        )
        .await;
    assert_eq!(status.json()["request_status"], "cancelled");
    let got = wait_for_callbacks(&receiver, 2).await;
    let statuses: Vec<Value> = got
        .iter()
        .map(|c| c.json()["request_status"].clone())
        .collect();
    assert_eq!(statuses, [json!("pending"), json!("cancelled")]);
    let missing = server
        .bearer(
            &controller,
            Method::DELETE,
            &format!("/opendsr/v1/requests/{}", uuid(7299)),
            "",
        )
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn bad_requests_are_400_with_the_spec_error_object_naming_the_field() {
    let server = dsr_server(|s| s.rights.worker = false).await;
    let (_, controller) = server.token("dsr", "acme-controller").await;
    let verifier = published(&server).await;
    let good: Value = serde_json::from_str(&request_body(&uuid(7301), "erasure", &[])).unwrap();
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value;
        }
        body.to_string()
    };
    let identity = |t: &str, v: &str, f: &str| json!([{"identity_type": t, "identity_value": v, "identity_format": f}]);
    for (body, field) in [
        (
            with("subject_request_id", Value::Null),
            "subject_request_id",
        ),
        (
            with(
                "subject_request_id",
                json!("A7551968-D5D6-44B2-9831-815AC9017798"),
            ),
            "subject_request_id",
        ),
        (
            with("subject_request_type", json!("deletion")),
            "subject_request_type",
        ),
        (with("regulation", json!("hipaa")), "regulation"),
        (with("regulation", Value::Null), "regulation"),
        (with("submitted_time", json!("yesterday")), "submitted_time"),
        (with("subject_identities", json!([])), "subject_identities"),
        (
            with("subject_identities", identity("ios_vendor_id", "x", "raw")),
            "subject_identities[0].identity_type",
        ),
        (
            with(
                "subject_identities",
                identity("email", "a@b.example", "md5"),
            ),
            "subject_identities[0].identity_format",
        ),
        (
            with("subject_identities", identity("email", "nothex", "sha256")),
            "subject_identities[0].identity_value",
        ),
        (
            with(
                "subject_identities",
                json!([{"identity_type": "email", "identity_format": "raw"}]),
            ),
            "subject_identities[0].identity_value",
        ),
        (
            with(
                "status_callback_urls",
                json!(["http://controller.example/cb"]),
            ),
            "status_callback_urls[0]",
        ),
        (
            with(
                "status_callback_urls",
                json!(["ftp://controller.example/cb"]),
            ),
            "status_callback_urls[0]",
        ),
        (
            with(
                "status_callback_urls",
                json!("https://controller.example/cb"),
            ),
            "status_callback_urls",
        ),
        (with("extensions", json!([1])), "extensions"),
    ] {
        let reply = server
            .bearer(&controller, Method::POST, "/opendsr/v1/requests", &body)
            .await;
        assert_eq!(reply.status, 400, "{body}");
        let error = &reply.json()["error"];
        assert_eq!(error["code"], 400, "{body}");
        assert_eq!(error["errors"][0]["field"], field, "{body}");
        assert!(
            error["message"].as_str().unwrap().starts_with(field),
            "{error}"
        );
        assert_eq!(error["errors"][0]["domain"], "Validation");
        assert_signed(&verifier, &reply);
    }
    for body in ["not json", "[1]"] {
        let reply = server
            .bearer(&controller, Method::POST, "/opendsr/v1/requests", body)
            .await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json()["error"]["code"], 400);
    }
    let reply = server
        .bearer(
            &controller,
            Method::GET,
            "/opendsr/v1/requests/not-a-uuid",
            "",
        )
        .await;
    assert_eq!(
        reply.json()["error"]["errors"][0]["field"],
        "subject_request_id"
    );
    // An https callback and an email identity are fine.
    let ok = with(
        "subject_identities",
        identity("email", "Ada@Example.com", "raw"),
    );
    let mut ok: Value = serde_json::from_str(&ok).unwrap();
    ok["status_callback_urls"] = json!(["https://controller.example/opendsr/callbacks"]);
    let reply = server
        .bearer(
            &controller,
            Method::POST,
            "/opendsr/v1/requests",
            &ok.to_string(),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    // Only the dsr role (and admins) may call it.
    let (_, editor) = server.token("editor", "dpo").await;
    let reply = server
        .bearer(
            &editor,
            Method::POST,
            "/opendsr/v1/requests",
            &good.to_string(),
        )
        .await;
    assert_eq!(reply.status, 403);
}
