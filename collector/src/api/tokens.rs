//! Enrollment tokens: `GET /api/v1/tokens` (scoped like every read, never
//! the secret) and `POST /api/v1/tokens/{id}/revoke` (technicians and
//! admins; another tenant's id is 404; audited).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::AppState;
use super::auth::Caller;
use crate::Result;
use crate::domain::{EnrollmentToken, now_millis};

/// The token routes, merged into [`super::router`].
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tokens", get(list))
        .route("/api/v1/tokens/{id}/revoke", post(revoke))
}

async fn list(State(s): State<AppState>, caller: Caller) -> Result<Json<Vec<EnrollmentToken>>> {
    Ok(Json(
        s.svc
            .store()
            .list_enrollment_tokens(&caller.0.scope)
            .await?,
    ))
}

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
