//! Policies and sinks (`GET /policies`): per tenant, the effective ticket
//! policy (`[tickets]` with `[tickets.tenants.<name>]` applied), its SLA
//! timers per priority, and the sinks that hear about the tenant's
//! tickets with their outbox backlog. Read-only: all of it is config read
//! at start (a restart applies changes), except the tenant's time zone,
//! which an msp-admin may change here (`POST /policies/time-zone`, the
//! CLI's `tenant set-time-zone`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::page::{Page, render};
use super::work_util::{Fields, said, see_other};
use crate::Result;
use crate::api::AppState;
use crate::api::auth::{Caller, Csrf};
use crate::domain::now_millis;
use crate::tickets::policy::Policy;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/policies", get(policies))
        .route("/policies/time-zone", post(set_time_zone))
}

struct SlaLine {
    priority: String,
    ack: String,
    resolve: String,
}

struct SinkLine {
    name: String,
    kind: String,
    tiers: String,
    pending: i64,
}

struct TenantPolicy {
    id: String,
    name: String,
    time_zone: String,
    overridden: bool,
    server: String,
    workstation: String,
    tiers: String,
    sla: Vec<SlaLine>,
    rules: Vec<(String, String)>,
    grouping: String,
    sinks: Vec<SinkLine>,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    page: Page,
    tenants: Vec<TenantPolicy>,
    liveness: String,
    flash: String,
    errors: Vec<String>,
}

fn mins(m: f64) -> String {
    #[allow(clippy::cast_possible_truncation)]
    super::work_util::span((m * 60_000.0) as i64)
}

fn rule_text(r: &crate::tickets::engine::Rule) -> String {
    format!(
        "opens after {} result(s) / {} s; resolves after {} s OK; reopens within {} s; flapping {}–{} %",
        r.confirm_count,
        r.confirm_secs,
        r.recovery_secs,
        r.reopen_grace_secs,
        r.flap_stop_percent,
        r.flap_start_percent
    )
}

fn effective(p: &Policy) -> (String, String, Vec<SlaLine>, Vec<(String, String)>) {
    let prio = |s: &crate::tickets::policy::SeverityPriorities| {
        format!("CRIT {} · WARN {} · UNKNOWN {}", s.crit, s.warn, s.unknown)
    };
    let sla = p
        .sla
        .iter()
        .map(|(k, v)| SlaLine {
            priority: k.clone(),
            ack: mins(v.ack_mins),
            resolve: mins(v.resolve_mins),
        })
        .collect();
    let mut rules = vec![("default".to_string(), rule_text(&p.default_rule))];
    rules.extend(p.rules.iter().map(|(k, r)| (k.clone(), rule_text(r))));
    (
        prio(&p.server_priority),
        prio(&p.workstation_priority),
        sla,
        rules,
    )
}

async fn policies(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let tenants = s.svc.store().list_tenants(&caller.0.scope).await?;
    let pending = s.svc.store().pending_by_sink().await?;
    let routes = s.svc.routes();
    let global = s.svc.policy();
    let grouping: Vec<_> = global
        .grouping_tenants()
        .map(|(n, g)| (n.to_string(), g))
        .collect();
    let list = tenants
        .iter()
        .map(|t| {
            let p = global.for_tenant(&t.name);
            let (server, workstation, sla, rules) = effective(&p);
            let sinks = routes
                .iter()
                .filter(|r| {
                    r.tenants.is_empty() || r.tenants.iter().any(|x| *x == t.id || *x == t.name)
                })
                .map(|r| SinkLine {
                    name: r.name.clone(),
                    kind: r.kind.clone(),
                    tiers: if r.tiers.is_empty() {
                        "all tiers".into()
                    } else {
                        r.tiers
                            .iter()
                            .map(|n| format!("L{n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    // The backlog is per sink, across its tenants.
                    pending: pending
                        .iter()
                        .find(|(n, _)| *n == r.name)
                        .map_or(0, |(_, c)| *c),
                })
                .collect();
            TenantPolicy {
                id: t.id.clone(),
                name: t.name.clone(),
                time_zone: t.time_zone.clone(),
                overridden: global.tenants.contains_key(&t.name),
                server,
                workstation,
                tiers: format!(
                    "new tickets start at L{}, escalate up to L{}",
                    p.start_tier, p.max_tier
                ),
                sla,
                rules,
                grouping: grouping.iter().find(|(n, _)| *n == t.name).map_or_else(
                    || "off".to_string(),
                    |(_, g)| {
                        format!(
                            "{} hosts within {} s → one parent ticket",
                            g.min_hosts, g.window_secs
                        )
                    },
                ),
                sinks,
            }
        })
        .collect();
    let q = Fields::query(raw);
    Ok(render(&PoliciesPage {
        page: Page::new(&caller, csrf.as_deref(), "Policies & sinks", "/policies"),
        tenants: list,
        liveness: format!(
            "overdue after {} missed heartbeats; reconnect grace {} s; site outage at {} hosts and {} %",
            global.overdue_after_intervals,
            global.reconnect_grace_secs,
            global.site_outage_min_hosts,
            global.site_outage_min_percent
        ),
        flash: q.text("flash"),
        errors: q.errors(),
    }))
}

/// `POST /policies/time-zone` (msp-admins): `tenant` (id) and `time_zone`
/// (IANA name), validated and audited as the CLI's `tenant set-time-zone`.
async fn set_time_zone(State(s): State<AppState>, caller: Caller, body: Bytes) -> Response {
    let f = Fields::parse(&body);
    let tenant = f.text("tenant");
    let done = match crate::maintenance::time_zone(&f.text("time_zone")) {
        Ok((_, canonical)) => s
            .svc
            .set_tenant_time_zone(&caller.0, &tenant, &canonical, now_millis())
            .await
            .map(|()| canonical),
        Err(m) => Err(crate::Error::InvalidArgument(m)),
    };
    match done {
        Ok(tz) => see_other("/policies", &format!("time zone set to {tz}"), &[]),
        Err(e) => see_other(
            "/policies",
            "",
            &[format!("time zone not changed: {}", said(&e))],
        ),
    }
}
