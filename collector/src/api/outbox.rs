//! `GET /api/v1/outbox`: what the ticket sinks still owe and what they
//! gave up on, scoped like every read (an MSP-wide key sees every tenant).

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::AppState;
use super::auth::Caller;
use crate::sinks::outbox::{OutboxEntry, OutboxState};
use crate::{Error, Result};

/// The outbox routes, merged into [`super::router`].
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/outbox", get(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboxQuery {
    /// `pending`, `delivered`, `failed` or `all` (default).
    state: Option<String>,
    /// Newest rows first; default 100, at most 1000.
    limit: Option<u32>,
}

async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<OutboxQuery>,
) -> Result<Json<Vec<OutboxEntry>>> {
    let state = match q.state.as_deref() {
        None | Some("all") => None,
        Some(v) => Some(OutboxState::parse(v).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "state must be pending, delivered, failed or all, not {v:?}"
            ))
        })?),
    };
    Ok(Json(
        s.svc
            .store()
            .list_outbox(&caller.0.scope, state, q.limit.unwrap_or(100))
            .await?,
    ))
}
