//! The route table: every route is registered here with who may call it and the name its calls
//! have in the audit log, so no authenticated route can exist without a permission.
//! [`Routes::finish`] returns the table of what was registered; the request-level test checks it against its own
//! table of every route and role.

use super::{audit, auth, log, App};
use crate::roles::Permission;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::{from_fn_with_state, map_request_with_state, map_response_with_state, Next};
use axum::response::Response;
use axum::routing::MethodRouter;
use axum::Router;
use std::sync::Arc;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health checks).
    Public,
    /// Anyone with an API key in the request (ingestion).
    ApiKey,
    /// A bearer token whose role has this permission; every call is audited.
    Token(Permission),
}

/// One registered route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// Its method.
    pub method: Method,
    /// Its path pattern, as axum writes it (`/v1/tokens/{id}`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Its action in the audit log (and metrics), e.g. `events.read`.
    pub action: &'static str,
}

/// What the auth and audit layers of one authenticated route know.
#[derive(Debug)]
pub struct Guard {
    /// The shared state.
    pub app: Arc<App>,
    /// What the route needs.
    pub permission: Permission,
    /// Its audit action.
    pub action: &'static str,
}

/// Response marker: the route (its action name) that answered, for the request metrics.
#[derive(Clone, Copy, Debug)]
pub struct RouteAction(pub &'static str);

async fn tag(State(action): State<&'static str>, mut response: Response) -> Response {
    response.extensions_mut().insert(RouteAction(action));
    response
}

/// Counts every answer by route (`unrouted` for 404s and answers made before routing, such as
/// the request deadline's 408) and status.
pub async fn count(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RouteAction>()
        .map_or("unrouted", |r| r.0);
    app.metrics
        .requests
        .with_label_values(&[route, response.status().as_str()])
        .inc();
    response
}

/// A router being built, and the table of what it holds.
pub struct Routes {
    app: Arc<App>,
    router: Router<Arc<App>>,
    table: Vec<RouteInfo>,
}

impl Routes {
    /// No routes yet.
    pub fn new(app: Arc<App>) -> Routes {
        Routes {
            app,
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// Adds `handler` (a method router for `method` alone) at `path`. A [`Access::Token`] route
    /// gets bearer authentication and the audit record.
    pub fn add(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        action: &'static str,
        handler: MethodRouter<Arc<App>>,
    ) -> Routes {
        let handler = match access {
            Access::Public | Access::ApiKey => handler,
            Access::Token(permission) => {
                let guard = Arc::new(Guard {
                    app: Arc::clone(&self.app),
                    permission,
                    action,
                });
                handler
                    .layer(from_fn_with_state(Arc::clone(&guard), auth::authorize))
                    .layer(from_fn_with_state(guard, audit::record))
            }
        };
        let handler = handler
            .layer(map_response_with_state(action, tag))
            .layer(map_request_with_state(path, log::route));
        self.router = self.router.route(path, handler);
        self.table.push(RouteInfo {
            method,
            path,
            access,
            action,
        });
        self
    }

    /// The router and its table.
    pub fn finish(self) -> (Router<Arc<App>>, Vec<RouteInfo>) {
        (self.router, self.table)
    }
}
