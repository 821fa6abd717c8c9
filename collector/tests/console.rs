//! The privacy console at the request level: sessions (cookie attributes, CSRF on every
//! change, sign-out and revocation ending them at once), each role's permissions through a
//! session, the console's own routes, and the security headers of its embedded files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hyper::http::Method;
use serde_json::{json, Value};
use support::{TestServer, ADMIN_TOKEN};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A signed-in session: the `Cookie` header to send and the CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn sign_in(server: &TestServer, token: &str) -> Session {
    let reply = server
        .send(
            Method::POST,
            "/console/api/session",
            &[("content-type", "application/json")],
            json!({ "token": token }).to_string(),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let set = reply.header("set-cookie").unwrap();
    let pair = set.split(';').next().unwrap().trim().to_owned();
    Session {
        cookie: pair,
        csrf: reply.json()["csrf"].as_str().unwrap().to_owned(),
    }
}

impl Session {
    /// A call with the cookie only.
    async fn cookie_only(
        &self,
        server: &TestServer,
        method: Method,
        path: &str,
    ) -> support::client::Reply {
        server
            .send(method, path, &[("cookie", &self.cookie)], "")
            .await
    }

    /// A call with the cookie and the CSRF header.
    async fn call(
        &self,
        server: &TestServer,
        method: Method,
        path: &str,
        body: &str,
    ) -> support::client::Reply {
        server
            .send(
                method,
                path,
                &[
                    ("cookie", &self.cookie),
                    ("x-consentry-csrf", &self.csrf),
                    ("content-type", "application/json"),
                ],
                body.to_owned(),
            )
            .await
    }
}

async fn audit(server: &TestServer) -> Vec<Value> {
    let log = server
        .admin(Method::GET, "/v1/audit?limit=1000", "")
        .await
        .json();
    log["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn signing_in_sets_a_strict_short_lived_session_cookie_and_answers_a_csrf_token() {
    let server = TestServer::start().await;
    let reply = server
        .send(
            Method::POST,
            "/console/api/session",
            &[("content-type", "application/json")],
            json!({ "token": ADMIN_TOKEN }).to_string(),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let cookie = reply.header("set-cookie").unwrap();
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=28800",
    ] {
        assert!(
            cookie.split("; ").any(|a| a == attribute),
            "{attribute} in {cookie}"
        );
    }
    let id = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("consentry_session=")
        .unwrap();
    assert_eq!(id.len(), 43, "32 random bytes, base64url");
    let body = reply.json();
    assert_eq!(body["role"], "admin");
    assert_eq!(body["idle_seconds"], 1800);
    assert_eq!(body["max_seconds"], 28800);
    let csrf = body["csrf"].as_str().unwrap();
    assert_eq!(csrf.len(), 43);
    assert!(!body.to_string().contains(ADMIN_TOKEN), "no token echoed");

    // The bearer header works as well as the body; a bad token or none is 401.
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let again = server
        .send(
            Method::POST,
            "/console/api/session",
            &[("authorization", &bearer)],
            "",
        )
        .await;
    assert_eq!(again.status, 201);
    assert_ne!(again.json()["csrf"], body["csrf"], "a session of its own");
    for token in ["cst_nope", "wrong-admin-token", ""] {
        let reply = server
            .send(
                Method::POST,
                "/console/api/session",
                &[],
                json!({ "token": token }).to_string(),
            )
            .await;
        assert_eq!(reply.status, 401, "{token}");
        assert!(reply.header("set-cookie").is_none());
    }

    // The dsr role has no console.
    let (_, dsr) = server.token("dsr", "controller").await;
    let refused = server
        .send(
            Method::POST,
            "/console/api/session",
            &[],
            json!({ "token": dsr }).to_string(),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.header("set-cookie").is_none());

    // The session resumes from the cookie (a reloaded page) with the same CSRF token.
    let session = sign_in(&server, ADMIN_TOKEN).await;
    let current = session
        .cookie_only(&server, Method::GET, "/console/api/session")
        .await;
    assert_eq!(current.status, 200);
    assert_eq!(current.json()["csrf"], session.csrf.as_str());

    let entries = audit(&server).await;
    let sign_ins: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "console.sign_in")
        .collect();
    assert_eq!(sign_ins.len(), 4, "{sign_ins:?}");
    assert!(sign_ins
        .iter()
        .any(|e| e["role"] == "dsr" && e["outcome"] == "403"));
    assert!(sign_ins
        .iter()
        .any(|e| e["actor"] == "admin-token" && e["outcome"] == "201"));
}

#[tokio::test]
async fn the_cookie_alone_never_authorises_a_change_the_csrf_header_does() {
    let server = TestServer::start().await;
    let (id, editor) = server.token("editor", "alice").await;
    let session = sign_in(&server, &editor).await;

    // Reads need the cookie only.
    let read = session
        .cookie_only(&server, Method::GET, "/console/api/v1/users/someone")
        .await;
    assert_eq!(read.status, 200, "{read:?}");

    // A change with the cookie alone, or a wrong CSRF token, is 403 and changes nothing.
    for method in [Method::PUT, Method::DELETE] {
        let reply = session
            .cookie_only(
                &server,
                method.clone(),
                "/console/api/v1/suppressions/someone",
            )
            .await;
        assert_eq!(reply.status, 403, "{method}");
    }
    let wrong = server
        .send(
            Method::PUT,
            "/console/api/v1/suppressions/someone",
            &[("cookie", &session.cookie), ("x-consentry-csrf", "guess")],
            "",
        )
        .await;
    assert_eq!(wrong.status, 403);
    let view = session
        .cookie_only(&server, Method::GET, "/console/api/v1/users/someone")
        .await
        .json();
    assert!(view["suppressed_since_ms"].is_null());

    // With its CSRF token the session acts as its token: same route, same checks, same audit.
    let done = session
        .call(
            &server,
            Method::PUT,
            "/console/api/v1/suppressions/someone",
            "",
        )
        .await;
    assert_eq!(done.status, 201, "{done:?}");
    let view = session
        .cookie_only(&server, Method::GET, "/console/api/v1/users/someone")
        .await
        .json();
    assert!(view["suppressed_since_ms"].is_i64());
    let entries = audit(&server).await;
    let actor = format!("alice [{id}]");
    assert!(entries.iter().any(|e| e["action"] == "suppression.add"
        && e["actor"] == actor.as_str()
        && e["outcome"] == "201"));
    assert!(entries
        .iter()
        .any(|e| e["action"] == "user.read" && e["actor"] == actor.as_str()));
}

#[tokio::test]
async fn each_role_through_a_session_has_exactly_its_tokens_permissions() {
    let server = TestServer::start_with(|s| s.rights.worker = false).await;
    let request = r#"{"type": "access", "regulation": "gdpr",
        "identity_type": "controller_customer_id", "identity_value": "someone"}"#;
    // (method, path, body, [admin, editor, viewer] allowed)
    let table: [(Method, &str, &str, [bool; 3]); 9] = [
        (Method::GET, "/console/api/summary", "", [true, true, true]),
        (Method::GET, "/console/api/requests", "", [true, true, true]),
        (
            Method::GET,
            "/console/api/v1/users/someone",
            "",
            [true, true, true],
        ),
        (
            Method::POST,
            "/console/api/requests",
            request,
            [true, true, false],
        ),
        (
            Method::PUT,
            "/console/api/v1/suppressions/someone",
            "",
            [true, true, false],
        ),
        (
            Method::DELETE,
            "/console/api/v1/users/someone",
            "",
            [true, true, false],
        ),
        (
            Method::GET,
            "/console/api/v1/audit",
            "",
            [true, false, false],
        ),
        (
            Method::GET,
            "/console/api/audit/verify",
            "",
            [true, false, false],
        ),
        (
            Method::GET,
            "/console/api/settings",
            "",
            [true, false, false],
        ),
    ];
    for (i, role) in ["admin", "editor", "viewer"].into_iter().enumerate() {
        let (_, token) = server.token(role, &format!("{role} in the console")).await;
        let session = sign_in(&server, &token).await;
        assert_eq!(
            session
                .cookie_only(&server, Method::GET, "/console/api/session")
                .await
                .json()["role"],
            role
        );
        for (method, path, body, allowed) in &table {
            let reply = session.call(&server, method.clone(), path, body).await;
            if allowed[i] {
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

#[tokio::test]
async fn signing_out_ends_the_session_at_once() {
    let server = TestServer::start().await;
    let session = sign_in(&server, ADMIN_TOKEN).await;
    assert_eq!(
        session
            .cookie_only(&server, Method::GET, "/console/api/summary")
            .await
            .status,
        200
    );
    // Signing out is a change: it needs the CSRF header too.
    let forged = session
        .cookie_only(&server, Method::DELETE, "/console/api/session")
        .await;
    assert_eq!(forged.status, 403);
    let out = session
        .call(&server, Method::DELETE, "/console/api/session", "")
        .await;
    assert_eq!(out.status, 200, "{out:?}");
    let cleared = out.header("set-cookie").unwrap();
    assert!(cleared.starts_with("consentry_session=;") && cleared.contains("Max-Age=0"));
    for path in [
        "/console/api/summary",
        "/console/api/session",
        "/console/api/v1/users/x",
    ] {
        let reply = session.cookie_only(&server, Method::GET, path).await;
        assert_eq!(reply.status, 401, "{path} after sign-out");
    }
    let again = session
        .call(&server, Method::DELETE, "/console/api/session", "")
        .await;
    assert_eq!(again.status, 401);
    assert!(audit(&server)
        .await
        .iter()
        .any(|e| e["action"] == "console.sign_out" && e["actor"] == "admin-token"));
}

#[tokio::test]
async fn revoking_the_token_ends_its_sessions() {
    let server = TestServer::start().await;
    let (id, viewer) = server.token("viewer", "bob").await;
    let one = sign_in(&server, &viewer).await;
    let two = sign_in(&server, &viewer).await;
    for session in [&one, &two] {
        let reply = session
            .cookie_only(&server, Method::GET, "/console/api/summary")
            .await;
        assert_eq!(reply.status, 200);
    }
    let revoked = server
        .admin(Method::DELETE, &format!("/v1/tokens/{id}"), "")
        .await;
    assert_eq!(revoked.status, 200);
    for session in [&one, &two] {
        for path in ["/console/api/summary", "/console/api/session"] {
            let reply = session.cookie_only(&server, Method::GET, path).await;
            assert_eq!(reply.status, 401, "{path}");
        }
    }
    // The configured admin token's sessions end when it is revoked too.
    let admin = sign_in(&server, ADMIN_TOKEN).await;
    let revoked = admin
        .call(
            &server,
            Method::DELETE,
            "/console/api/v1/tokens/admin-token",
            "",
        )
        .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    let after = admin
        .cookie_only(&server, Method::GET, "/console/api/summary")
        .await;
    assert_eq!(after.status, 401);
}

#[tokio::test]
async fn console_files_carry_a_strict_csp_and_have_no_inline_code_or_third_party_urls() {
    let server = TestServer::start().await;
    for (path, kind) in [
        ("/console/", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/pages.js", "text/javascript; charset=utf-8"),
        ("/console/ui.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
    ] {
        let reply = server.send(Method::GET, path, &[], "").await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some(kind), "{path}");
        assert_eq!(reply.header("content-security-policy"), Some(CSP), "{path}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        let text = String::from_utf8(reply.body.to_vec()).unwrap();
        assert!(
            !text.contains("localStorage") && !text.contains("sessionStorage"),
            "{path}"
        );
        assert!(!text.contains("style="), "{path}: no inline style");
        assert!(!text.contains(".innerHTML"), "{path}");
        for (at, _) in text.match_indices("://") {
            assert!(
                text[at..].starts_with("://www.w3.org/2000/svg"),
                "{path}: a URL other than the SVG namespace at {at}"
            );
        }
        if path == "/console/" {
            assert_eq!(text.matches("<script").count(), 1);
            assert!(text.contains(r#"<script type="module" src="/console/app.js"></script>"#));
            assert!(!text.contains("<style"));
        }
    }
    let missing = server
        .send(Method::GET, "/console/secrets.txt", &[], "")
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-security-policy"), Some(CSP));
}

#[tokio::test]
async fn requests_made_in_the_console_are_listed_timed_cancelled_and_the_chain_verifies() {
    let server = TestServer::start_with(|s| s.rights.worker = false).await;
    let session = sign_in(&server, ADMIN_TOKEN).await;
    let body = json!({"type": "erasure", "regulation": "gdpr",
        "identity_type": "email", "identity_value": "Ada@Example.com"})
    .to_string();
    let made = session
        .call(&server, Method::POST, "/console/api/requests", &body)
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let id = made.json()["id"].as_str().unwrap().to_owned();
    let bad = session
        .call(
            &server,
            Method::POST,
            "/console/api/requests",
            r#"{"type": "shred", "regulation": "gdpr", "identity_type": "email", "identity_value": "a@b"}"#,
        )
        .await;
    assert_eq!(bad.status, 400);

    let list = |query: &'static str| {
        let session = &session;
        let server = &server;
        async move {
            let reply = session
                .cookie_only(
                    server,
                    Method::GET,
                    &format!("/console/api/requests{query}"),
                )
                .await;
            assert_eq!(reply.status, 200, "{reply:?}");
            reply.json()["requests"].as_array().unwrap().clone()
        }
    };
    assert_eq!(list("?type=erasure&status=pending").await.len(), 1);
    assert_eq!(list("?type=access").await.len(), 0);
    assert_eq!(list("?overdue=1").await.len(), 0, "due in 30 days");
    assert_eq!(list("").await[0]["origin"], "console");
    assert_eq!(
        session
            .cookie_only(&server, Method::GET, "/console/api/requests?status=lost")
            .await
            .status,
        400
    );

    let detail = session
        .cookie_only(&server, Method::GET, &format!("/console/api/requests/{id}"))
        .await
        .json();
    assert_eq!(detail["status"], "pending");
    assert_eq!(detail["controller_id"], "admin-token");
    assert!(detail["received_at_ms"].is_i64() && detail["results_url"].is_null());

    let cancelled = session
        .call(
            &server,
            Method::DELETE,
            &format!("/console/api/requests/{id}"),
            "",
        )
        .await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    assert_eq!(list("?status=cancelled").await.len(), 1);
    let unknown = session
        .call(
            &server,
            Method::DELETE,
            &format!("/console/api/requests/{}", support::uuid(1)),
            "",
        )
        .await;
    assert_eq!(unknown.status, 404);

    let verdict = session
        .cookie_only(&server, Method::GET, "/console/api/audit/verify")
        .await
        .json();
    assert_eq!(verdict["ok"], true, "{verdict}");
    let entries = audit(&server).await;
    // The verify call's own entry is written after it answered.
    let length = verdict["length"].as_i64().unwrap();
    assert!(entries
        .iter()
        .any(|e| e["seq"] == length && e["hash"] == verdict["head"]));
    assert!(entries
        .iter()
        .any(|e| e["action"] == "console.request_create"));
    assert!(entries.iter().any(|e| e["action"] == "dsr.status"
        && e["target"] == id.as_str()
        && e["outcome"] == "cancelled"));
}

#[tokio::test]
async fn the_summary_counts_what_was_stored_and_same_origin_pages_pass_the_origin_gate() {
    let server = TestServer::start().await;
    assert_eq!(server.post_batch(&support::fixture()).await.status, 200);
    assert_eq!(server.post_batch(&support::fixture()).await.status, 200);
    let session = sign_in(&server, ADMIN_TOKEN).await;
    let summary = session
        .cookie_only(&server, Method::GET, "/console/api/summary")
        .await
        .json();
    let stats = server.stats().await;
    assert_eq!(summary["events"], stats["events"]);
    assert_eq!(summary["duplicates"], stats["duplicates"]);
    assert!(summary["duplicates"].as_u64().unwrap() > 0);
    let by_day: u64 = summary["events_by_day"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["purpose"] != "none")
        .map(|r| r["events"].as_u64().unwrap())
        .sum();
    assert!(by_day > 0, "{summary}");
    assert_eq!(summary["days"], 14);

    // The console's page sends its own origin on changes: no --admin-origin needed for it.
    let host = server.addr.to_string();
    let own = format!("http://{host}");
    let reply = server
        .send(
            Method::PUT,
            "/console/api/v1/suppressions/x",
            &[
                ("cookie", &session.cookie),
                ("x-consentry-csrf", &session.csrf),
                ("origin", &own),
            ],
            "",
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let foreign = server
        .send(
            Method::PUT,
            "/console/api/v1/suppressions/x",
            &[
                ("cookie", &session.cookie),
                ("x-consentry-csrf", &session.csrf),
                ("origin", "https://evil.example"),
            ],
            "",
        )
        .await;
    assert_eq!(foreign.status, 403);
}

#[tokio::test]
async fn every_token_route_nested_under_console_api_has_the_same_auth_and_permission() {
    use consentry_collector::api::routes::Access;
    let server = TestServer::start().await;
    let (_, viewer) = server.token("viewer", "nested").await;
    let session = sign_in(&server, &viewer).await;
    let mut checked = 0;
    for route in server.routes() {
        let Access::Token(permission) = route.access else {
            continue;
        };
        if route.path.starts_with("/console/") {
            continue;
        }
        let path = format!(
            "/console/api{}",
            route
                .path
                .replace("{id}", &support::uuid(7))
                .replace("{identity}", "x")
        );
        let anonymous = server.send(route.method.clone(), &path, &[], "").await;
        assert_eq!(anonymous.status, 401, "{} {path}", route.method);
        let reply = session.call(&server, route.method.clone(), &path, "").await;
        let allowed = consentry_collector::roles::Role::Viewer.allows(permission);
        if allowed {
            // Paging through everyone's events is an export, which the viewer's handler refuses.
            if route.path != "/v1/events" {
                assert_ne!(reply.status, 403, "{} {path}: {reply:?}", route.method);
            }
            assert_ne!(reply.status, 401, "{} {path}", route.method);
        } else {
            assert_eq!(reply.status, 403, "{} {path}", route.method);
        }
        checked += 1;
    }
    assert!(checked >= 15, "{checked}");
}

#[tokio::test]
async fn a_session_ends_after_30_minutes_idle_or_8_hours_in_all() {
    use consentry_collector::clock::Clock;
    const MINUTE: i64 = 60_000;
    let clock = Clock::manual(1_800_000_000_000);
    let server = {
        let clock = clock.clone();
        TestServer::start_with(move |s| s.clock = clock).await
    };
    let summary = |session: &Session| {
        let (session, server) = (session.cookie.clone(), &server);
        async move {
            server
                .send(
                    Method::GET,
                    "/console/api/summary",
                    &[("cookie", &session)],
                    "",
                )
                .await
                .status
        }
    };
    // Idle: 29 minutes is fine (and starts the idle time again), 30 without a call is not.
    let idle = sign_in(&server, ADMIN_TOKEN).await;
    clock.advance(29 * MINUTE);
    assert_eq!(summary(&idle).await, 200);
    clock.advance(29 * MINUTE);
    assert_eq!(summary(&idle).await, 200);
    clock.advance(30 * MINUTE);
    assert_eq!(summary(&idle).await, 401);

    // Busy: a call every 20 minutes keeps it until 8 hours after sign-in, not a minute more.
    let busy = sign_in(&server, ADMIN_TOKEN).await;
    for _ in 0..23 {
        clock.advance(20 * MINUTE);
        assert_eq!(summary(&busy).await, 200);
    }
    clock.advance(19 * MINUTE); // 7 h 59 min
    assert_eq!(summary(&busy).await, 200);
    clock.advance(MINUTE);
    assert_eq!(summary(&busy).await, 401);
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_address_like_bad_bearer_tokens() {
    let server = TestServer::start_with(|s| {
        s.auth_failure_rate = consentry_collector::network::Rate {
            per_minute: 1,
            burst: 3,
        };
    })
    .await;
    let attempt = |token: &'static str| {
        let server = &server;
        async move {
            server
                .send(
                    Method::POST,
                    "/console/api/session",
                    &[("content-type", "application/json")],
                    json!({ "token": token }).to_string(),
                )
                .await
                .status
                .as_u16()
        }
    };
    for _ in 0..3 {
        assert_eq!(attempt("cst_guess").await, 401);
    }
    assert_eq!(attempt("cst_guess").await, 429);
    assert_eq!(
        attempt(ADMIN_TOKEN).await,
        429,
        "blocked before any lookup, the right token too"
    );
}
