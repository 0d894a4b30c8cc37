//! Enrollment tokens: `GET /api/v1/tokens` (scoped like every read, never
//! the secret; filtered and paged) and `POST /api/v1/tokens/{id}/revoke`
//! (technicians and admins; another tenant's id is 404; audited).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::page::{self, Paged};
use crate::Result;
use crate::domain::{EnrollmentToken, now_millis};

/// The token routes, merged into [`super::router`].
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(revoke))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TokenQuery {
    /// Only this tenant (id).
    tenant: Option<String>,
    /// Items per page, 1 to 1000; default 100.
    limit: Option<u32>,
    /// Items to skip (the `Link` header of a page gives the next one).
    offset: Option<u64>,
}

/// Enrollment tokens in scope (never their secrets), newest first, paged.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "admin", params(TokenQuery),
    responses((status = 200, description = "One page of enrollment tokens", body = [EnrollmentToken],
        headers(("link" = String, description = "`<…>; rel=\"next\"` when a next page exists")))))]
async fn list(
    State(s): State<AppState>,
    caller: Caller,
    uri: Uri,
    Query(q): Query<TokenQuery>,
) -> Result<Paged<EnrollmentToken>> {
    let page = page::requested(q.limit, q.offset)?;
    let rows = s
        .svc
        .store()
        .find_enrollment_tokens(&caller.0.scope, q.tenant.as_deref(), page::probe(page))
        .await?;
    Ok(Paged::new(rows, page, &uri))
}

/// Revokes an enrollment token: it enrolls no more agents (audited).
#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", tag = "admin",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, description = "The revoked token", body = EnrollmentToken)))]
async fn revoke(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EnrollmentToken>> {
    Ok(Json(
        s.svc
            .revoke_enrollment_token(&caller.0, &id, now_millis())
            .await?,
    ))
}
