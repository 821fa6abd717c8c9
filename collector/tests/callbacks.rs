//! Status callbacks over HTTPS: verified against `--dsr-callback-ca` (and the system roots),
//! refused when the controller's certificate is not trusted, every attempt recorded and the
//! failures counted; only loopback `http` with the test flag.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hyper::http::Method;
use serde_json::{json, Value};
use std::time::Duration;
use support::dsr::Receiver;
use support::{uuid, TestServer};

fn request(id: &str, url: &str) -> String {
    json!({
        "subject_request_id": id,
        "subject_request_type": "erasure",
        "regulation": "ccpa",
        "submitted_time": "2026-12-01T10:00:00Z",
        "subject_identities": [{"identity_type": "controller_customer_id", "identity_value": "u", "identity_format": "raw"}],
        "status_callback_urls": [url],
    })
    .to_string()
}

async fn callbacks_settled(server: &TestServer, token: &str, id: &str) -> Vec<Value> {
    for _ in 0..500 {
        let status = server
            .bearer(
                token,
                Method::GET,
                &format!("/opendsr/v1/requests/{id}"),
                "",
            )
            .await
            .json();
        let callbacks = status["callbacks"].as_array().unwrap().clone();
        if status["request_status"] == "completed"
            && callbacks.len() == 3
            && callbacks.iter().all(|c| c["state"] != "pending")
        {
            return callbacks;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("callbacks never settled");
}

#[tokio::test]
async fn https_callbacks_are_verified_against_the_configured_ca_and_refused_otherwise() {
    let (receiver, ca) = Receiver::start_tls(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("controller-ca.pem");
    std::fs::write(&ca_path, ca).unwrap();

    let trusting = TestServer::start_with(|s| {
        s.rights.callback_cas = vec![ca_path.clone()];
        s.rights.poll_interval = Duration::from_millis(20);
    })
    .await;
    let (_, token) = trusting.token("dsr", "acme").await;
    let id = uuid(9001);
    let reply = trusting
        .bearer(
            &token,
            Method::POST,
            "/opendsr/v1/requests",
            &request(&id, &receiver.url()),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let callbacks = callbacks_settled(&trusting, &token, &id).await;
    assert!(
        callbacks.iter().all(|c| c["state"] == "delivered"),
        "{callbacks:?}"
    );
    assert_eq!(receiver.received().len(), 3);

    // Without the CA the controller's certificate is not trusted: every attempt fails.
    let untrusting = TestServer::start_with(|s| {
        s.rights.poll_interval = Duration::from_millis(20);
        s.rights.callback_backoff = Duration::from_millis(10);
        s.rights.callback_attempts = 2;
    })
    .await;
    let (_, token) = untrusting.token("dsr", "acme").await;
    let id = uuid(9002);
    let reply = untrusting
        .bearer(
            &token,
            Method::POST,
            "/opendsr/v1/requests",
            &request(&id, &receiver.url()),
        )
        .await;
    assert_eq!(reply.status, 201);
    let callbacks = callbacks_settled(&untrusting, &token, &id).await;
    for callback in &callbacks {
        assert_eq!(callback["state"], "failed", "{callback}");
        assert_eq!(callback["attempts"], 2);
        let history = callback["history"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert!(
            history[0]["outcome"].as_str().unwrap().starts_with("tls:"),
            "{history:?}"
        );
    }
    assert_eq!(receiver.received().len(), 3, "nothing more arrived");
    let metrics = untrusting.admin(Method::GET, "/metrics", "").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("consentry_dsr_callback_failures_total 6"),
        "{text}"
    );
    assert!(text.contains("consentry_dsr_callback_attempts_total{outcome=\"failed\"} 3"));

    // Loopback http needs the test flag.
    let plain = Receiver::start(&[]).await;
    let reply = untrusting
        .bearer(
            &token,
            Method::POST,
            "/opendsr/v1/requests",
            &request(&uuid(9003), &plain.url()),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()["error"]["errors"][0]["field"],
        "status_callback_urls[0]"
    );
}
