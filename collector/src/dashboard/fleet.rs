//! The fleet page (`GET /`): tenants → sites → hosts, problems first, with
//! counts per state, filters in a plain GET form (works without
//! JavaScript), and live updates: the page listens on `/events` and, on a
//! change, fetches itself again with `HX-Request`, which answers only the
//! part that changes (`fleet_live.html`).

pub mod model;

use askama::Template;
use axum::Extension;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::page::{Page, render};
use crate::Result;
use crate::api::AppState;
use crate::api::auth::{Caller, Csrf};
use crate::domain::now_millis;
use model::{Counts, Filter, HostState, TenantGroup};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/", get(fleet))
}

/// Whether htmx asks for the live fragment only (a refetch after a change).
pub(super) fn wants_fragment(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some()
}

/// The path and query a live fragment refetches (this page as filtered).
pub(super) fn self_url(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_string(), ToString::to_string)
}

/// What the fleet page shows.
pub struct FleetView {
    pub url: String,
    pub filter: Filter,
    pub filtered: bool,
    /// The whole scope's counts (the links that filter by state).
    pub counts: Counts,
    /// The shown hosts' count.
    pub shown: usize,
    pub groups: Vec<TenantGroup>,
    pub tenants: Vec<(String, String)>,
    pub sites: Vec<String>,
    pub roles: Vec<String>,
    pub checks: Vec<String>,
    pub states: [HostState; 5],
}

impl FleetView {
    /// ` selected` when filter `field` is `value` (for `<option>`s).
    pub fn selected(&self, field: &str, value: &str) -> &'static str {
        let f = &self.filter;
        let current = match field {
            "tenant" => &f.tenant,
            "site" => &f.site,
            "role" => &f.role,
            "check" => &f.check,
            _ => &f.state,
        };
        if current == value { " selected" } else { "" }
    }

    /// `?state=…` keeping the other filters.
    pub fn state_link(&self, s: &HostState) -> String {
        let f = Filter {
            state: s.as_str().to_string(),
            ..self.filter.clone()
        };
        format!("/?{}", query(&f))
    }
}

fn query(f: &Filter) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("tenant", &f.tenant),
        ("site", &f.site),
        ("role", &f.role),
        ("check", &f.check),
        ("state", &f.state),
        ("q", &f.q),
    ] {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    q.finish()
}

#[derive(Template)]
#[template(path = "fleet.html")]
struct FleetPage {
    page: Page,
    view: FleetView,
}

#[derive(Template)]
#[template(path = "fleet_live.html")]
struct FleetFragment {
    view: FleetView,
}

async fn fleet(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    headers: HeaderMap,
    uri: Uri,
    Query(filter): Query<Filter>,
) -> Result<Response> {
    let state = filter.state()?;
    let fleet = model::load(&s, &caller.0.scope, now_millis()).await?;
    let counts = Counts::of(&fleet.hosts);
    let sites = model::distinct(&fleet.hosts, |h| vec![h.site.as_str()]);
    let roles = model::distinct(&fleet.hosts, |h| vec![h.role.as_str()]);
    let checks = model::distinct(&fleet.hosts, |h| {
        h.checks.iter().map(|c| c.check.as_str()).collect()
    });
    let hosts: Vec<_> = fleet
        .hosts
        .into_iter()
        .filter(|h| filter.keeps(h, state))
        .collect();
    let view = FleetView {
        url: self_url(&uri),
        filtered: !query(&filter).is_empty(),
        counts,
        shown: hosts.len(),
        groups: model::group(&fleet.tenants, hosts),
        tenants: fleet
            .tenants
            .iter()
            .map(|t| (t.id.clone(), t.name.clone()))
            .collect(),
        sites,
        roles,
        checks,
        states: HostState::ALL,
        filter,
    };
    if wants_fragment(&headers) {
        return Ok(render(&FleetFragment { view }));
    }
    let page = Page::new(&caller, csrf.as_ref().map(|c| &c.0), "Fleet", "/");
    Ok(render(&FleetPage { page, view }).into_response())
}
