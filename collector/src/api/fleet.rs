//! Tenants and agents: `GET /api/v1/tenants`, `GET /api/v1/agents`
//! (filtered, paged), `GET /api/v1/agents/{id}` and
//! `POST /api/v1/agents/{id}/revoke`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::page::{self, Paged};
use crate::domain::{Agent, AgentDetail, AgentFilter, Tenant, now_millis};
use crate::{Error, Result};

/// The fleet routes, merged into [`super::router`].
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants))
        .routes(routes!(list_agents))
        .routes(routes!(get_agent))
        .routes(routes!(revoke_agent))
}

/// The tenants the key may see, by name.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "fleet",
    responses((status = 200, description = "Tenants in scope", body = [Tenant])))]
async fn list_tenants(State(s): State<AppState>, caller: Caller) -> Result<Json<Vec<Tenant>>> {
    Ok(Json(s.svc.store().list_tenants(&caller.0.scope).await?))
}

/// An agent's connection status, as `Agent.status` shows it.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum AgentStatus {
    Enrolled,
    Online,
    Disconnected,
    Offline,
}

impl AgentStatus {
    fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Enrolled => "enrolled",
            AgentStatus::Online => "online",
            AgentStatus::Disconnected => "disconnected",
            AgentStatus::Offline => "offline",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AgentQuery {
    /// Only this tenant (id).
    tenant: Option<String>,
    /// Only this site.
    site: Option<String>,
    /// Hostname contains this (case-insensitive).
    search: Option<String>,
    /// Only agents in this connection status.
    #[param(inline)]
    state: Option<AgentStatus>,
    /// Only overdue (`true`) or not overdue (`false`) agents.
    overdue: Option<bool>,
    /// Items per page, 1 to 1000; default 100.
    limit: Option<u32>,
    /// Items to skip (the `Link` header of a page gives the next one).
    offset: Option<u64>,
}

/// Agents in scope, by hostname, filtered and paged.
#[utoipa::path(get, path = "/api/v1/agents", tag = "fleet", params(AgentQuery),
    responses((status = 200, description = "One page of agents", body = [Agent],
        headers(("link" = String, description = "`<…>; rel=\"next\"` when a next page exists")))))]
async fn list_agents(
    State(s): State<AppState>,
    caller: Caller,
    uri: Uri,
    Query(q): Query<AgentQuery>,
) -> Result<Paged<Agent>> {
    let page = page::requested(q.limit, q.offset)?;
    let filter = AgentFilter {
        tenant_id: q.tenant,
        site: q.site,
        hostname_contains: q.search.filter(|s| !s.is_empty()),
        status: q.state.map(|s| s.as_str().to_string()),
        overdue: q.overdue,
    };
    let rows = s
        .svc
        .find_agents(&caller.0.scope, &filter, page::probe(page))
        .await?;
    Ok(Paged::new(rows, page, &uri))
}

/// One agent with its checks' latest states.
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "fleet",
    params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, description = "The agent", body = AgentDetail)))]
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

/// Revokes an agent's certificate: its sessions close and it may not
/// reconnect (audited).
#[utoipa::path(post, path = "/api/v1/agents/{id}/revoke", tag = "fleet",
    params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, description = "The revoked agent", body = Agent)))]
async fn revoke_agent(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Agent>> {
    Ok(Json(
        s.svc.revoke_agent(&caller.0, &id, now_millis()).await?,
    ))
}
