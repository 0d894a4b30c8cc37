//! Metric history of one agent, shaped for charts:
//! `GET /api/v1/agents/{id}/metrics?from=&to=` (RFC 3339, default the last
//! 24 hours). Scoped like `GET /api/v1/agents/{id}`: another tenant's
//! agent is not found (404). The shape is `crate::history::MetricSeries`.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::Caller;
use super::{AppState, parse_time};
use crate::Result;
use crate::domain::now_millis;
use crate::history::MetricSeries;

/// The default range: the last day.
const DEFAULT_RANGE_MS: i64 = 24 * 3600 * 1000;

/// The metric history routes, merged into [`super::router`].
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/agents/{id}/metrics", get(agent_metrics))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    /// RFC 3339; default 24 hours before `to`.
    from: Option<String>,
    /// RFC 3339, exclusive; default now.
    to: Option<String>,
}

async fn agent_metrics(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<MetricSeries>> {
    let to = match q.to.as_deref() {
        Some(v) => parse_time("to", v)?,
        None => now_millis(),
    };
    let from = match q.from.as_deref() {
        Some(v) => parse_time("from", v)?,
        None => to - DEFAULT_RANGE_MS,
    };
    Ok(Json(
        s.svc.agent_metrics(&caller.0.scope, &id, from, to).await?,
    ))
}
