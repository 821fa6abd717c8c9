//! Roles and tokens: every route tried with every role (a table that must list every route the
//! server registers), tokens made, listed and revoked from the command line and the API, and
//! no token ever in the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use consentry_collector::api::routes::Access;
use hyper::http::Method;
use serde_json::json;
use std::collections::BTreeSet;
use support::binary::{tool, Served};
use support::{bearer_to, fixture, TestServer, ADMIN_TOKEN};

/// What a route answers: to anyone, or to these roles (admin, editor, viewer, dsr).
#[derive(Clone, Copy, Debug)]
enum Expect {
    Public,
    /// Public, but answers only with a valid secret in the path (404 without one).
    PublicSecret,
    ApiKey,
    /// The console's session exchange: 401 without a token or a session.
    Session,
    Roles([bool; 4]),
}

const ADMIN_ONLY: Expect = Expect::Roles([true, false, false, false]);
const READERS: Expect = Expect::Roles([true, true, true, false]);
const EDITORS: Expect = Expect::Roles([true, true, false, false]);
const CONTROLLERS: Expect = Expect::Roles([true, false, false, true]);

/// An OpenDSR request; `{uuid}` is replaced by a fresh id on every call.
const OPENDSR_REQUEST: &str = r#"{"subject_request_id": "{uuid}", "subject_request_type": "erasure",
    "regulation": "gdpr", "submitted_time": "2026-12-01T10:00:00Z",
    "subject_identities": [{"identity_type": "controller_customer_id", "identity_value": "user-table", "identity_format": "raw"}]}"#;

/// A request made by hand in the console.
const CONSOLE_REQUEST: &str = r#"{"type": "access", "regulation": "gdpr",
    "identity_type": "controller_customer_id", "identity_value": "user-table"}"#;

/// Every route, with the body that makes a permitted call succeed. A route the server has but
/// this table lacks fails the test.
const EXPECTED: &[(Method, &str, Expect, &str)] = &[
    (Method::GET, "/healthz", Expect::Public, ""),
    (Method::GET, "/readyz", Expect::Public, ""),
    (Method::GET, "/metrics", READERS, ""),
    (Method::POST, "/v1/batch", Expect::ApiKey, ""),
    // Paging through everyone's events is an export; a viewer reads one visitor's (below).
    (Method::GET, "/v1/events", EDITORS, ""),
    (Method::GET, "/v1/stats", READERS, ""),
    (Method::GET, "/v1/audit", ADMIN_ONLY, ""),
    (
        Method::POST,
        "/v1/tokens",
        ADMIN_ONLY,
        r#"{"name": "made in the table test", "role": "viewer"}"#,
    ),
    (Method::GET, "/v1/tokens", ADMIN_ONLY, ""),
    (Method::DELETE, "/v1/tokens/{id}", ADMIN_ONLY, ""),
    (
        Method::POST,
        "/v1/admin/faults",
        ADMIN_ONLY,
        r#"{"next": []}"#,
    ),
    (Method::DELETE, "/v1/admin/faults", ADMIN_ONLY, ""),
    (Method::POST, "/v1/admin/reset", ADMIN_ONLY, ""),
    (Method::GET, "/v1/users/{id}", READERS, ""),
    (Method::DELETE, "/v1/users/{id}", EDITORS, ""),
    (
        Method::PATCH,
        "/v1/users/{id}/traits",
        EDITORS,
        r#"{"traits": {"plan": "pro"}}"#,
    ),
    (Method::PUT, "/v1/suppressions/{identity}", EDITORS, ""),
    (Method::DELETE, "/v1/suppressions/{identity}", EDITORS, ""),
    (Method::POST, "/v1/retention/sweep", EDITORS, ""),
    (Method::GET, "/opendsr/v1/discovery", Expect::Public, ""),
    (
        Method::GET,
        "/opendsr/v1/certificate.pem",
        Expect::Public,
        "",
    ),
    (Method::GET, "/v1/exports/{token}", Expect::PublicSecret, ""),
    (
        Method::POST,
        "/opendsr/v1/requests",
        CONTROLLERS,
        OPENDSR_REQUEST,
    ),
    (Method::GET, "/opendsr/v1/requests/{id}", CONTROLLERS, ""),
    (Method::POST, "/v1/dsr", Expect::ApiKey, ""),
    (Method::GET, "/v1/dsr/{id}", Expect::PublicSecret, ""),
    (Method::DELETE, "/opendsr/v1/requests/{id}", CONTROLLERS, ""),
    (
        Method::POST,
        "/opendsr/v1/opengdpr_requests",
        CONTROLLERS,
        OPENDSR_REQUEST,
    ),
    (
        Method::GET,
        "/opendsr/v1/opengdpr_requests/{id}",
        CONTROLLERS,
        "",
    ),
    (
        Method::DELETE,
        "/opendsr/v1/opengdpr_requests/{id}",
        CONTROLLERS,
        "",
    ),
    (Method::GET, "/console/", Expect::Public, ""),
    (Method::GET, "/console/{file}", Expect::Public, ""),
    (Method::POST, "/console/api/session", Expect::Session, ""),
    (Method::GET, "/console/api/session", Expect::Session, ""),
    (Method::DELETE, "/console/api/session", Expect::Session, ""),
    (Method::GET, "/console/api/summary", READERS, ""),
    (Method::GET, "/console/api/requests", READERS, ""),
    (Method::GET, "/console/api/requests/{id}", READERS, ""),
    (
        Method::POST,
        "/console/api/requests",
        EDITORS,
        CONSOLE_REQUEST,
    ),
    (Method::DELETE, "/console/api/requests/{id}", EDITORS, ""),
    (Method::GET, "/console/api/audit/verify", ADMIN_ONLY, ""),
    (Method::GET, "/console/api/settings", ADMIN_ONLY, ""),
];

const ROLES: [&str; 4] = ["admin", "editor", "viewer", "dsr"];

#[tokio::test]
async fn every_route_answers_every_role_as_the_permission_table_says() {
    // No fulfilment: requests stay pending, so the cancellation row can cancel.
    let server = TestServer::start_with(|s| s.rights.worker = false).await;
    let registered: BTreeSet<(String, &str)> = server
        .routes()
        .iter()
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    let expected: BTreeSet<(String, &str)> = EXPECTED
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), *p))
        .collect();
    assert_eq!(registered, expected, "every route needs a row in EXPECTED");
    for route in server.routes() {
        let (_, _, expect, _) = EXPECTED
            .iter()
            .find(|(m, p, _, _)| *m == route.method && *p == route.path)
            .unwrap();
        match (expect, route.access) {
            (Expect::Public | Expect::PublicSecret | Expect::Session, Access::Public)
            | (Expect::ApiKey, Access::ApiKey)
            | (Expect::Roles(_), Access::Token(_)) => {}
            other => panic!("{} {}: {other:?}", route.method, route.path),
        }
    }

    let mut tokens = Vec::new();
    for role in ROLES {
        tokens.push(
            server
                .token(role, &format!("{role} in the table test"))
                .await
                .1,
        );
    }
    let mut fresh = 0u64;
    for (method, path, expect, body) in EXPECTED {
        let (revocable, _) = server.token("viewer", "to revoke").await;
        let path = if path.starts_with("/opendsr/v1/requests/")
            || path.starts_with("/opendsr/v1/opengdpr_requests/")
        {
            // A request of the dsr token's own, which admins see too.
            fresh += 1;
            let body = OPENDSR_REQUEST.replace("{uuid}", &support::uuid(900 + fresh));
            let made = server
                .bearer(&tokens[3], Method::POST, "/opendsr/v1/requests", &body)
                .await;
            assert_eq!(made.status, 201, "{made:?}");
            path.replace("{id}", &support::uuid(900 + fresh))
        } else if path.starts_with("/console/api/requests/") {
            // A pending request made in the console (no fulfilment here), one per row.
            let made = server
                .bearer(
                    &tokens[0],
                    Method::POST,
                    "/console/api/requests",
                    CONSOLE_REQUEST,
                )
                .await;
            assert_eq!(made.status, 201, "{made:?}");
            path.replace("{id}", made.json()["id"].as_str().unwrap())
        } else {
            path.replace("{id}", &revocable)
                .replace("{identity}", "someone")
                .replace("{file}", "app.js")
        };
        match expect {
            Expect::Public => {
                let reply = server.send(method.clone(), &path, &[], "").await;
                assert_eq!(reply.status, 200, "{method} {path}");
            }
            Expect::PublicSecret => {
                let reply = server.send(method.clone(), &path, &[], "").await;
                assert_eq!(reply.status, 404, "{method} {path}");
            }
            Expect::Session => {
                let reply = server.send(method.clone(), &path, &[], "").await;
                assert_eq!(reply.status, 401, "{method} {path}");
            }
            Expect::ApiKey if path == "/v1/dsr" => {
                let mut request = json!({"api_key": "pk_demo", "type": "access",
                    "anonymous_id": "5a6b7c8d-9e0f-4a1b-9c3d-4e5f6a7b8c9d"});
                let headers = [("content-type", "application/json")];
                let reply = server
                    .send(method.clone(), &path, &headers, request.to_string())
                    .await;
                assert_eq!(reply.status, 202, "{method} {path}: {reply:?}");
                request["api_key"] = json!("pk_unknown");
                let reply = server
                    .send(method.clone(), &path, &headers, request.to_string())
                    .await;
                assert_eq!(reply.status, 401);
            }
            Expect::ApiKey => {
                let reply = server.post_batch(&fixture()).await;
                assert_eq!(reply.status, 200, "{method} {path}");
                let mut keyless = fixture();
                keyless["api_key"] = json!("pk_unknown");
                assert_eq!(server.post_batch(&keyless).await.status, 401);
            }
            Expect::Roles(allowed) => {
                let anonymous = server
                    .send(method.clone(), &path, &[], body.to_string())
                    .await;
                assert_eq!(anonymous.status, 401, "{method} {path} without a token");
                let stranger = server
                    .bearer("cst_not-a-token-at-all", method.clone(), &path, body)
                    .await;
                assert_eq!(
                    stranger.status, 401,
                    "{method} {path} with an unknown token"
                );
                for ((role, token), allowed) in ROLES.iter().zip(&tokens).zip(allowed) {
                    fresh += 1;
                    let body = body.replace("{uuid}", &support::uuid(900 + fresh));
                    let reply = server.bearer(token, method.clone(), &path, &body).await;
                    if *allowed {
                        assert!(
                            reply.status.is_success(),
                            "{method} {path} as {role}: {reply:?}"
                        );
                    } else {
                        assert_eq!(reply.status, 403, "{method} {path} as {role}");
                    }
                }
            }
        }
    }

    // Every call with a valid token was recorded, allowed or not, with who made it.
    let log = server
        .admin(Method::GET, "/v1/audit?limit=1000", "")
        .await
        .json();
    let entries = log["entries"].as_array().unwrap();
    let denied = entries
        .iter()
        .find(|e| e["action"] == "audit.read" && e["role"] == "viewer")
        .unwrap();
    assert_eq!(denied["outcome"], "403");
    let actor = denied["actor"].as_str().unwrap();
    assert!(
        actor.starts_with("viewer in the table test [tok_") && actor.ends_with(']'),
        "{actor}"
    );
    assert!(entries
        .iter()
        .any(|e| e["action"] == "events.read" && e["role"] == "editor" && e["outcome"] == "200"));
    assert!(
        entries.iter().all(|e| e["outcome"] != "401"),
        "calls without a valid token have no actor"
    );
}

#[tokio::test]
async fn a_revoked_token_fails_at_once_and_lists_show_no_secret() {
    let server = TestServer::start().await;
    let (id, secret) = server.token("viewer", "grafana").await;
    assert_eq!(
        server
            .bearer(&secret, Method::GET, "/v1/stats", "")
            .await
            .status,
        200
    );
    let list = server.admin(Method::GET, "/v1/tokens", "").await;
    assert!(!String::from_utf8_lossy(&list.body).contains(&secret));
    assert_eq!(list.json()["tokens"][0]["name"], "grafana");
    assert!(list.json()["tokens"][0].get("hash").is_none());

    let revoke = server
        .admin(Method::DELETE, &format!("/v1/tokens/{id}"), "")
        .await;
    assert_eq!(revoke.status, 200, "{revoke:?}");
    assert_eq!(
        server
            .bearer(&secret, Method::GET, "/v1/stats", "")
            .await
            .status,
        401
    );
    let again = server
        .admin(Method::DELETE, &format!("/v1/tokens/{id}"), "")
        .await;
    assert_eq!(again.status, 404);

    for (body, field) in [
        (r#"{"name": "x", "role": "root"}"#, json!("role")),
        (r#"{"name": "", "role": "viewer"}"#, json!("name")),
        (r#"{"role": "viewer"}"#, json!(null)),
    ] {
        let reply = server.admin(Method::POST, "/v1/tokens", body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.json()["field"], field, "{body}");
    }
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn the_command_line_makes_and_revokes_tokens_while_serving_and_no_token_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let created = tool(
        dir.path(),
        &["token", "create", "--role", "viewer", "--name", "grafana"],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let secret = stdout(&created).trim().to_owned();
    assert!(secret.starts_with("cst_"), "{secret}");
    let bad = tool(
        dir.path(),
        &["token", "create", "--role", "root", "--name", "x"],
    );
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("not a role"), "{}", stderr(&bad));

    let served = Served::start(
        dir.path(),
        &[
            "--plain-http",
            "--generate-encryption-key",
            "--api-key",
            "demo=pk_demo",
            "--admin-token",
            ADMIN_TOKEN,
        ],
        &[],
    );
    let addr = served.addr;
    let stats = bearer_to(addr, &secret, Method::GET, "/v1/stats", "").await;
    assert_eq!(stats.status, 200);
    assert_eq!(
        stats.header("x-request-id").map(str::len),
        Some(36),
        "a UUID"
    );
    assert_eq!(
        bearer_to(addr, &secret, Method::GET, "/v1/audit", "")
            .await
            .status,
        403
    );
    assert_eq!(
        bearer_to(addr, ADMIN_TOKEN, Method::GET, "/v1/audit", "")
            .await
            .status,
        200
    );

    let list = tool(dir.path(), &["token", "list"]);
    let line = stdout(&list)
        .lines()
        .find(|l| l.contains("grafana"))
        .unwrap()
        .to_owned();
    assert!(line.contains("viewer") && line.contains("live"), "{line}");
    assert!(!stdout(&list).contains(&secret));
    let id = line.split_whitespace().next().unwrap().to_owned();

    let revoked = tool(dir.path(), &["token", "revoke", &id]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert_eq!(
        bearer_to(addr, &secret, Method::GET, "/v1/stats", "")
            .await
            .status,
        401,
        "revoked on the running collector at once"
    );
    let unknown = tool(dir.path(), &["token", "revoke", "tok_000000000000"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("no live token"));

    let (status, log) = served.stop();
    assert!(status.success(), "{log}");
    let request_lines: Vec<_> = log
        .lines()
        .filter(|l| l.contains(r#""message":"request""#))
        .collect();
    assert!(request_lines.len() >= 4, "{log}");
    for line in request_lines {
        assert!(
            line.contains(r#""request_id":""#),
            "a request line without its id: {line}"
        );
    }
    assert!(!log.contains(&secret), "a token in the log:\n{log}");
    assert!(
        !log.contains(ADMIN_TOKEN),
        "the admin token in the log:\n{log}"
    );
    assert!(
        !log.contains(&secret["cst_".len()..20]),
        "part of a token in the log"
    );

    let verified = tool(dir.path(), &["audit", "verify"]);
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(
        stdout(&verified).contains("audit log verified"),
        "{}",
        stdout(&verified)
    );
}

#[tokio::test]
async fn a_viewer_reads_one_visitors_events_but_cannot_page_through_everyones() {
    let server = TestServer::start().await;
    server.post_batch(&fixture()).await;
    let visitor = fixture()["events"][0]["anonymous_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, viewer) = server.token("viewer", "support desk").await;
    let one = server
        .bearer(
            &viewer,
            Method::GET,
            &format!("/v1/events?anonymous_id={visitor}"),
            "",
        )
        .await;
    assert_eq!(one.status, 200, "{one:?}");
    assert!(!one.json()["events"].as_array().unwrap().is_empty());
    let all = server
        .bearer(&viewer, Method::GET, "/v1/events?since=0&limit=1000", "")
        .await;
    assert_eq!(all.status, 403);
    assert_eq!(all.json()["field"], "anonymous_id");
    let (_, editor) = server.token("editor", "dpo").await;
    let exported = server
        .bearer(&editor, Method::GET, "/v1/events?since=0", "")
        .await;
    assert_eq!(exported.status, 200);
}

#[tokio::test]
async fn a_token_change_and_its_audit_entry_commit_together_or_not_at_all() {
    let server = TestServer::start().await;
    let (kept, kept_secret) = server.token("viewer", "kept").await;
    support::store::refuse_audit_inserts(server.dir.path());
    let create = server
        .admin(
            Method::POST,
            "/v1/tokens",
            r#"{"name": "unrecorded", "role": "admin"}"#,
        )
        .await;
    assert_eq!(create.status, 503, "{create:?}");
    assert!(create.json().get("token").is_none());
    let revoke = server
        .admin(Method::DELETE, &format!("/v1/tokens/{kept}"), "")
        .await;
    assert_eq!(revoke.status, 503, "{revoke:?}");
    let reset = server.admin(Method::POST, "/v1/admin/reset", "").await;
    assert_eq!(reset.status, 503, "{reset:?}");
    support::store::allow_audit_inserts(server.dir.path());

    let list = server.admin(Method::GET, "/v1/tokens", "").await.json();
    let names: Vec<_> = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!names.contains(&"unrecorded".to_owned()), "{names:?}");
    assert_eq!(
        server
            .bearer(&kept_secret, Method::GET, "/v1/stats", "")
            .await
            .status,
        200,
        "the revocation that was not recorded did not happen"
    );
    let count: i64 = support::store::with_db(server.dir.path(), |db| {
        db.query_row(
            "SELECT COUNT(*) FROM tokens WHERE name = 'unrecorded'",
            (),
            |r| r.get(0),
        )
        .unwrap()
    });
    assert_eq!(count, 0);
}

#[tokio::test]
async fn the_admin_token_can_be_revoked_and_then_opens_nothing_even_after_a_restart() {
    let server = TestServer::start().await;
    let (_, spare) = server.token("admin", "break glass").await;
    let revoke = server
        .admin(Method::DELETE, "/v1/tokens/admin-token", "")
        .await;
    assert_eq!(revoke.status, 200, "{revoke:?}");
    assert_eq!(server.admin(Method::GET, "/v1/stats", "").await.status, 401);
    let list = server
        .bearer(&spare, Method::GET, "/v1/tokens", "")
        .await
        .json();
    let revoked = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "admin-token")
        .unwrap()
        .clone();
    assert!(revoked["id"].as_str().unwrap().starts_with("admin-token-"));
    assert!(revoked["revoked_at_ms"].is_i64());
    let again = server
        .bearer(&spare, Method::DELETE, "/v1/tokens/admin-token", "")
        .await;
    assert_eq!(again.status, 404, "already revoked");
    let dir = server.stop().await;
    let restarted = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(
        restarted.admin(Method::GET, "/v1/stats", "").await.status,
        401,
        "given again, it still opens nothing"
    );
    let audit = restarted
        .bearer(&spare, Method::GET, "/v1/audit?limit=1000", "")
        .await
        .json();
    assert!(audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "token.revoke"
            && e["target"] == "admin-token"
            && e["outcome"] == "200"));
}

#[tokio::test]
async fn the_command_line_revokes_the_admin_token_kept_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        dir.path(),
        &[
            "--plain-http",
            "--generate-encryption-key",
            "--api-key",
            "demo=pk_demo",
        ],
        &[],
    );
    let token = std::fs::read_to_string(dir.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let before = bearer_to(served.addr, &token, Method::GET, "/v1/stats", "").await;
    assert_eq!(before.status, 200);
    let revoked = tool(dir.path(), &["token", "revoke", "admin-token"]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let after = bearer_to(served.addr, &token, Method::GET, "/v1/stats", "").await;
    assert_eq!(after.status, 401, "at once, on the running collector");
    let (_, log) = served.stop();
    assert!(!log.contains(&token), "the token is never logged");
}

#[tokio::test]
async fn audit_actors_are_unique_and_no_token_passes_for_the_admin_token_or_the_command_line() {
    let server = TestServer::start().await;
    for name in ["admin-token", "system", "cli:root", "intake:production"] {
        let reply = server
            .admin(
                Method::POST,
                "/v1/tokens",
                &json!({"name": name, "role": "admin"}).to_string(),
            )
            .await;
        assert_eq!(reply.status, 400, "{name}");
        assert_eq!(reply.json()["field"], "name");
    }
    let (first, a) = server.token("viewer", "alice").await;
    let (second, b) = server.token("viewer", "alice").await;
    for token in [&a, &b] {
        server.bearer(token, Method::GET, "/v1/stats", "").await;
    }
    let audit = server
        .admin(Method::GET, "/v1/audit?limit=1000", "")
        .await
        .json();
    let actors: Vec<_> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "stats.read")
        .map(|e| e["actor"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actors,
        [format!("alice [{first}]"), format!("alice [{second}]")]
    );
}
