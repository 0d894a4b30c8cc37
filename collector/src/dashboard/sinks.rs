//! The Sinks page (`GET /sinks`, msp-admins): each configured sink with
//! its kind, routes, last health check ("Test now"), backlog (pending,
//! oldest age, failed), and the latest parked or given-up deliveries with
//! their reason and a "Send again" button. Forms post plain HTML (CSRF
//! field) and redirect back, so the page works with JavaScript off; the
//! operations are the API's ([`crate::sinks::ops`]), audited the same way.

use askama::Template;
use axum::Extension;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};

use super::page::{Page, render};
use super::work_util::{Fields, relative, said, see_other, tenant_name, utc};
use crate::Result;
use crate::api::AppState;
use crate::api::auth::{Caller, Csrf};
use crate::domain::now_millis;
use crate::sinks::ops;
use crate::store::OutboxState;

/// Parked or given-up deliveries shown.
const FAILED_SHOWN: u32 = 50;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/sinks", get(sinks))
        .route("/sinks/{name}/test", post(test))
        .route("/sinks/retry/{id}", post(retry))
}

struct SinkLine {
    name: String,
    kind: String,
    tenants: String,
    tiers: String,
    /// "ok", "failed" or "not checked".
    health: &'static str,
    /// The CSS class of `health`.
    health_class: &'static str,
    health_message: String,
    checked: String,
    pending: i64,
    oldest: String,
    failed: i64,
}

struct FailedLine {
    id: i64,
    sink: String,
    tenant: String,
    ticket_id: i64,
    event: String,
    attempts: u32,
    /// "parked" (refused) or "gave up" (retry horizon passed).
    why: &'static str,
    error: String,
    at: String,
}

#[derive(Template)]
#[template(path = "sinks.html")]
struct SinksPage {
    page: Page,
    sinks: Vec<SinkLine>,
    failed: Vec<FailedLine>,
    flash: String,
    errors: Vec<String>,
}

async fn sinks(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let q = Fields::query(raw);
    let now = now_millis();
    let store = s.svc.store();
    let scope = &caller.0.scope;
    let tenants = store.list_tenants(scope).await?;
    let list = |v: Vec<String>| {
        if v.is_empty() {
            "all".to_string()
        } else {
            v.join(", ")
        }
    };
    let sinks = ops::statuses(&s.sinks, store.as_ref())
        .await?
        .into_iter()
        .map(|st| {
            let (health, health_message, checked) = match st.health {
                Some(h) => (
                    if h.ok { "ok" } else { "failed" },
                    h.message,
                    relative(h.checked_at, now),
                ),
                None => ("not checked", String::new(), String::new()),
            };
            SinkLine {
                health_class: match health {
                    "ok" => "ok",
                    "failed" => "failed",
                    _ => "unchecked",
                },
                tenants: list(st.tenants),
                tiers: list(st.tiers.iter().map(|t| format!("L{t}")).collect()),
                health,
                health_message,
                checked,
                pending: st.backlog.pending,
                oldest: st
                    .backlog
                    .oldest_pending_at
                    .map_or_else(|| "-".to_string(), |at| relative(at, now)),
                failed: st.backlog.failed,
                name: st.name,
                kind: st.kind,
            }
        })
        .collect();
    let failed = store
        .list_outbox(scope, Some(OutboxState::Failed), FAILED_SHOWN)
        .await?
        .into_iter()
        .map(|e| {
            let error = e.last_error.unwrap_or_default();
            FailedLine {
                why: if error.starts_with(crate::sinks::outbox::GAVE_UP) {
                    "gave up"
                } else {
                    "parked"
                },
                tenant: tenant_name(&tenants, &e.tenant_id),
                at: e.last_attempt_at.map(utc).unwrap_or_default(),
                id: e.id,
                sink: e.sink,
                ticket_id: e.ticket_id,
                event: e.event,
                attempts: e.attempts,
                error,
            }
        })
        .collect();
    Ok(render(&SinksPage {
        page: Page::new(&caller, csrf.as_deref(), "Sinks", "/sinks"),
        sinks,
        failed,
        flash: q.text("flash"),
        errors: q.errors(),
    }))
}

async fn test(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    match s.sinks.test(&name, now_millis()).await {
        Ok(h) if h.ok => see_other("/sinks", &format!("sink {name}: ok: {}", h.message), &[]),
        Ok(h) => see_other("/sinks", "", &[format!("sink {name}: {}", h.message)]),
        Err(e) => see_other("/sinks", "", &[said(&e)]),
    }
}

async fn retry(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Response {
    let done = match id.parse::<i64>() {
        Ok(n) => ops::retry_one(s.svc.store().as_ref(), &caller.0, n, now_millis()).await,
        Err(_) => Err(crate::Error::NotFound(format!("outbox row {id}"))),
    };
    match done {
        Ok(_) => see_other("/sinks", &format!("delivery {id} will be sent again"), &[]),
        Err(e) => see_other("/sinks", "", &[format!("delivery {id}: {}", said(&e))]),
    }
}
