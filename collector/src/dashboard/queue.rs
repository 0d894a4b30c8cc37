//! The ticket queue (`GET /tickets`): open tickets by priority, then SLA
//! due time, filtered by a GET form and paged; acknowledge, assign,
//! escalate, note and resolve one ticket (`POST /tickets/{id}/act`) or
//! several at once (`POST /tickets/act`), each through the same
//! [`Service::ticket_action`](crate::tickets::Service::ticket_action) the
//! JSON API uses, then 303 back with what happened.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::page::{Page, render};
use super::work_util::{Fields, local, relative, said, see_other, span, tenant_name};
use crate::api::AppState;
use crate::api::auth::{Caller, Csrf};
use crate::domain::{ActionOutcome, ApiCaller, Ticket, TicketAction, TicketState, now_millis};
use crate::domain::{TicketFilter, TicketSort};
use crate::{Error, Result};

/// Rows per page: enough to work, few enough to send fast with 10,000 tickets.
const PAGE_SIZE: u32 = 50;
/// Most tickets one bulk action changes.
const MAX_BULK: usize = 200;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/tickets", get(queue))
        .route("/tickets/act", post(bulk))
        .route("/tickets/{id}/act", post(one))
}

/// One ticket as a queue row.
pub(super) struct Row {
    pub id: i64,
    pub priority: String,
    pub tier: u8,
    pub age: String,
    pub assignee: String,
    pub host: String,
    pub check: String,
    pub summary: String,
    pub state: &'static str,
    pub acknowledged: bool,
    pub due: String,
    pub breached: bool,
    pub tenant: String,
}

impl Row {
    pub(super) fn new(t: &Ticket, tenant: &str, now: i64) -> Self {
        let due = match (t.state, t.ack_due_at, t.resolve_due_at) {
            (TicketState::Resolved, _, _) => String::new(),
            (_, Some(ack), _) => format!("ack {}", relative(ack, now)),
            (_, None, Some(res)) => format!("resolve {}", relative(res, now)),
            _ => String::new(),
        };
        let check = if t.item.is_empty() {
            t.check.clone()
        } else {
            format!("{} {}", t.check, t.item)
        };
        Self {
            id: t.id,
            priority: t.priority.clone(),
            tier: t.tier,
            age: span(now - t.opened_at),
            assignee: t.assignee.clone().unwrap_or_default(),
            host: if t.host.is_empty() {
                t.site.clone()
            } else {
                t.host.clone()
            },
            check,
            summary: t.summary.clone(),
            state: t.state.as_str(),
            acknowledged: t.acknowledged_at.is_some(),
            due,
            breached: t.ack_breached || t.resolve_breached,
            tenant: tenant.to_string(),
        }
    }
}

/// A tenant as a filter choice.
pub(super) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    page: Page,
    rows: Vec<Row>,
    tenants: Vec<Choice>,
    state: String,
    host: String,
    tier: String,
    page_no: u32,
    prev: Option<String>,
    next: Option<String>,
    /// This page's URL (forms come back to it).
    here: String,
    flash: String,
    errors: Vec<String>,
}

/// The page's query: filters, page number and the flash of a redirect.
fn filter_from(q: &Fields, tenant_ids: &[String]) -> Result<(TicketFilter, u32)> {
    let state = match q.get("state").unwrap_or("open") {
        "all" => None,
        v => Some(TicketState::parse(v).ok_or_else(|| {
            Error::InvalidArgument(format!("state must be open, resolved or all, not {v:?}"))
        })?),
    };
    let tier = q
        .get("tier")
        .map(|v| {
            v.parse::<u8>()
                .map_err(|_| Error::InvalidArgument(format!("tier must be 1, 2 or 3, not {v:?}")))
        })
        .transpose()?;
    let page = q
        .get("page")
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| Error::InvalidArgument(format!("page must be a number, not {v:?}")))
        })
        .transpose()?
        .unwrap_or(1)
        .clamp(1, 10_000);
    // A tenant outside the scope would match nothing anyway; refusing it
    // here says so instead of showing an empty queue.
    let tenant_id = q.get("tenant").map(str::to_string);
    if let Some(t) = &tenant_id
        && !tenant_ids.contains(t)
    {
        return Err(Error::NotFound(format!("tenant {t}")));
    }
    Ok((
        TicketFilter {
            tenant_id,
            state,
            host: q.get("host").map(str::to_string),
            tier,
            sort: TicketSort::Priority,
            ..TicketFilter::default()
        },
        page,
    ))
}

fn query_with(q: &Fields, page: u32) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for key in ["tenant", "state", "host", "tier"] {
        if let Some(v) = q.get(key) {
            s.append_pair(key, v);
        }
    }
    if page > 1 {
        s.append_pair("page", &page.to_string());
    }
    let s = s.finish();
    if s.is_empty() {
        "/tickets".into()
    } else {
        format!("/tickets?{s}")
    }
}

async fn queue(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let q = Fields::query(raw);
    let tenants = s.svc.store().list_tenants(&caller.0.scope).await?;
    let ids: Vec<String> = tenants.iter().map(|t| t.id.clone()).collect();
    let (filter, page_no) = filter_from(&q, &ids)?;
    let mut tickets = s
        .svc
        .store()
        .find_tickets(
            &caller.0.scope,
            &filter,
            crate::domain::Page {
                limit: u64::from(PAGE_SIZE) + 1,
                offset: u64::from(page_no - 1) * u64::from(PAGE_SIZE),
            },
        )
        .await?;
    let more = tickets.len() > PAGE_SIZE as usize;
    tickets.truncate(PAGE_SIZE as usize);
    let now = now_millis();
    let name = |id: &str| tenant_name(&tenants, id);
    let rows = tickets
        .iter()
        .map(|t| Row::new(t, &name(&t.tenant_id), now))
        .collect();
    let here = query_with(&q, page_no);
    Ok(render(&QueuePage {
        page: Page::new(&caller, csrf.as_deref(), "Tickets", "/tickets"),
        rows,
        tenants: tenants
            .iter()
            .map(|t| Choice {
                value: t.id.clone(),
                label: t.name.clone(),
                selected: filter.tenant_id.as_deref() == Some(t.id.as_str()),
            })
            .collect(),
        state: q.get("state").unwrap_or("open").to_string(),
        host: q.text("host"),
        tier: q.text("tier"),
        page_no,
        prev: (page_no > 1).then(|| query_with(&q, page_no - 1)),
        next: more.then(|| query_with(&q, page_no + 1)),
        here,
        flash: q.text("flash"),
        errors: q.errors(),
    }))
}

/// The action a form asks for: `action` and, for assign and note, `arg`.
fn action_from(f: &Fields) -> Result<TicketAction> {
    let arg = || f.get("arg").map(str::to_string);
    match f.get("action") {
        Some("acknowledge") => Ok(TicketAction::Acknowledge),
        Some("escalate") => Ok(TicketAction::Escalate),
        Some("resolve") => Ok(TicketAction::Resolve),
        Some("assign") => arg()
            .map(TicketAction::Assign)
            .ok_or_else(|| Error::InvalidArgument("assign needs an assignee (field arg)".into())),
        Some("note") => arg()
            .map(TicketAction::Note)
            .ok_or_else(|| Error::InvalidArgument("a note needs its text (field arg)".into())),
        Some(other) => Err(Error::InvalidArgument(format!(
            "action must be acknowledge, assign, escalate, note or resolve, not {other:?}"
        ))),
        None => Err(Error::InvalidArgument("choose an action".into())),
    }
}

fn past(a: &TicketAction) -> &'static str {
    match a {
        TicketAction::Acknowledge => "acknowledged",
        TicketAction::Assign(_) => "assigned",
        TicketAction::Escalate => "escalated",
        TicketAction::Note(_) => "noted",
        TicketAction::Resolve => "resolved",
    }
}

async fn act(s: &AppState, caller: &ApiCaller, id: i64, a: &TicketAction) -> Result<ActionOutcome> {
    s.svc.ticket_action(caller, id, a, now_millis()).await
}

/// One ticket's line in the flash after an action.
fn outcome_line(id: i64, a: &TicketAction, o: &ActionOutcome) -> String {
    match &o.still_failing {
        Some(m) => format!(
            "ticket {id} {}; its problem is still present ({m}), it will reopen",
            past(a)
        ),
        None => format!("ticket {id} {}", past(a)),
    }
}

/// `POST /tickets/{id}/act`: one ticket's form (queue row or ticket page).
async fn one(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let f = Fields::parse(&body);
    let back = local(f.get("back"), "/tickets");
    let Ok(id) = id.parse::<i64>() else {
        return see_other(&back, "", &[format!("no ticket {id:?}")]);
    };
    let result = match action_from(&f) {
        Ok(a) => act(&s, &caller.0, id, &a)
            .await
            .map(|o| outcome_line(id, &a, &o)),
        Err(e) => Err(e),
    };
    match result {
        Ok(line) => see_other(&back, &line, &[]),
        // Not in the caller's tenants (or gone): 404, as everywhere.
        Err(e @ Error::NotFound(_)) => axum::response::IntoResponse::into_response(e),
        Err(e) => see_other(&back, "", &[format!("ticket {id}: {}", said(&e))]),
    }
}

/// `POST /tickets/act`: the bulk form; each ticket's outcome is reported,
/// and one ticket failing does not stop the others.
async fn bulk(State(s): State<AppState>, caller: Caller, body: Bytes) -> Response {
    let f = Fields::parse(&body);
    let back = local(f.get("back"), "/tickets");
    let action = match action_from(&f) {
        Ok(a) => a,
        Err(e) => return see_other(&back, "", &[said(&e)]),
    };
    let ids = f.all("id");
    if ids.is_empty() {
        return see_other(&back, "", &["tick at least one ticket".into()]);
    }
    if ids.len() > MAX_BULK {
        return see_other(&back, "", &[format!("at most {MAX_BULK} tickets at once")]);
    }
    let (mut done, mut errors) = (Vec::new(), Vec::new());
    for raw in ids {
        let Ok(id) = raw.parse::<i64>() else {
            errors.push(format!("no ticket {raw:?}"));
            continue;
        };
        match act(&s, &caller.0, id, &action).await {
            Ok(o) => done.push(outcome_line(id, &action, &o)),
            Err(e) => errors.push(format!("ticket {id}: {}", said(&e))),
        }
    }
    tracing::info!(
        actor = %caller.0.name,
        action = past(&action),
        done = done.len(),
        failed = errors.len(),
        "bulk ticket action"
    );
    let flash = if done.is_empty() {
        String::new()
    } else {
        format!(
            "{} of {} done: {}",
            done.len(),
            done.len() + errors.len(),
            done.join("; ")
        )
    };
    see_other(&back, &flash, &errors)
}
