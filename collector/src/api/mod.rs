//! The HTTP API: routes, shared state and the markers middleware reads off responses. Every
//! layer is stacked here, in [`router`].
//!
//! | route | who | what |
//! | --- | --- | --- |
//! | `POST /v1/batch` | browsers (CORS: `--allow-origin`), servers; API key | ingest a batch |
//! | `GET /v1/events`, `GET /v1/stats` | `viewer`, `editor`, `admin` | read what was stored |
//! | `GET /v1/audit` | `admin` | the audit log |
//! | `POST`/`GET /v1/tokens`, `DELETE /v1/tokens/{id}` | `admin` | tokens |
//! | `POST`/`DELETE /v1/admin/faults`, `POST /v1/admin/reset` | `admin`, `--fault-injection` only | tests |
//! | `GET /metrics` | `viewer`, `editor`, `admin` | Prometheus metrics |
//! | `GET /healthz`, `GET /readyz` | anyone | liveness (store thread and database), readiness |
//! | `GET /v1/users/{id}` | `viewer`, `editor`, `admin` | everything held about one id |
//! | `DELETE /v1/users/{id}`, `PATCH /v1/users/{id}/traits` | `editor`, `admin` | erasure, rectification |
//! | `PUT`/`DELETE /v1/suppressions/{identity}` | `editor`, `admin` | the suppression list |
//! | `POST /v1/retention/sweep` | `editor`, `admin` | a retention sweep now |
//! | `POST /opendsr/v1/requests`, `GET`/`DELETE /opendsr/v1/requests/{id}` | `dsr`, `admin` | the OpenDSR processor API |
//! | `GET /opendsr/v1/discovery`, `GET /opendsr/v1/certificate.pem` | anyone | OpenDSR discovery and the signing certificate |
//! | `GET /v1/exports/{token}` | the token's holder | an export, 7 days |
//! | `POST /v1/dsr`, `GET /v1/dsr/{id}?secret=` | browsers, API key / the secret's holder | a visitor's own request |
//! | `GET /console/…`, `POST`/`GET`/`DELETE /console/api/session` | anyone / a token / a session | the console ([`console`]) |
//! | `/console/api/v1/…`, `/console/api/metrics`, `/console/api/opendsr/…` | as the route without the prefix | the read/admin API nested for the console |
//! | `GET /console/api/summary`, `GET /console/api/requests[/{id}]` | `viewer`, `editor`, `admin` | the console's reads |
//! | `POST /console/api/requests`, `DELETE /console/api/requests/{id}` | `editor`, `admin` | requests by hand |
//! | `GET /console/api/audit/verify`, `GET /console/api/settings` | `admin` | the chain's check, settings |
//!
//! Layers, outermost first: authorization marked sensitive → request id → request log
//! (`TraceLayer`) → request id echoed → requests counted by route and status →
//! `Connection: close` on early answers → client address → request deadline (`TimeoutLayer`,
//! 408). Then, for ingestion: rejection counter → origin gate (403) → CORS grant (`CorsLayer`)
//! → per-address rate limit → body idle timeout (`RequestBodyTimeoutLayer`) → handler (which
//! checks the per-key limit once it knows the key). The visitor's intake (`/v1/dsr`) has the
//! same stack without the rejection counter. For token routes: address allowlist →
//! origin gate → CORS grant → route tag → audit → bearer auth and role → handler.

mod admin;
mod audit;
mod auth;
pub mod console;
mod console_api;
mod cors;
mod early_close;
mod error;
mod exports;
mod gate;
mod health;
mod ingest;
mod intake;
mod log;
mod opendsr;
mod read;
mod rejections;
pub mod routes;
mod subjects;
mod tokens;

pub use error::ApiError;
pub use ingest::IngestOutcome;

use crate::body_budget::BodyBudget;
use crate::consent_check::SalePurposes;
use crate::faults::FaultQueue;
use crate::keys::{AdminToken, ApiKeys};
use crate::metrics::Metrics;
use crate::network::{Limiter, Networks};
use crate::origin::OriginPolicy;
use crate::roles::Permission;
use crate::store::Store;
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::http::{HeaderName, Method};
use axum::middleware::{from_fn, from_fn_with_state, map_response_with_state};
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::Router;
use routes::{Access, RouteInfo, Routes};
use std::sync::Arc;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;

/// What every handler shares.
#[derive(Debug)]
pub struct App {
    /// The database handle.
    pub store: Store,
    /// API keys and their environments.
    pub api_keys: ApiKeys,
    /// The read/admin API's bearer token.
    pub admin_token: AdminToken,
    /// Origins granted CORS on ingestion.
    pub ingest_origins: OriginPolicy,
    /// Origins granted CORS on the read/admin API.
    pub admin_origins: OriginPolicy,
    /// Purposes that count as a sale under CCPA.
    pub sale_purposes: SalePurposes,
    /// The fault queue, when fault injection is on.
    pub faults: Option<FaultQueue>,
    /// Largest body, before and after gzip.
    pub max_body_bytes: usize,
    /// Memory for bodies being read, across requests.
    pub body_budget: BodyBudget,
    /// The whole of one request.
    pub request_timeout: std::time::Duration,
    /// The longest wait for the next piece of a batch body.
    pub body_idle_timeout: std::time::Duration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Networks,
    /// Client addresses the admin API answers (all when empty).
    pub admin_allow: Networks,
    /// Ingestion requests per client address.
    pub ip_limiter: Limiter<std::net::IpAddr>,
    /// Ingestion requests per API key.
    pub key_limiter: Limiter<String>,
    /// Failed bearer authentications per client address.
    pub auth_throttle: crate::auth_throttle::AuthThrottle,
    /// What `/metrics` shows.
    pub metrics: Metrics,
    /// Becomes `true` when shutdown begins (readiness turns 503).
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// Data subjects' rights: OpenDSR signing, workers' wake-ups, the clock, retention.
    pub rights: Arc<crate::rights::Rights>,
    /// The console's signed-in sessions (in memory).
    pub sessions: console::Sessions,
}

/// The connection's peer, put on every request by the server (before any proxy header is
/// considered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Response marker: close the connection instead of sending this response (the `drop` fault).
/// The server turns it into a connection error; nothing is written.
#[derive(Clone, Copy, Debug)]
pub struct DropConnection;

/// Response marker: this response is an injected fault, not a verdict on the request.
#[derive(Clone, Copy, Debug)]
pub struct InjectedFault;

/// The whole API over `app`, and the table of its routes.
pub fn router(app: Arc<App>) -> (Router, Vec<RouteInfo>) {
    let (ingest, mut table) = Routes::new(Arc::clone(&app))
        .add(
            Method::POST,
            "/v1/batch",
            Access::ApiKey,
            "batch.ingest",
            post(ingest::handle),
        )
        .finish();
    let ingest = ingest
        .route_layer(RequestBodyTimeoutLayer::new(app.body_idle_timeout))
        .route_layer(from_fn_with_state(Arc::clone(&app), gate::ip_rate))
        .route_layer(cors::ingest_layer(&app.ingest_origins))
        .route_layer(from_fn_with_state(Arc::clone(&app), cors::ingest_gate))
        .route_layer(from_fn_with_state(Arc::clone(&app), rejections::count));

    // The visitor's own data-subject requests: the same origin gate, CORS grant and
    // per-address limit as ingestion (the handler checks the key and its limit).
    let (intake, intake_table) = Routes::new(Arc::clone(&app))
        .add(
            Method::POST,
            "/v1/dsr",
            Access::ApiKey,
            "dsr.intake",
            post(intake::create),
        )
        .add(
            Method::GET,
            "/v1/dsr/{id}",
            Access::Public,
            "dsr.intake_status",
            get(intake::status),
        )
        .finish();
    table.extend(intake_table);
    let intake = intake
        .route_layer(RequestBodyTimeoutLayer::new(app.body_idle_timeout))
        .route_layer(from_fn_with_state(Arc::clone(&app), gate::ip_rate))
        .route_layer(cors::ingest_layer(&app.ingest_origins))
        .route_layer(from_fn_with_state(Arc::clone(&app), cors::ingest_gate));

    let read = Access::Token(Permission::ReadData);
    // Every answer of an OpenDSR request route's handler is signed.
    let signed = |handler: MethodRouter<Arc<App>>| {
        handler.layer(map_response_with_state(
            Arc::clone(&app),
            opendsr::sign_unsigned,
        ))
    };
    let tokens = Access::Token(Permission::ManageTokens);
    let mut admin = Routes::new(Arc::clone(&app))
        .add(
            Method::GET,
            "/v1/events",
            read,
            "events.read",
            get(read::events),
        )
        .add(
            Method::GET,
            "/v1/stats",
            read,
            "stats.read",
            get(read::stats),
        )
        .add(
            Method::GET,
            "/metrics",
            Access::Token(Permission::ReadMetrics),
            "metrics.read",
            get(health::metrics),
        )
        .add(
            Method::GET,
            "/v1/audit",
            Access::Token(Permission::ReadAudit),
            "audit.read",
            get(read::audit),
        )
        .add(
            Method::POST,
            "/v1/tokens",
            tokens,
            "token.create",
            post(tokens::create),
        )
        .add(
            Method::GET,
            "/v1/tokens",
            tokens,
            "token.list",
            get(tokens::list),
        )
        .add(
            Method::DELETE,
            "/v1/tokens/{id}",
            tokens,
            "token.revoke",
            delete(tokens::revoke),
        )
        .add(
            Method::GET,
            "/v1/users/{id}",
            Access::Token(Permission::ReadUsers),
            "user.read",
            get(subjects::read_user),
        )
        .add(
            Method::DELETE,
            "/v1/users/{id}",
            Access::Token(Permission::EraseData),
            "user.erase",
            delete(subjects::erase_user),
        )
        .add(
            Method::PATCH,
            "/v1/users/{id}/traits",
            Access::Token(Permission::RectifyData),
            "user.rectify",
            patch(subjects::rectify_traits),
        )
        .add(
            Method::PUT,
            "/v1/suppressions/{identity}",
            Access::Token(Permission::ManageSuppressions),
            "suppression.add",
            put(subjects::suppress),
        )
        .add(
            Method::DELETE,
            "/v1/suppressions/{identity}",
            Access::Token(Permission::ManageSuppressions),
            "suppression.remove",
            delete(subjects::unsuppress),
        )
        .add(
            Method::POST,
            "/v1/retention/sweep",
            Access::Token(Permission::ManageRetention),
            "retention.sweep",
            post(subjects::sweep),
        )
        .add(
            Method::POST,
            "/opendsr/v1/requests",
            Access::Token(Permission::OpenDsr),
            "opendsr.create",
            signed(post(opendsr::create)),
        )
        .add(
            Method::GET,
            "/opendsr/v1/requests/{id}",
            Access::Token(Permission::OpenDsr),
            "opendsr.status",
            signed(get(opendsr::status)),
        )
        .add(
            Method::DELETE,
            "/opendsr/v1/requests/{id}",
            Access::Token(Permission::OpenDsr),
            "opendsr.cancel",
            signed(delete(opendsr::cancel)),
        )
        // The prior OpenGDPR names, which the spec says processors must still honour (10.1).
        .add(
            Method::POST,
            "/opendsr/v1/opengdpr_requests",
            Access::Token(Permission::OpenDsr),
            "opendsr.create",
            signed(post(opendsr::create_opengdpr)),
        )
        .add(
            Method::GET,
            "/opendsr/v1/opengdpr_requests/{id}",
            Access::Token(Permission::OpenDsr),
            "opendsr.status",
            signed(get(opendsr::status)),
        )
        .add(
            Method::DELETE,
            "/opendsr/v1/opengdpr_requests/{id}",
            Access::Token(Permission::OpenDsr),
            "opendsr.cancel",
            signed(delete(opendsr::cancel)),
        );
    if app.faults.is_some() {
        let test = Access::Token(Permission::TestControls);
        admin = admin
            .add(
                Method::POST,
                "/v1/admin/faults",
                test,
                "faults.set",
                post(admin::set_faults),
            )
            .add(
                Method::DELETE,
                "/v1/admin/faults",
                test,
                "faults.clear",
                delete(admin::clear_faults),
            )
            .add(
                Method::POST,
                "/v1/admin/reset",
                test,
                "data.reset",
                post(admin::reset),
            );
    }
    let (admin, admin_table) = admin.finish();
    table.extend(admin_table);
    // The console's page reaches these same routes under `/console/api` (its cookie is
    // `Path=/console`): the same handlers with their own auth and audit layers, nested.
    let (console, console_table) = console_routes(Routes::new(Arc::clone(&app))).finish();
    table.extend(console_table);
    let admin = console
        .nest(console::API_PREFIX, admin.clone())
        .merge(admin)
        .route_layer(cors::admin_layer(&app.admin_origins))
        .route_layer(from_fn_with_state(Arc::clone(&app), cors::admin_gate))
        .route_layer(from_fn_with_state(Arc::clone(&app), gate::admin_allowlist));

    let (public, public_table) = Routes::new(Arc::clone(&app))
        .add(
            Method::GET,
            "/healthz",
            Access::Public,
            "health",
            get(health::healthz),
        )
        .add(
            Method::GET,
            "/readyz",
            Access::Public,
            "ready",
            get(health::readyz),
        )
        .add(
            Method::GET,
            "/opendsr/v1/discovery",
            Access::Public,
            "opendsr.discovery",
            get(opendsr::discovery),
        )
        .add(
            Method::GET,
            "/opendsr/v1/certificate.pem",
            Access::Public,
            "opendsr.certificate",
            get(opendsr::certificate),
        )
        .add(
            Method::GET,
            "/v1/exports/{token}",
            Access::Public,
            "export.download",
            get(exports::download),
        )
        .finish();
    table.extend(public_table);

    let request_id = HeaderName::from_static(log::REQUEST_ID);
    let layers = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(log::span)
                .on_request(())
                .on_response(log::answered)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(from_fn_with_state(Arc::clone(&app), routes::count))
        .layer(from_fn(early_close::close_on_error))
        .layer(from_fn_with_state(Arc::clone(&app), gate::client))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            app.request_timeout,
        ));
    let router = public
        .merge(ingest)
        .merge(intake)
        .merge(admin)
        .fallback(not_found)
        .with_state(app)
        .layer(layers);
    (router, table)
}

/// The console's pages, sessions and own routes (see [`console`], [`console_api`]). The pages and
/// the session exchange are public (the exchange checks the token itself); the rest need a
/// token's or a session's permission like every other route.
fn console_routes(routes: Routes) -> Routes {
    let users = Access::Token(Permission::ReadUsers);
    let requests = Access::Token(Permission::EraseData);
    routes
        .add(
            Method::GET,
            "/console/",
            Access::Public,
            "console.page",
            get(console::index),
        )
        .add(
            Method::GET,
            "/console/{file}",
            Access::Public,
            "console.page",
            get(console::file),
        )
        .add(
            Method::POST,
            "/console/api/session",
            Access::Public,
            "console.sign_in",
            post(console::sign_in),
        )
        .add(
            Method::GET,
            "/console/api/session",
            Access::Public,
            "console.session",
            get(console::current),
        )
        .add(
            Method::DELETE,
            "/console/api/session",
            Access::Public,
            "console.sign_out",
            delete(console::sign_out),
        )
        .add(
            Method::GET,
            "/console/api/summary",
            Access::Token(Permission::ReadData),
            "console.summary",
            get(console_api::summary),
        )
        .add(
            Method::GET,
            "/console/api/requests",
            users,
            "console.requests",
            get(console_api::requests),
        )
        .add(
            Method::GET,
            "/console/api/requests/{id}",
            users,
            "console.request",
            get(console_api::request),
        )
        .add(
            Method::POST,
            "/console/api/requests",
            requests,
            "console.request_create",
            post(console_api::create),
        )
        .add(
            Method::DELETE,
            "/console/api/requests/{id}",
            requests,
            "console.request_cancel",
            delete(console_api::cancel),
        )
        .add(
            Method::GET,
            "/console/api/audit/verify",
            Access::Token(Permission::ReadAudit),
            "audit.verify",
            get(console_api::verify),
        )
        .add(
            Method::GET,
            "/console/api/settings",
            Access::Token(Permission::ManageTokens),
            "console.settings",
            get(console_api::settings),
        )
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, None, "not found")
}
