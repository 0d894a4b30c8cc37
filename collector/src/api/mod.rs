//! Operator HTTP API (`/api/v1/...`) and `/healthz`.
//!
//! Every request passes [`auth::gate`]: a bearer API key or a session
//! cookie names the caller, and the one authorization function
//! ([`crate::access::authz`]) decides the route by the caller's role. The
//! caller's scope (its tenants) is applied by the store, so an id of
//! another tenant is simply not found (404), never forbidden (which would
//! leak that it exists).

mod access;
pub mod auth;
mod maintenance;
mod metrics;
mod outbox;
mod tokens;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::domain::{
    ActionOutcome, Agent, AgentDetail, AuditEntry, Tenant, Ticket, TicketAction, TicketDetail,
    TicketState, now_millis,
};
use crate::tickets::Service;
use crate::{Error, Result};
use auth::Caller;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    /// Decisions (anything that changes state or needs policy); reads go
    /// through its `store()`.
    pub svc: Service,
    /// Operators, keys, sessions.
    pub access: crate::access::Access,
}

/// The HTTP router: API, dashboard and probes, behind [`auth::gate`].
pub fn router(svc: Service, access: crate::access::Access) -> Router {
    let state = AppState { svc, access };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/tenants", get(list_tenants))
        .route("/api/v1/agents", get(list_agents))
        .route("/api/v1/agents/{id}", get(get_agent))
        .route("/api/v1/agents/{id}/revoke", post(revoke_agent))
        .route("/api/v1/tickets", get(list_tickets))
        .route("/api/v1/tickets/{id}", get(get_ticket))
        .route("/api/v1/tickets/{id}/acknowledge", post(acknowledge))
        .route("/api/v1/tickets/{id}/assign", post(assign))
        .route("/api/v1/tickets/{id}/escalate", post(escalate))
        .route("/api/v1/tickets/{id}/notes", post(add_note))
        .route("/api/v1/tickets/{id}/resolve", post(resolve))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/kpis", get(kpis))
        .merge(outbox::routes())
        .merge(maintenance::routes())
        .merge(tokens::routes())
        .merge(access::routes())
        .merge(metrics::routes())
        .merge(crate::dashboard::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::gate,
        ))
        .fallback(|| async { Error::NotFound("no such route".into()) })
        .with_state(state)
}

/// Prometheus text format (counts only, no tenant data: no key needed).
async fn metrics() -> impl IntoResponse {
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

async fn list_tenants(State(s): State<AppState>, caller: Caller) -> Result<Json<Vec<Tenant>>> {
    Ok(Json(s.svc.store().list_tenants(&caller.0.scope).await?))
}

async fn list_agents(State(s): State<AppState>, caller: Caller) -> Result<Json<Vec<Agent>>> {
    Ok(Json(s.svc.list_agents(&caller.0.scope).await?))
}

async fn get_agent(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AgentDetail>> {
    s.svc
        .get_agent(&caller.0.scope, &id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("agent {id}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TicketQuery {
    /// `open`, `resolved` or `all` (default).
    state: Option<String>,
}

async fn list_tickets(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<TicketQuery>,
) -> Result<Json<Vec<Ticket>>> {
    let state = match q.state.as_deref() {
        None | Some("all") => None,
        Some(v) => Some(TicketState::parse(v).ok_or_else(|| {
            Error::InvalidArgument(format!("state must be open, resolved or all, not {v:?}"))
        })?),
    };
    Ok(Json(
        s.svc.store().list_tickets(&caller.0.scope, state).await?,
    ))
}

async fn get_ticket(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TicketDetail>> {
    s.svc
        .store()
        .get_ticket(&caller.0.scope, ticket_id(&id)?)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("ticket {id}")))
}

/// A ticket id from the path; anything but a number is no ticket (404).
fn ticket_id(id: &str) -> Result<i64> {
    id.parse()
        .map_err(|_| Error::NotFound(format!("ticket {id}")))
}

async fn act(
    s: &AppState,
    caller: &Caller,
    id: &str,
    action: TicketAction,
) -> Result<Json<ActionOutcome>> {
    let id = ticket_id(id)?;
    Ok(Json(
        s.svc
            .ticket_action(&caller.0, id, &action, now_millis())
            .await?,
    ))
}

async fn acknowledge(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ActionOutcome>> {
    act(&s, &caller, &id, TicketAction::Acknowledge).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    assignee: String,
}

async fn assign(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<AssignBody>,
) -> Result<Json<ActionOutcome>> {
    act(&s, &caller, &id, TicketAction::Assign(body.assignee)).await
}

async fn escalate(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ActionOutcome>> {
    act(&s, &caller, &id, TicketAction::Escalate).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    text: String,
}

async fn add_note(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<NoteBody>,
) -> Result<Json<ActionOutcome>> {
    act(&s, &caller, &id, TicketAction::Note(body.text)).await
}

async fn resolve(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ActionOutcome>> {
    act(&s, &caller, &id, TicketAction::Resolve).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<u32>,
}

async fn audit(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>> {
    Ok(Json(
        s.svc
            .store()
            .audit_log(&caller.0.scope, q.limit.unwrap_or(100))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KpiQuery {
    /// RFC 3339; default 30 days before `to`.
    from: Option<String>,
    /// RFC 3339; default now.
    to: Option<String>,
}

fn parse_time(name: &str, v: &str) -> Result<crate::domain::Millis> {
    crate::domain::rfc3339::parse(v)
        .map_err(|e| Error::InvalidArgument(format!("{name}: expected RFC 3339, {e}")))
}

async fn kpis(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<KpiQuery>,
) -> Result<Json<Vec<crate::domain::TenantKpis>>> {
    let to = match q.to.as_deref() {
        Some(v) => parse_time("to", v)?,
        None => now_millis(),
    };
    let from = match q.from.as_deref() {
        Some(v) => parse_time("from", v)?,
        None => to - 30 * 24 * 3600 * 1000,
    };
    if from >= to {
        return Err(Error::InvalidArgument("from must be before to".into()));
    }
    Ok(Json(s.svc.kpis(&caller.0.scope, from, to).await?))
}

async fn revoke_agent(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Agent>> {
    Ok(Json(
        s.svc.revoke_agent(&caller.0, &id, now_millis()).await?,
    ))
}
