//! The NOC wall (`GET /noc`): only what is wrong across the caller's
//! tenants, in large type on a dark screen: CRIT and WARN hosts with their
//! failing checks, overdue agents, open tickets and SLA breaches. It
//! refreshes itself on every change (SSE), or every 30 s without
//! JavaScript (`<meta http-equiv="refresh">` inside `<noscript>`).

use std::collections::HashMap;

use askama::Template;
use axum::Extension;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;

use super::fleet::model::{self, HostRow, HostState};
use super::fleet::{self_url, wants_fragment};
use super::page::{Page, render};
use crate::Result;
use crate::api::AppState;
use crate::api::auth::{Caller, Csrf};
use crate::domain::{now_millis, rfc3339};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/noc", get(noc))
}

/// One host on the wall.
pub struct WallHost {
    pub tenant: String,
    pub row: HostRow,
}

pub struct NocView {
    pub url: String,
    pub crit: Vec<WallHost>,
    pub warn: Vec<WallHost>,
    pub overdue: Vec<WallHost>,
    pub hosts: usize,
    /// Overdue agents, whatever their last checks said.
    pub overdue_agents: usize,
    pub open_tickets: i64,
    pub breached: i64,
    pub updated: String,
}

impl NocView {
    pub fn all_clear(&self) -> bool {
        self.crit.is_empty() && self.warn.is_empty() && self.overdue.is_empty()
    }
}

#[derive(Template)]
#[template(path = "noc.html")]
struct NocPage {
    page: Page,
    view: NocView,
}

#[derive(Template)]
#[template(path = "noc_live.html")]
struct NocFragment {
    view: NocView,
}

async fn noc(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response> {
    let now = now_millis();
    let fleet = model::load(&s, &caller.0.scope, now).await?;
    let names: HashMap<&str, &str> = fleet
        .tenants
        .iter()
        .map(|t| (t.id.as_str(), t.name.as_str()))
        .collect();
    let hosts = fleet.hosts.len();
    let overdue_agents = fleet.hosts.iter().filter(|h| h.overdue).count();
    let (mut crit, mut warn, mut overdue) = (Vec::new(), Vec::new(), Vec::new());
    let mut rows = fleet.hosts;
    rows.sort_by(|a, b| (a.state, &a.hostname).cmp(&(b.state, &b.hostname)));
    for row in rows {
        let wall = WallHost {
            tenant: names
                .get(row.tenant_id.as_str())
                .copied()
                .unwrap_or("")
                .to_string(),
            row,
        };
        match wall.row.state {
            HostState::Crit | HostState::Unknown => crit.push(wall),
            HostState::Warn => warn.push(wall),
            HostState::Overdue => overdue.push(wall),
            HostState::Ok => {}
        }
    }
    let view = NocView {
        url: self_url(&uri),
        crit,
        warn,
        overdue,
        hosts,
        overdue_agents,
        open_tickets: fleet.open_tickets,
        breached: fleet.breached,
        updated: rfc3339::format(now),
    };
    if wants_fragment(&headers) {
        return Ok(render(&NocFragment { view }));
    }
    let page = Page::new(&caller, csrf.as_ref().map(|c| &c.0), "NOC wall", "/noc");
    Ok(render(&NocPage { page, view }))
}
