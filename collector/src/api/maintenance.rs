//! Maintenance windows and silences: `GET/POST /api/v1/maintenance`,
//! `DELETE /api/v1/maintenance/{id}`, `GET/POST /api/v1/silences`,
//! `DELETE /api/v1/silences/{id}`.
//!
//! Tenant-scoped by the API key (another tenant, host or window is "not
//! found"); viewers may only read; every change is audited by the store.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use crate::domain::now_millis;
use crate::maintenance::request::{self, SilenceRequest, WindowRequest};
use crate::maintenance::{Kind, WindowView};
use crate::{Error, Result};

/// The maintenance routes, merged into [`super::router`].
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_windows, create_window))
        .routes(routes!(delete_window))
        .routes(routes!(list_silences, create_silence))
        .routes(routes!(delete_silence))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Also list ended one-off windows and silences (kept 7 days).
    #[serde(default)]
    include_ended: bool,
}

async fn list(
    s: &AppState,
    caller: &Caller,
    kinds: &[Kind],
    q: &ListQuery,
) -> Result<Vec<WindowView>> {
    let now = now_millis();
    Ok(s.svc
        .list_maintenance(&caller.0.scope, kinds)
        .await?
        .iter()
        .map(|w| WindowView::new(w, now))
        .filter(|v| q.include_ended || !v.ended)
        .collect())
}

/// Planned windows in scope (at most the newest 1000).
#[utoipa::path(get, path = "/api/v1/maintenance", tag = "maintenance", params(ListQuery),
    responses((status = 200, description = "Windows", body = [WindowView])))]
async fn list_windows(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<WindowView>>> {
    Ok(Json(list(&s, &caller, &Kind::WINDOWS, &q).await?))
}

/// Silences in scope (at most the newest 1000).
#[utoipa::path(get, path = "/api/v1/silences", tag = "maintenance", params(ListQuery),
    responses((status = 200, description = "Silences", body = [WindowView])))]
async fn list_silences(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<WindowView>>> {
    Ok(Json(list(&s, &caller, &Kind::SILENCES, &q).await?))
}

/// Creates a planned window (audited).
#[utoipa::path(post, path = "/api/v1/maintenance", tag = "maintenance",
    request_body = WindowRequest,
    responses((status = 201, description = "The new window", body = WindowView)))]
async fn create_window(
    State(s): State<AppState>,
    caller: Caller,
    Json(body): Json<WindowRequest>,
) -> Result<(StatusCode, Json<WindowView>)> {
    let now = now_millis();
    let w = request::create_window(&s.svc, &caller.0, body, now).await?;
    Ok((StatusCode::CREATED, Json(WindowView::new(&w, now))))
}

/// Creates a silence from now (audited).
#[utoipa::path(post, path = "/api/v1/silences", tag = "maintenance",
    request_body = SilenceRequest,
    responses((status = 201, description = "The new silence", body = WindowView)))]
async fn create_silence(
    State(s): State<AppState>,
    caller: Caller,
    Json(body): Json<SilenceRequest>,
) -> Result<(StatusCode, Json<WindowView>)> {
    let now = now_millis();
    let w = request::create_silence(&s.svc, &caller.0, body, now).await?;
    Ok((StatusCode::CREATED, Json(WindowView::new(&w, now))))
}

async fn remove(
    s: &AppState,
    caller: &Caller,
    id: &str,
    kinds: &[Kind],
) -> Result<Json<WindowView>> {
    let n: i64 = id.parse().map_err(|_| Error::NotFound(format!("{id:?}")))?;
    let now = now_millis();
    let w = s.svc.delete_maintenance(&caller.0, n, kinds, now).await?;
    Ok(Json(WindowView::new(&w, now)))
}

/// Deletes a planned window (audited).
#[utoipa::path(delete, path = "/api/v1/maintenance/{id}", tag = "maintenance",
    params(("id" = String, Path, description = "Window id (a number)")),
    responses((status = 200, description = "The deleted window", body = WindowView)))]
async fn delete_window(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WindowView>> {
    remove(&s, &caller, &id, &Kind::WINDOWS).await
}

/// Deletes a silence (audited).
#[utoipa::path(delete, path = "/api/v1/silences/{id}", tag = "maintenance",
    params(("id" = String, Path, description = "Silence id (a number)")),
    responses((status = 200, description = "The deleted silence", body = WindowView)))]
async fn delete_silence(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WindowView>> {
    remove(&s, &caller, &id, &Kind::SILENCES).await
}
