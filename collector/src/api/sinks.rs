//! The sinks' operator surface: `GET /api/v1/sinks` (each sink with its
//! routes, last health check and backlog, never a secret),
//! `POST /api/v1/sinks/{name}/test` (the health check, now), and sending
//! failed deliveries again: `POST /api/v1/outbox/{id}/retry` (one row, in
//! the caller's scope) and `POST /api/v1/outbox/retry` (a sink's, maybe
//! one tenant's). A failed row is either *parked* (the receiver refused
//! it: fix the cause, then send it again) or *given up* (its retry horizon
//! passed; `last_error` starts with "gave up after").

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use crate::domain::now_millis;
use crate::sinks::health::Health;
use crate::sinks::ops::{self, SinkStatus};
use crate::{Error, Result};

/// The sink routes, merged into [`super::router`].
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(test))
        .routes(routes!(retry_one))
        .routes(routes!(retry_sink))
}

/// Every configured sink: name, kind, routes, the last health check this
/// collector ran, and the backlog (pending, oldest pending, failed).
#[utoipa::path(get, path = "/api/v1/sinks", tag = "admin",
    responses((status = 200, description = "The configured sinks", body = [SinkStatus])))]
async fn list(State(s): State<AppState>) -> Result<Json<Vec<SinkStatus>>> {
    Ok(Json(ops::statuses(&s.sinks, s.svc.store().as_ref()).await?))
}

/// Runs the sink's health check now (the real call, without side effects
/// where the vendor allows it), records and returns it. A failed check
/// is `200` with `ok: false`: the check ran.
#[utoipa::path(post, path = "/api/v1/sinks/{name}/test", tag = "admin",
    params(("name" = String, Path, description = "Sink name")),
    responses((status = 200, description = "The check's result", body = Health)))]
async fn test(State(s): State<AppState>, Path(name): Path<String>) -> Result<Json<Health>> {
    Ok(Json(s.sinks.test(&name, now_millis()).await?))
}

/// How many deliveries went back to pending.
#[derive(Debug, Serialize, ToSchema)]
struct Requeued {
    requeued: u64,
}

/// Sends one parked or given-up delivery again (due now, same
/// idempotency key), audited. Another tenant's row is 404; a pending or
/// delivered one is 409.
#[utoipa::path(post, path = "/api/v1/outbox/{id}/retry", tag = "admin",
    params(("id" = String, Path, description = "Outbox row id (a number)", example = "1")),
    responses((status = 200, description = "Sent again", body = Requeued)))]
async fn retry_one(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Requeued>> {
    let id: i64 = id
        .parse()
        .map_err(|_| Error::NotFound(format!("outbox row {id}")))?;
    let requeued = ops::retry_one(s.svc.store().as_ref(), &caller.0, id, now_millis()).await?;
    Ok(Json(Requeued { requeued }))
}

/// Which failed deliveries to send again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RetryRequest {
    /// A configured sink's name.
    sink: String,
    /// Only this tenant's (id or name).
    tenant: Option<String>,
}

/// Sends every parked or given-up delivery of a sink (of one tenant if
/// given) again, audited. An unknown sink is 404 naming the configured
/// ones.
#[utoipa::path(post, path = "/api/v1/outbox/retry", tag = "admin", request_body = RetryRequest,
    responses((status = 200, description = "Sent again", body = Requeued)))]
async fn retry_sink(
    State(s): State<AppState>,
    caller: Caller,
    Json(body): Json<RetryRequest>,
) -> Result<Json<Requeued>> {
    let store = s.svc.store();
    let sink = s.sinks.find(&body.sink)?.settings.name.clone();
    let tenant = match &body.tenant {
        Some(t) => Some(ops::tenant_in_scope(store.as_ref(), &caller.0.scope, t).await?),
        None => None,
    };
    let requeued = ops::retry_sink(
        store.as_ref(),
        &caller.0,
        &sink,
        tenant.as_deref(),
        now_millis(),
    )
    .await?;
    Ok(Json(Requeued { requeued }))
}
