//! Tickets: `GET /api/v1/tickets` (filtered, sorted, paged),
//! `GET /api/v1/tickets/{id}` and the actions
//! `POST /api/v1/tickets/{id}/{acknowledge,assign,escalate,notes,resolve}`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::page::{self, Paged};
use crate::domain::{
    ActionOutcome, Ticket, TicketAction, TicketDetail, TicketFilter, TicketSort, TicketState,
    now_millis,
};
use crate::store::SinkLink;
use crate::{Error, Result};

/// The ticket routes, merged into [`super::router`].
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tickets))
        .routes(routes!(get_ticket))
        .routes(routes!(acknowledge))
        .routes(routes!(assign))
        .routes(routes!(escalate))
        .routes(routes!(add_note))
        .routes(routes!(resolve))
}

/// Which tickets, by state.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum StateParam {
    Open,
    Resolved,
    All,
}

/// The order of the list.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum SortParam {
    /// Newest first.
    Newest,
    /// The work queue: priority (P1 first), then SLA due time (acknowledge
    /// due while unacknowledged, then resolve due), then oldest first.
    Priority,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TicketQuery {
    /// `open`, `resolved` or `all` (default).
    #[param(inline)]
    state: Option<StateParam>,
    /// Only this tenant (id).
    tenant: Option<String>,
    /// Only this agent (id).
    agent: Option<String>,
    /// Only this hostname (exact).
    host: Option<String>,
    /// Only this support tier (1 = L1, 2 = L2, 3 = L3).
    tier: Option<u8>,
    /// Only this check kind (`disk`, `agent`, …).
    check: Option<String>,
    /// `newest` (default) or `priority`.
    #[param(inline)]
    sort: Option<SortParam>,
    /// Items per page, 1 to 1000; default 100.
    limit: Option<u32>,
    /// Items to skip (the `Link` header of a page gives the next one).
    offset: Option<u64>,
}

/// Tickets in scope, filtered, sorted and paged.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", params(TicketQuery),
    responses((status = 200, description = "One page of tickets", body = [Ticket],
        headers(("link" = String, description = "`<…>; rel=\"next\"` when a next page exists")))))]
async fn list_tickets(
    State(s): State<AppState>,
    caller: Caller,
    uri: Uri,
    Query(q): Query<TicketQuery>,
) -> Result<Paged<Ticket>> {
    let page = page::requested(q.limit, q.offset)?;
    let filter = TicketFilter {
        state: match q.state {
            None | Some(StateParam::All) => None,
            Some(StateParam::Open) => Some(TicketState::Open),
            Some(StateParam::Resolved) => Some(TicketState::Resolved),
        },
        tenant_id: q.tenant,
        agent_id: q.agent,
        host: q.host,
        tier: q.tier,
        check: q.check,
        sort: match q.sort {
            None | Some(SortParam::Newest) => TicketSort::Newest,
            Some(SortParam::Priority) => TicketSort::Priority,
        },
    };
    let rows = s
        .svc
        .store()
        .find_tickets(&caller.0.scope, &filter, page::probe(page))
        .await?;
    Ok(Paged::new(rows, page, &uri))
}

/// One ticket with its timeline.
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id (a number)", example = "1")),
    responses((status = 200, description = "The ticket, its events and its links to the sinks' own tickets", body = TicketView)))]
async fn get_ticket(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TicketView>> {
    let scope = &caller.0.scope;
    let n = ticket_id(&id)?;
    let detail = s
        .svc
        .store()
        .get_ticket(scope, n)
        .await?
        .ok_or_else(|| Error::NotFound(format!("ticket {id}")))?;
    let links = s.svc.store().ticket_links(scope, n).await?;
    Ok(Json(TicketView { detail, links }))
}

/// A ticket as `GET /api/v1/tickets/{id}` answers it.
#[derive(Debug, Serialize, ToSchema)]
struct TicketView {
    #[serde(flatten)]
    detail: TicketDetail,
    /// The tickets sinks made for it on their side (PSA tickets), oldest
    /// first: sink, external id, url, and who closed it there and when.
    links: Vec<SinkLink>,
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

/// Acknowledges the ticket (stops its acknowledge escalation).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/acknowledge", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id (a number)", example = "1")),
    responses((status = 200, description = "The ticket after the action", body = ActionOutcome)))]
async fn acknowledge(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ActionOutcome>> {
    act(&s, &caller, &id, TicketAction::Acknowledge).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    /// Who works the ticket.
    assignee: String,
}

/// Assigns the ticket.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/assign", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id (a number)", example = "1")),
    request_body = AssignBody,
    responses((status = 200, description = "The ticket after the action", body = ActionOutcome)))]
async fn assign(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<AssignBody>,
) -> Result<Json<ActionOutcome>> {
    act(&s, &caller, &id, TicketAction::Assign(body.assignee)).await
}

/// Escalates the ticket to the next tier.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/escalate", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id (a number)", example = "1")),
    responses((status = 200, description = "The ticket after the action", body = ActionOutcome)))]
async fn escalate(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ActionOutcome>> {
    act(&s, &caller, &id, TicketAction::Escalate).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    /// The note, added to the ticket's timeline.
    text: String,
}

/// Adds a note to the ticket's timeline.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/notes", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id (a number)", example = "1")),
    request_body = NoteBody,
    responses((status = 200, description = "The ticket after the action", body = ActionOutcome)))]
async fn add_note(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<NoteBody>,
) -> Result<Json<ActionOutcome>> {
    act(&s, &caller, &id, TicketAction::Note(body.text)).await
}

/// Resolves the ticket by hand (the engine reopens it if its problem is
/// still failing: see `still_failing`).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/resolve", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id (a number)", example = "1")),
    responses((status = 200, description = "The ticket after the action", body = ActionOutcome)))]
async fn resolve(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ActionOutcome>> {
    act(&s, &caller, &id, TicketAction::Resolve).await
}
