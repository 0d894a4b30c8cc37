//! The audit log (`GET /api/v1/audit`, filtered and paged) and KPIs
//! (`GET /api/v1/kpis`).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::Uri;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::page::{self, Paged};
use crate::domain::{AuditEntry, Millis, TenantKpis, now_millis};
use crate::{Error, Result};

/// The admin routes, merged into [`super::router`].
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit))
        .routes(routes!(kpis))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only this tenant (id).
    tenant: Option<String>,
    /// Items per page, 1 to 1000; default 100.
    limit: Option<u32>,
    /// Items to skip (the `Link` header of a page gives the next one).
    offset: Option<u64>,
}

/// Audit entries in scope, newest first, paged.
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, description = "One page of audit entries", body = [AuditEntry],
        headers(("link" = String, description = "`<…>; rel=\"next\"` when a next page exists")))))]
async fn audit(
    State(s): State<AppState>,
    caller: Caller,
    uri: Uri,
    Query(q): Query<AuditQuery>,
) -> Result<Paged<AuditEntry>> {
    let page = page::requested(q.limit, q.offset)?;
    let rows = s
        .svc
        .store()
        .find_audit(&caller.0.scope, q.tenant.as_deref(), page::probe(page))
        .await?;
    Ok(Paged::new(rows, page, &uri))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct KpiQuery {
    /// RFC 3339; default 30 days before `to`.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339; default now.
    #[param(format = DateTime)]
    to: Option<String>,
}

fn parse_time(name: &str, v: &str) -> Result<Millis> {
    crate::domain::rfc3339::parse(v)
        .map_err(|e| Error::InvalidArgument(format!("{name}: expected RFC 3339, {e}")))
}

/// `[from, to)` from optional RFC 3339 query values: `to` defaults to
/// now, `from` to `default_ms` before `to`; `from` must come first.
pub(super) fn time_range(
    from: Option<&str>,
    to: Option<&str>,
    default_ms: Millis,
) -> Result<(Millis, Millis)> {
    let to = match to {
        Some(v) => parse_time("to", v)?,
        None => now_millis(),
    };
    let from = match from {
        Some(v) => parse_time("from", v)?,
        None => to - default_ms,
    };
    if from >= to {
        return Err(Error::InvalidArgument("from must be before to".into()));
    }
    Ok((from, to))
}

/// KPIs per tenant in scope over `[from, to)`.
#[utoipa::path(get, path = "/api/v1/kpis", tag = "admin", params(KpiQuery),
    responses((status = 200, description = "KPIs per tenant", body = [TenantKpis])))]
async fn kpis(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<KpiQuery>,
) -> Result<Json<Vec<TenantKpis>>> {
    let (from, to) = time_range(q.from.as_deref(), q.to.as_deref(), 30 * 24 * 3600 * 1000)?;
    Ok(Json(s.svc.kpis(&caller.0.scope, from, to).await?))
}
