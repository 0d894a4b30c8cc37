//! Tenant reports: `GET /reports` lists the caller's tenants and months;
//! `GET /reports/{tenant}/{yyyy-mm}` is one tenant's month, written to be
//! printed (or saved as PDF) and sent to the client: the KPIs, the hosts
//! with the most problems, and disk and backup health now.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use jiff::civil::Date;

use super::page::{Page, render};
use super::work_util::{local_time, span};
use crate::api::AppState;
use crate::api::auth::{Caller, Csrf};
use crate::domain::{DurationStats, Millis, Tenant, now_millis};
use crate::maintenance::stored_time_zone;
use crate::{Error, Result};

/// Hosts listed under "most problems".
const TOP_HOSTS: u32 = 10;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/reports", get(index))
        .route("/reports/{tenant}/{month}", get(report))
}

#[derive(Template)]
#[template(path = "reports.html")]
struct IndexPage {
    page: Page,
    /// (tenant name, [(yyyy-mm, label)]) newest month first.
    tenants: Vec<(String, Vec<String>)>,
}

/// The first day of the month `months_back` before `date`'s.
fn month_start(date: Date, months_back: i32) -> Option<Date> {
    let n = i32::from(date.year()) * 12 + i32::from(date.month()) - 1 - months_back;
    Date::new(
        i16::try_from(n / 12).ok()?,
        i8::try_from(n % 12 + 1).ok()?,
        1,
    )
    .ok()
}

async fn index(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
) -> Result<Response> {
    let tenants = s.svc.store().list_tenants(&caller.0.scope).await?;
    let now = now_millis();
    let list = tenants
        .iter()
        .map(|t| {
            let tz = stored_time_zone(&t.time_zone);
            let today = jiff::Timestamp::from_millisecond(now)
                .map(|ts| tz.to_datetime(ts).date())
                .unwrap_or_default();
            let months = (0..6)
                .filter_map(|b| month_start(today, b))
                .map(|d| d.strftime("%Y-%m").to_string())
                .collect();
            (t.name.clone(), months)
        })
        .collect();
    Ok(render(&IndexPage {
        page: Page::new(&caller, csrf.as_deref(), "Reports", "/reports"),
        tenants: list,
    }))
}

struct Kpi {
    label: &'static str,
    value: String,
    id: &'static str,
}

struct HostLine {
    host: String,
    tickets: u64,
    crit: u64,
}

struct HealthLine {
    host: String,
    item: String,
    state: &'static str,
    message: String,
    /// Disk: projected time to full, where the agent's trend gives one.
    to_full: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    page: Page,
    tenant: String,
    month: String,
    period: String,
    generated: String,
    kpis: Vec<Kpi>,
    hosts: Vec<HostLine>,
    /// Disk, then backup: (title, lines).
    health: Vec<(&'static str, Vec<HealthLine>)>,
}

fn stats(d: Option<DurationStats>) -> String {
    d.map_or_else(
        || "—".into(),
        |d| {
            #[allow(clippy::cast_possible_truncation)]
            let ms = (d.mean_secs * 1000.0) as i64;
            format!("{} (median {})", span(ms), {
                #[allow(clippy::cast_possible_truncation)]
                let m = (d.median_secs * 1000.0) as i64;
                span(m)
            })
        },
    )
}

/// The tenant named (or with id) `key`, within the caller's tenants.
fn find<'t>(tenants: &'t [Tenant], key: &str) -> Result<&'t Tenant> {
    tenants
        .iter()
        .find(|t| t.name == key || t.id == key)
        .ok_or_else(|| Error::NotFound(format!("tenant {key}")))
}

/// `[from, to)` of a `YYYY-MM` month in `tz`.
fn month_bounds(month: &str, tz: &jiff::tz::TimeZone) -> Result<(Millis, Millis)> {
    let bad = || Error::InvalidArgument(format!("month must be YYYY-MM, not {month:?}"));
    let first: Date = format!("{month}-01").parse().map_err(|_| bad())?;
    let next = month_start(first, -1).ok_or_else(bad)?;
    let at = |d: Date| {
        tz.to_ambiguous_timestamp(d.at(0, 0, 0, 0))
            .compatible()
            .map(|t| t.as_millisecond())
            .map_err(|_| bad())
    };
    Ok((at(first)?, at(next)?))
}

fn health(rows: &[crate::store::HostCheckRow], check: &str) -> Vec<HealthLine> {
    rows.iter()
        .filter(|r| r.check.check == check)
        .map(|r| HealthLine {
            host: r.host.clone(),
            item: r.check.item.clone(),
            state: r.check.state.as_str(),
            message: r.check.message.clone(),
            to_full: r
                .check
                .metrics
                .iter()
                .find(|m| m.name == "hours_to_full")
                .map(|m| {
                    #[allow(clippy::cast_possible_truncation)]
                    let ms = (m.value * 3_600_000.0) as i64;
                    span(ms)
                })
                .unwrap_or_default(),
        })
        .collect()
}

async fn report(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    Path((tenant, month)): Path<(String, String)>,
) -> Result<Response> {
    let scope = &caller.0.scope;
    let tenants = s.svc.store().list_tenants(scope).await?;
    let t = find(&tenants, &tenant)?;
    let tz = stored_time_zone(&t.time_zone);
    let (from, to) = month_bounds(&month, &tz)?;
    let only = crate::domain::Scope::Tenant(t.id.clone());
    let k = s
        .svc
        .kpis(&only, from, to)
        .await?
        .into_iter()
        .find(|k| k.tenant_id == t.id);
    type Count = fn(&crate::domain::TenantKpis) -> u64;
    type Time = fn(&crate::domain::TenantKpis) -> Option<DurationStats>;
    let counts: [(&'static str, &'static str, Count); 5] = [
        ("Tickets", "kpi-tickets", |k| k.opened),
        ("Auto-resolved", "kpi-auto", |k| k.auto_resolved),
        ("Resolved by hand", "kpi-hand", |k| k.resolved_by_hand),
        ("Escalated", "kpi-escalated", |k| k.escalated),
        ("SLA breaches", "kpi-breaches", |k| k.sla_breaches),
    ];
    let times: [(&'static str, &'static str, Time); 3] = [
        ("MTTD (detect)", "kpi-mttd", |k| k.time_to_detect),
        ("MTTA (acknowledge)", "kpi-mtta", |k| k.time_to_acknowledge),
        ("MTTR (resolve)", "kpi-mttr", |k| k.time_to_resolve),
    ];
    let kpis = counts
        .iter()
        .map(|(label, id, f)| Kpi {
            label,
            id,
            value: k.as_ref().map_or(0, f).to_string(),
        })
        .chain(times.iter().map(|(label, id, f)| Kpi {
            label,
            id,
            value: stats(k.as_ref().and_then(f)),
        }))
        .collect();
    let hosts = s
        .svc
        .store()
        .tickets_per_host(scope, &t.id, from, to, TOP_HOSTS)
        .await?
        .into_iter()
        .map(|h| HostLine {
            host: h.host,
            tickets: h.tickets,
            crit: h.crit,
        })
        .collect();
    let states = s
        .svc
        .store()
        .check_states_of(scope, &t.id, &["disk", "backup"])
        .await?;
    let now = now_millis();
    Ok(render(&ReportPage {
        page: Page::new(
            &caller,
            csrf.as_deref(),
            format!("{} · {month}", t.name),
            "/reports",
        ),
        tenant: t.name.clone(),
        period: format!(
            "{} – {} ({})",
            local_time(from, &tz),
            local_time(to, &tz),
            t.time_zone
        ),
        generated: local_time(now, &tz),
        month,
        kpis,
        hosts,
        health: vec![
            ("Disk health (now)", health(&states, "disk")),
            ("Backup health (now)", health(&states, "backup")),
        ],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_step_over_years_and_bound_in_the_zone() {
        let d: Date = "2026-01-15".parse().unwrap();
        assert_eq!(month_start(d, 1).unwrap().to_string(), "2025-12-01");
        assert_eq!(month_start(d, -1).unwrap().to_string(), "2026-02-01");
        let tz = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        let (from, to) = month_bounds("2026-03", &tz).unwrap();
        // March 2026 in Paris: from 1 March 00:00 CET to 1 April 00:00 CEST.
        assert_eq!(from, 1_772_319_600_000);
        assert_eq!(to - from, (31 * 24 - 1) * 3_600_000);
        assert!(month_bounds("2026-13", &tz).is_err());
        assert!(month_bounds("march", &tz).is_err());
    }
}
