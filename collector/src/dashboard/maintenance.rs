//! Maintenance windows and silences (`GET /maintenance`): the caller's
//! tenants' windows with their next start in the tenant's time zone, and
//! forms to plan a window (one-off, weekly, or recurring by an RFC 5545
//! RRULE: Patch Tuesday, last day of the month, or a rule typed in), to
//! silence for a while, and to delete. Changes go through
//! [`crate::maintenance::request`] and `Service::delete_maintenance`, as
//! the JSON API's do (`api/maintenance.rs`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::page::{Page, render};
use super::queue::Choice;
use super::work_util::{Fields, local_time, said, see_other, span};
use crate::api::AppState;
use crate::api::auth::{Caller, Csrf};
use crate::domain::now_millis;
use crate::maintenance::request::{self, SilenceRequest, WindowRequest};
use crate::maintenance::{Kind, WindowView, stored_time_zone};
use crate::{Error, Result};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/maintenance", get(list))
        .route("/maintenance/windows", post(create_window))
        .route("/maintenance/silences", post(create_silence))
        .route("/maintenance/{id}/delete", post(delete))
}

/// RRULE presets the form offers (value, label, rule).
const PRESETS: &[(&str, &str, &str)] = &[
    (
        "patch-tuesday",
        "Patch Tuesday: second Tuesday of every month",
        "FREQ=MONTHLY;BYDAY=2TU",
    ),
    (
        "last-day",
        "Last day of every month",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
    ),
    (
        "first-sunday",
        "First Sunday of every month",
        "FREQ=MONTHLY;BYDAY=1SU",
    ),
    ("custom", "Another rule (RRULE below)", ""),
];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

struct Item {
    id: i64,
    silence: bool,
    tenant: String,
    scope: String,
    schedule: String,
    state: &'static str,
    next: String,
    reason: String,
    created_by: String,
}

#[derive(Template)]
#[template(path = "maintenance.html")]
struct MaintenancePage {
    page: Page,
    /// Windows, then silences.
    sections: Vec<(&'static str, Vec<Item>)>,
    tenants: Vec<Choice>,
    presets: Vec<(&'static str, &'static str)>,
    days: [&'static str; 7],
    flash: String,
    errors: Vec<String>,
}

/// How a window repeats, read from its API view (whatever schedule kinds
/// this build has: `weekly`, or `recurrence` with an RRULE).
fn schedule_text(v: &WindowView, tz: &jiff::tz::TimeZone) -> String {
    let json = serde_json::to_value(v).unwrap_or(Value::Null);
    let dur = |o: &Value| span(o["duration_secs"].as_i64().unwrap_or(0) * 1000);
    if let Some(w) = json.get("weekly").filter(|w| !w.is_null()) {
        let days: Vec<&str> = w["days"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        return format!(
            "weekly {} at {} for {}",
            days.join(","),
            w["at"].as_str().unwrap_or(""),
            dur(w)
        );
    }
    if let Some(r) = json.get("recurrence").filter(|r| !r.is_null()) {
        return format!(
            "{} at {} for {} (from {})",
            r["rrule"].as_str().unwrap_or(""),
            r["at"].as_str().unwrap_or(""),
            dur(r),
            r["dtstart"].as_str().unwrap_or("")
        );
    }
    match (v.start_at, v.end_at) {
        (Some(s), Some(e)) => format!("{} → {}", local_time(s, tz), local_time(e, tz)),
        _ => v.kind.as_str().to_string(),
    }
}

async fn list(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let scope = &caller.0.scope;
    let tenants = s.svc.store().list_tenants(scope).await?;
    let now = now_millis();
    let all = s.svc.list_maintenance(scope, &[Kind::Silence]).await?;
    let windows = s.svc.list_maintenance(scope, &Kind::WINDOWS).await?;
    let item = |w: &crate::maintenance::Window| {
        let v = WindowView::new(w, now);
        let tz = stored_time_zone(&v.time_zone);
        let tenant = tenants
            .iter()
            .find(|t| t.id == v.tenant_id)
            .map_or_else(|| v.tenant_id.clone(), |t| t.name.clone());
        let scope = [
            v.site.as_deref().map(|x| format!("site {x}")),
            v.agent_id.as_deref().map(|x| format!("host {x}")),
            v.check.as_deref().map(|x| format!("check {x}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
        Item {
            id: v.id,
            silence: v.kind == Kind::Silence,
            scope: if scope.is_empty() {
                "whole tenant".into()
            } else {
                scope.join(", ")
            },
            schedule: schedule_text(&v, &tz),
            state: if v.active {
                "active"
            } else if v.ended {
                "ended"
            } else {
                "planned"
            },
            next: match (v.active_until, v.next_start) {
                (Some(u), _) => format!("until {}", local_time(u, &tz)),
                (None, Some(n)) => local_time(n, &tz),
                _ => String::new(),
            },
            reason: v.reason.clone(),
            created_by: v.created_by.clone(),
            tenant,
        }
    };
    let q = Fields::query(raw);
    let keep = |w: &&crate::maintenance::Window| !WindowView::new(w, now).ended;
    Ok(render(&MaintenancePage {
        page: Page::new(&caller, csrf.as_deref(), "Maintenance", "/maintenance"),
        sections: vec![
            ("Windows", windows.iter().filter(keep).map(item).collect()),
            ("Silences", all.iter().filter(keep).map(item).collect()),
        ],
        tenants: tenants
            .iter()
            .map(|t| Choice {
                value: t.name.clone(),
                label: format!("{} ({})", t.name, t.time_zone),
                selected: false,
            })
            .collect(),
        presets: PRESETS.iter().map(|(v, l, _)| (*v, *l)).collect(),
        days: DAYS,
        flash: q.text("flash"),
        errors: q.errors(),
    }))
}

/// The scope fields both forms share, as the JSON request has them.
fn target(f: &Fields) -> Map<String, Value> {
    let mut m = Map::new();
    for key in ["tenant", "site", "host", "check"] {
        if let Some(v) = f.get(key) {
            m.insert(key.into(), json!(v));
        }
    }
    m.insert("reason".into(), json!(f.text("reason")));
    m
}

/// The form as a [`WindowRequest`] body: built as JSON and read by the
/// request's own deserializer, so the form posts exactly what the API takes.
fn window_request(f: &Fields) -> Result<WindowRequest> {
    let mut m = target(f);
    let need = |key: &str| {
        f.get(key)
            .map(str::to_string)
            .ok_or_else(|| Error::InvalidArgument(format!("{key} is required for this schedule")))
    };
    match f.get("schedule").unwrap_or("once") {
        "once" => {
            // <input type=datetime-local> sends 2026-05-01T22:00: local time.
            m.insert("start".into(), json!(need("start")?.replace('T', " ")));
            m.insert("end".into(), json!(need("end")?.replace('T', " ")));
        }
        "weekly" => {
            let days = f.all("day").join(",");
            if days.is_empty() {
                return Err(Error::InvalidArgument("tick at least one day".into()));
            }
            m.insert(
                "weekly".into(),
                json!({"days": days, "at": need("at")?, "duration": need("duration")?}),
            );
        }
        "recurring" => {
            let preset = f.get("preset").unwrap_or("custom");
            let rule = match PRESETS.iter().find(|(v, _, _)| *v == preset) {
                Some((_, _, rule)) if !rule.is_empty() => (*rule).to_string(),
                Some(_) => need("rrule")?,
                None => return Err(Error::InvalidArgument(format!("no preset {preset:?}"))),
            };
            let mut r = json!({"rrule": rule, "at": need("at")?, "duration": need("duration")?});
            if let Some(d) = f.get("dtstart") {
                r["dtstart"] = json!(d);
            }
            m.insert("recurrence".into(), r);
        }
        other => {
            return Err(Error::InvalidArgument(format!(
                "schedule must be once, weekly or recurring, not {other:?}"
            )));
        }
    }
    WindowRequest::deserialize(Value::Object(m))
        .map_err(|e| Error::InvalidArgument(format!("this collector cannot plan that window: {e}")))
}

async fn create_window(State(s): State<AppState>, caller: Caller, body: Bytes) -> Response {
    let f = Fields::parse(&body);
    let now = now_millis();
    let made = match window_request(&f) {
        Ok(req) => request::create_window(&s.svc, &caller.0, req, now).await,
        Err(e) => Err(e),
    };
    match made {
        Ok(w) => see_other("/maintenance", &format!("window {} planned", w.id), &[]),
        Err(e) => see_other(
            "/maintenance",
            "",
            &[format!("window not planned: {}", said(&e))],
        ),
    }
}

async fn create_silence(State(s): State<AppState>, caller: Caller, body: Bytes) -> Response {
    let f = Fields::parse(&body);
    let mut m = target(&f);
    m.insert("duration".into(), json!(f.text("duration")));
    let made = match SilenceRequest::deserialize(Value::Object(m)) {
        Ok(req) => request::create_silence(&s.svc, &caller.0, req, now_millis()).await,
        Err(e) => Err(Error::InvalidArgument(e.to_string())),
    };
    match made {
        Ok(w) => see_other("/maintenance", &format!("silence {} started", w.id), &[]),
        Err(e) => see_other(
            "/maintenance",
            "",
            &[format!("silence not started: {}", said(&e))],
        ),
    }
}

async fn delete(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Response {
    let Ok(n) = id.parse::<i64>() else {
        return see_other("/maintenance", "", &[format!("no window {id:?}")]);
    };
    let mut kinds = Kind::WINDOWS.to_vec();
    kinds.extend(Kind::SILENCES);
    match s
        .svc
        .delete_maintenance(&caller.0, n, &kinds, now_millis())
        .await
    {
        Ok(w) => see_other(
            "/maintenance",
            &format!("{} {} deleted", w.kind.as_str(), w.id),
            &[],
        ),
        // Not in the caller's tenants (or gone): 404, as everywhere.
        Err(e @ Error::NotFound(_)) => axum::response::IntoResponse::into_response(e),
        Err(e) => see_other("/maintenance", "", &[format!("{n}: {}", said(&e))]),
    }
}
