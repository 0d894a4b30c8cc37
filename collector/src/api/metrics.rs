//! Metric history of one agent, shaped for charts:
//! `GET /api/v1/agents/{id}/metrics?from=&to=` (RFC 3339, default the last
//! 24 hours). Scoped like `GET /api/v1/agents/{id}`: another tenant's
//! agent is not found (404). The shape is `crate::history::MetricSeries`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::admin::time_range;
use super::auth::Caller;
use crate::Result;
use crate::history::MetricSeries;

/// The default range: the last day.
const DEFAULT_RANGE_MS: i64 = 24 * 3600 * 1000;

/// The metric history routes, merged into [`super::router`].
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(agent_metrics))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RangeQuery {
    /// RFC 3339; default 24 hours before `to`.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339, exclusive; default now.
    #[param(format = DateTime)]
    to: Option<String>,
}

/// One agent's metric history, shaped for charts.
#[utoipa::path(get, path = "/api/v1/agents/{id}/metrics", tag = "fleet",
    params(("id" = String, Path, description = "Agent id"), RangeQuery),
    responses((status = 200, description = "The agent's series", body = MetricSeries)))]
async fn agent_metrics(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<MetricSeries>> {
    let (from, to) = time_range(q.from.as_deref(), q.to.as_deref(), DEFAULT_RANGE_MS)?;
    Ok(Json(
        s.svc.agent_metrics(&caller.0.scope, &id, from, to).await?,
    ))
}
