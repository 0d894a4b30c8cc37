//! `GET /api/v1/outbox`: what the ticket sinks still owe and what they
//! gave up on, scoped like every read (an MSP-wide key sees every tenant),
//! filtered and paged.

use axum::extract::{Query, State};
use axum::http::Uri;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::page::{self, Paged};
use crate::Result;
use crate::sinks::outbox::{OutboxEntry, OutboxState};

/// The outbox routes, merged into [`super::router`].
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Which outbox rows, by delivery state.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum StateParam {
    Pending,
    Delivered,
    Failed,
    All,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct OutboxQuery {
    /// `pending`, `delivered`, `failed` or `all` (default).
    #[param(inline)]
    state: Option<StateParam>,
    /// Only this tenant (id).
    tenant: Option<String>,
    /// Items per page, 1 to 1000; default 100.
    limit: Option<u32>,
    /// Items to skip (the `Link` header of a page gives the next one).
    offset: Option<u64>,
}

/// Sink deliveries in scope, newest first, paged. `state` is `pending`
/// (waiting or retrying: `attempts`, `next_attempt_at`, `last_error`),
/// `delivered`, or `failed`, which covers two cases told apart by
/// `last_error`: **parked** (the receiver refused it, e.g. bad
/// credentials: fix the cause, then `POST /api/v1/outbox/{id}/retry`) and
/// **gave up** (retryable failures past the sink's `give_up_after_secs`;
/// the error starts with "gave up after").
#[utoipa::path(get, path = "/api/v1/outbox", tag = "admin", params(OutboxQuery),
    responses((status = 200, description = "One page of outbox rows", body = [OutboxEntry],
        headers(("link" = String, description = "`<…>; rel=\"next\"` when a next page exists")))))]
async fn list(
    State(s): State<AppState>,
    caller: Caller,
    uri: Uri,
    Query(q): Query<OutboxQuery>,
) -> Result<Paged<OutboxEntry>> {
    let page = page::requested(q.limit, q.offset)?;
    let state = match q.state {
        None | Some(StateParam::All) => None,
        Some(StateParam::Pending) => Some(OutboxState::Pending),
        Some(StateParam::Delivered) => Some(OutboxState::Delivered),
        Some(StateParam::Failed) => Some(OutboxState::Failed),
    };
    let rows = s
        .svc
        .store()
        .find_outbox(
            &caller.0.scope,
            state,
            q.tenant.as_deref(),
            page::probe(page),
        )
        .await?;
    Ok(Paged::new(rows, page, &uri))
}
