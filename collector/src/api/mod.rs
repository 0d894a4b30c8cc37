//! Operator HTTP API (`/api/v1/...`) and `/healthz`.
//!
//! Every request passes [`auth::gate`]: a bearer API key or a session
//! cookie names the caller, and the one authorization function
//! ([`crate::access::authz`]) decides the route by the caller's role. The
//! caller's scope (its tenants) is applied by the store, so an id of
//! another tenant is simply not found (404), never forbidden (which would
//! leak that it exists).

mod access;
mod admin;
pub mod auth;
mod errors;
mod fleet;
mod maintenance;
mod metrics;
mod openapi;
mod outbox;
mod page;
mod sinks;
mod tickets;
mod tokens;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Error;
use crate::tickets::Service;

pub use errors::BODY_LIMIT_BYTES;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    /// Decisions (anything that changes state or needs policy); reads go
    /// through its `store()`.
    pub svc: Service,
    /// Operators, keys, sessions.
    pub access: crate::access::Access,
    /// The ticket sinks the outbox delivers with, and their last health
    /// checks (none in a router built without them).
    pub sinks: crate::sinks::ops::Running,
    /// The OpenAPI document, serialized once at startup.
    openapi: Arc<str>,
}

/// The `/api/v1` routes and their OpenAPI document.
fn documented_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut doc) = openapi_router().split_for_parts();
    openapi::finish(&mut doc);
    (routes, doc)
}

/// The `/api/v1` routes, each registered with its OpenAPI operation.
fn openapi_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(openapi_json))
        .merge(fleet::routes())
        .merge(metrics::routes())
        .merge(access::routes())
        .merge(tickets::routes())
        .merge(admin::routes())
        .merge(outbox::routes())
        .merge(sinks::routes())
        .merge(maintenance::routes())
        .merge(tokens::routes())
}

/// The HTTP router: `/api/v1` (documented at `/api/v1/openapi.json`),
/// the dashboard, `/healthz` and `/metrics`, every route behind
/// [`auth::gate`]. Every error the API answers, axum's own rejections
/// included, is JSON ([`errors`]).
pub fn router(svc: Service, access: crate::access::Access) -> Router {
    router_with_sinks(svc, access, crate::sinks::ops::Running::default())
}

/// [`router`] with the sinks the outbox delivers with, so the API and the
/// dashboard show and test the real configured receivers.
pub fn router_with_sinks(
    svc: Service,
    access: crate::access::Access,
    sinks: crate::sinks::ops::Running,
) -> Router {
    let (api, doc) = documented_routes();
    let openapi = match doc.to_json() {
        Ok(json) => Arc::from(json),
        Err(error) => {
            // Cannot happen for a document built from types; answer an
            // empty one rather than refuse to serve the API.
            tracing::error!(%error, "openapi document not serializable");
            Arc::from("{}")
        }
    };
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(api)
        .merge(crate::dashboard::router());
    let state = AppState {
        svc,
        access,
        sinks,
        openapi,
    };
    let routes = routes
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::gate,
        ))
        .fallback(errors::no_route)
        .with_state(state);
    // The error rewrite wraps the whole router, not each route: a 405 gets
    // its `Allow` header from the method router, outside a route's layers.
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::map_response(errors::json_errors))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
}

/// This document (OpenAPI 3.1); no key needed.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
async fn openapi_json(State(s): State<AppState>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], s.openapi.to_string())
}

/// Prometheus text format (counts only, no tenant data: no key needed).
/// The outbox gauges are read from the store at each scrape.
async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    match s.svc.store().outbox_depth().await {
        Ok(depth) => {
            let sinks: Vec<String> = s.svc.routes().iter().map(|r| r.name.clone()).collect();
            crate::metrics::METRICS.outbox(&sinks, &depth, crate::domain::now_millis());
        }
        Err(error) => tracing::warn!(%error, "reading the outbox backlog for /metrics failed"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::METRICS.encode(),
    )
}

/// How long `/healthz` waits for the store to answer.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// 200 `{"status":"ok"}`; 503 when the store cannot be read, or when its
/// most recent write failed (`{"status":"store not writable","error":…}`,
/// e.g. a full disk: reports are then not acknowledged and agents keep them).
async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    if let Some(error) = crate::health::STORE_HEALTH.last_error() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "store not writable", "error": error})),
        );
    }
    // A probe must answer fast: a database that does not answer within
    // HEALTH_TIMEOUT is unavailable (the pool would wait 10 s for it).
    let ping = tokio::time::timeout(HEALTH_TIMEOUT, s.svc.store().ping()).await;
    match ping.unwrap_or_else(|_| Err(Error::Unavailable("store ping timed out".into()))) {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))),
        Err(error) => {
            tracing::error!(%error, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "store unavailable"})),
            )
        }
    }
}
