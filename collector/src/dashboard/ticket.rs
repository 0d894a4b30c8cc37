//! One ticket (`GET /tickets/{id}`): its facts, and one timeline of what
//! happened to it (opened, updates, escalations, notes, resolved) merged
//! with the notifications its sinks were sent and their delivery state;
//! plus the action forms of the queue.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use super::page::{Page, render};
use super::queue::Row;
use super::work_util::{Fields, local_time, utc};
use crate::api::AppState;
use crate::api::auth::{Caller, Csrf};
use crate::domain::{TicketDetail, now_millis};
use crate::maintenance::stored_time_zone;
use crate::{Error, Result};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/tickets/{id}", get(ticket))
}

/// One line of the timeline.
struct Entry {
    at: i64,
    when: String,
    /// `opened`, `escalated`, …, or `notification`.
    kind: String,
    actor: String,
    detail: String,
    /// For notifications: `pending`, `delivered` or `failed`.
    delivery: String,
}

/// A sink's own ticket for this one, as the page shows it.
struct LinkLine {
    sink: String,
    external_id: String,
    /// Only an http(s) address becomes a link.
    url: Option<String>,
    created: String,
    /// "open", or who closed it on the receiver's side and when.
    closed: String,
}

#[derive(Template)]
#[template(path = "ticket.html")]
struct TicketPage {
    page: Page,
    row: Row,
    t: TicketDetail,
    time_zone: String,
    opened: String,
    detected: String,
    timeline: Vec<Entry>,
    /// The sinks' own tickets for this one (PSA tickets).
    links: Vec<LinkLine>,
    here: String,
    flash: String,
    errors: Vec<String>,
}

async fn ticket(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let scope = &caller.0.scope;
    let n: i64 = id
        .parse()
        .map_err(|_| Error::NotFound(format!("ticket {id}")))?;
    let t = s
        .svc
        .store()
        .get_ticket(scope, n)
        .await?
        .ok_or_else(|| Error::NotFound(format!("ticket {id}")))?;
    let outbox = s.svc.store().ticket_outbox(scope, n).await?;
    let links = s.svc.store().ticket_links(scope, n).await?;
    let tenant = s
        .svc
        .store()
        .list_tenants(scope)
        .await?
        .into_iter()
        .find(|x| x.id == t.ticket.tenant_id);
    let (tenant_name, zone) = tenant.map_or_else(
        || (t.ticket.tenant_id.clone(), "UTC".to_string()),
        |x| (x.name, x.time_zone),
    );
    let tz = stored_time_zone(&zone);
    let mut timeline: Vec<Entry> = t
        .events
        .iter()
        .map(|e| Entry {
            at: e.at,
            when: local_time(e.at, &tz),
            kind: e.kind.clone(),
            actor: e.actor.clone(),
            detail: e.detail.clone(),
            delivery: String::new(),
        })
        .collect();
    for o in &outbox {
        let state = o.state.as_str().to_string();
        let mut detail = format!("{} ({}) to sink {}", o.event, o.status, o.sink);
        match (&o.delivered_at, &o.last_error) {
            (Some(at), _) => detail.push_str(&format!(", delivered {}", local_time(*at, &tz))),
            (None, Some(err)) => detail.push_str(&format!(", last error: {err}")),
            _ => {}
        }
        detail.push_str(&format!(", {} attempt(s)", o.attempts));
        timeline.push(Entry {
            at: o.created_at,
            when: local_time(o.created_at, &tz),
            kind: "notification".into(),
            actor: o.sink.clone(),
            detail,
            delivery: state,
        });
    }
    timeline.sort_by_key(|e| e.at);
    let links = links
        .into_iter()
        .map(|l| LinkLine {
            url: l
                .url
                .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
            created: local_time(l.created_at, &tz),
            closed: match (l.closed_at, l.closed_by) {
                (Some(at), by) => format!(
                    "closed by {} at {}",
                    by.as_deref().unwrap_or("someone"),
                    local_time(at, &tz)
                ),
                (None, _) => "open".to_string(),
            },
            sink: l.sink,
            external_id: l.external_id,
        })
        .collect();
    let q = Fields::query(raw);
    let now = now_millis();
    Ok(render(&TicketPage {
        page: Page::new(&caller, csrf.as_deref(), format!("Ticket {n}"), "/tickets"),
        row: Row::new(&t.ticket, &tenant_name, now),
        opened: format!(
            "{} ({})",
            local_time(t.ticket.opened_at, &tz),
            utc(t.ticket.opened_at)
        ),
        detected: t
            .ticket
            .detected_at
            .map(|d| local_time(d, &tz))
            .unwrap_or_default(),
        time_zone: zone,
        t,
        timeline,
        links,
        here: format!("/tickets/{n}"),
        flash: q.text("flash"),
        errors: q.errors(),
    }))
}
