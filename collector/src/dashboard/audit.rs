//! The audit log (`GET /audit`): who changed what, on which target, when
//! and from where, filtered by tenant, actor and action, paged.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use super::page::{Page, render};
use super::queue::Choice;
use super::work_util::{Fields, tenant_name, utc};
use crate::api::AppState;
use crate::api::auth::{Caller, Csrf};
use crate::store::AuditFilter;
use crate::{Error, Result};

const PAGE_SIZE: u32 = 100;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(audit))
}

struct Line {
    when: String,
    tenant: String,
    actor: String,
    source: String,
    action: String,
    target: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    page: Page,
    lines: Vec<Line>,
    tenants: Vec<Choice>,
    actor: String,
    action: String,
    page_no: u32,
    prev: Option<String>,
    next: Option<String>,
}

fn link(q: &Fields, page: u32) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for key in ["tenant", "actor", "action"] {
        if let Some(v) = q.get(key) {
            s.append_pair(key, v);
        }
    }
    s.append_pair("page", &page.to_string());
    format!("/audit?{}", s.finish())
}

async fn audit(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let q = Fields::query(raw);
    let scope = &caller.0.scope;
    let tenants = s.svc.store().list_tenants(scope).await?;
    let tenant_id = q.get("tenant").map(str::to_string);
    if let Some(t) = &tenant_id
        && !tenants.iter().any(|x| &x.id == t)
    {
        return Err(Error::NotFound(format!("tenant {t}")));
    }
    let page_no = match q.get("page") {
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| Error::InvalidArgument(format!("page must be a number, not {v:?}")))?
            .clamp(1, 10_000),
        None => 1,
    };
    let filter = AuditFilter {
        tenant_id: tenant_id.clone(),
        actor: q.get("actor").map(str::to_string),
        action: q.get("action").map(str::to_string),
    };
    let mut entries = s
        .svc
        .store()
        .audit_page(scope, &filter, (page_no - 1) * PAGE_SIZE, PAGE_SIZE + 1)
        .await?;
    let more = entries.len() > PAGE_SIZE as usize;
    entries.truncate(PAGE_SIZE as usize);
    let name = |id: &Option<String>| {
        id.as_deref()
            .map_or_else(|| "—".into(), |id| tenant_name(&tenants, id))
    };
    Ok(render(&AuditPage {
        page: Page::new(&caller, csrf.as_deref(), "Audit log", "/audit"),
        lines: entries
            .iter()
            .map(|e| Line {
                when: utc(e.at),
                tenant: name(&e.tenant_id),
                actor: e.actor.clone(),
                source: e.source.clone(),
                action: e.action.clone(),
                target: e.target.clone(),
                detail: e.detail.clone(),
            })
            .collect(),
        tenants: tenants
            .iter()
            .map(|t| Choice {
                value: t.id.clone(),
                label: t.name.clone(),
                selected: tenant_id.as_deref() == Some(t.id.as_str()),
            })
            .collect(),
        actor: q.text("actor"),
        action: q.text("action"),
        page_no,
        prev: (page_no > 1).then(|| link(&q, page_no - 1)),
        next: more.then(|| link(&q, page_no + 1)),
    }))
}
