//! The host page (`GET /hosts/{id}`): current checks, agent facts, spool,
//! clock offset and certificate expiry, open and recent tickets, and
//! charts of the metric history (`GET /api/v1/agents/{id}/metrics`, drawn
//! by `app.js` with uPlot; without JavaScript or without history the page
//! shows the latest snapshot as text). Another tenant's host is 404.

use askama::Template;
use axum::Extension;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;

use super::fleet::{self_url, wants_fragment};
use super::page::{Page, render};
use crate::api::AppState;
use crate::api::auth::{Caller, Csrf};
use crate::domain::perfdata::breached;
use crate::domain::{
    AgentDetail, CheckState, Metric, Millis, Page as Rows, Threshold, Ticket, TicketFilter,
    TicketState, now_millis, rfc3339,
};
use crate::{Error, Result};

/// A certificate with less left than this is shown as a warning.
const CERT_WARN_MS: Millis = 86_400_000;

/// Recent tickets shown (open ones are all shown).
const RECENT: u64 = 10;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/hosts/{id}", get(host))
}

/// One fact line.
pub struct Fact {
    pub label: &'static str,
    pub value: String,
    /// Shown as a warning (clock skewed, certificate near expiry, spool losses).
    pub warn: bool,
}

/// One check line.
pub struct CheckLine {
    pub check: String,
    pub item: String,
    pub state: &'static str,
    pub label: &'static str,
    pub message: String,
    pub since: String,
    /// A plugin's performance data, each with its thresholds.
    pub metrics: Vec<MetricLine>,
}

/// One plugin metric: its value, the warn and crit ranges it came with,
/// and which one it breaches.
pub struct MetricLine {
    pub name: String,
    /// Value and unit, plus min/max when given: `97 (min 0)`.
    pub value: String,
    /// `warn 1`, in the plugin's own range syntax; empty when none.
    pub warn: String,
    /// When warn alerts, for the tooltip: `< 0 or > 1`.
    pub warn_means: String,
    pub crit: String,
    pub crit_means: String,
    /// `warn` or `crit` when the value breaches that range, else empty.
    pub breach: &'static str,
}

/// One mount of the latest snapshot.
pub struct MountLine {
    pub mount: String,
    pub used_pct: String,
    pub size: String,
}

pub struct HostView {
    pub url: String,
    pub id: String,
    pub hostname: String,
    pub checks: Vec<CheckLine>,
    pub facts: Vec<Fact>,
    pub now: Vec<Fact>,
    pub mounts: Vec<MountLine>,
    pub open: Vec<Ticket>,
    pub recent: Vec<Ticket>,
    /// The charts' settings for app.js, as JSON safe inside `<script>`.
    pub chart_json: String,
}

#[derive(Template)]
#[template(path = "host.html")]
struct HostPage {
    page: Page,
    view: HostView,
}

#[derive(Template)]
#[template(path = "host_live.html")]
struct HostFragment {
    view: HostView,
}

async fn host(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response> {
    let scope = &caller.0.scope;
    let of_host = |state| TicketFilter {
        state: Some(state),
        agent_id: Some(id.clone()),
        ..TicketFilter::default()
    };
    let (open, resolved) = (of_host(TicketState::Open), of_host(TicketState::Resolved));
    let store = s.svc.store();
    let (detail, open, recent) = tokio::try_join!(
        s.svc.get_agent(scope, &id),
        store.find_tickets(scope, &open, Rows::everything()),
        store.find_tickets(scope, &resolved, Rows::first(RECENT)),
    )?;
    let detail = detail.ok_or_else(|| Error::NotFound(format!("host {id}")))?;
    let view = view(detail, open, recent, self_url(&uri), now_millis());
    if wants_fragment(&headers) {
        return Ok(render(&HostFragment { view }));
    }
    let title = format!("Host {}", view.hostname);
    let page = Page::new(&caller, csrf.as_ref().map(|c| &c.0), title, "/");
    Ok(render(&HostPage { page, view }))
}

fn view(
    d: AgentDetail,
    open: Vec<Ticket>,
    recent: Vec<Ticket>,
    url: String,
    now: Millis,
) -> HostView {
    let a = &d.agent;
    let mut checks: Vec<CheckLine> = d
        .checks
        .iter()
        .map(|c| CheckLine {
            check: c.check.clone(),
            item: c.item.clone(),
            state: c.state.as_str(),
            label: state_label(c.state),
            message: c.message.clone(),
            since: super::fleet::model::ago(now, c.since),
            metrics: c
                .metrics
                .iter()
                .filter(|m| c.check == PLUGIN_CHECK || m.warn.is_some() || m.crit.is_some())
                .map(metric_line)
                .collect(),
        })
        .collect();
    checks.sort_by_key(|c| (rank(c.state), c.check.clone(), c.item.clone()));
    let fact = |label, value: String| Fact {
        label,
        value,
        warn: false,
    };
    let mut facts = vec![
        fact("OS", format!("{} {}", a.os_name, a.os_version)),
        fact("Kernel", a.kernel_version.clone()),
        fact("Architecture", a.arch.clone()),
        fact("CPUs", a.cpu_count.to_string()),
        fact(
            "Memory",
            bytes(u64::try_from(a.memory_total_bytes).unwrap_or(0)),
        ),
        fact("Site", a.site.clone()),
        fact("Role", a.role.clone()),
        fact("Agent version", a.agent_version.clone()),
        fact(
            "Status",
            format!("{}{}", a.status, if a.overdue { ", overdue" } else { "" }),
        ),
        fact(
            "Last seen",
            a.last_seen_at.map_or_else(
                || "never".into(),
                |t| {
                    format!(
                        "{} ({})",
                        super::fleet::model::ago(now, t),
                        rfc3339::format(t)
                    )
                },
            ),
        ),
        Fact {
            label: "Clock offset",
            value: a.clock_offset_ms.map_or_else(
                || "not measured".into(),
                |ms| format!("{:+.1} s (collector minus agent)", ms as f64 / 1000.0),
            ),
            warn: a.clock_skewed,
        },
        Fact {
            label: "Certificate expires",
            value: format!(
                "{} ({})",
                super::fleet::model::ago(now, a.cert_not_after),
                rfc3339::format(a.cert_not_after)
            ),
            // Agents renew at about 2/3 of the lifetime: a day left means
            // renewal is failing.
            warn: a.cert_not_after - now < CERT_WARN_MS,
        },
    ];
    if a.revoked {
        facts.push(Fact {
            label: "Revoked",
            value: "yes".into(),
            warn: true,
        });
    }
    let mut now_facts = Vec::new();
    let mut mounts = Vec::new();
    if let Some(snap) = &a.snapshot {
        now_facts.push(fact("CPU", format!("{:.1} %", snap.cpu_percent)));
        now_facts.push(fact(
            "Memory",
            format!(
                "{} of {} ({})",
                bytes(snap.memory_used_bytes),
                bytes(snap.memory_total_bytes),
                pct(snap.memory_used_bytes, snap.memory_total_bytes)
            ),
        ));
        now_facts.push(fact(
            "Load",
            format!("{:.2} {:.2} {:.2}", snap.load1, snap.load5, snap.load15),
        ));
        now_facts.push(fact(
            "Uptime",
            super::fleet::model::span(i64::try_from(snap.uptime_secs).unwrap_or(i64::MAX)),
        ));
        if let Some(sp) = &snap.spool {
            let lost =
                sp.dropped_heartbeats + sp.dropped_state_changes + sp.damaged + sp.unreadable;
            now_facts.push(Fact {
                label: "Spool",
                value: format!(
                    "{} queued{}; lost since start: {} heartbeats, {} state changes, {} damaged, {} unreadable",
                    sp.queued,
                    if sp.memory_only { ", in memory only (disk failed)" } else { "" },
                    sp.dropped_heartbeats,
                    sp.dropped_state_changes,
                    sp.damaged,
                    sp.unreadable
                ),
                warn: sp.memory_only || lost > 0,
            });
        } else {
            now_facts.push(fact("Spool", "not reported by this agent".into()));
        }
        mounts = snap
            .disks
            .iter()
            .map(|m| MountLine {
                mount: m.mount_point.clone(),
                used_pct: pct(
                    m.total_bytes.saturating_sub(m.available_bytes),
                    m.total_bytes,
                ),
                size: bytes(m.total_bytes),
            })
            .collect();
    }
    let chart = serde_json::json!({
        "agent_id": a.id,
        "metrics_url": format!("/api/v1/agents/{}/metrics", a.id),
    });
    HostView {
        url,
        id: a.id.clone(),
        hostname: a.hostname.clone(),
        checks,
        facts,
        now: now_facts,
        mounts,
        open,
        recent,
        chart_json: script_json(&chart),
    }
}

/// The check kind whose metrics are performance data (shown per metric).
const PLUGIN_CHECK: &str = "plugin";

fn metric_line(m: &Metric) -> MetricLine {
    let mut value = format!("{}{}", m.value, m.unit);
    let limits: Vec<String> = [("min", m.min), ("max", m.max)]
        .into_iter()
        .filter_map(|(label, v)| Some(format!("{label} {}{}", v?, m.unit)))
        .collect();
    if !limits.is_empty() {
        value.push_str(&format!(" ({})", limits.join(", ")));
    }
    let text = |t: Option<&Threshold>| t.map(ToString::to_string).unwrap_or_default();
    let means = |t: Option<&Threshold>| t.map(Threshold::describe).unwrap_or_default();
    MetricLine {
        name: m.name.clone(),
        value,
        warn: text(m.warn.as_ref()),
        warn_means: means(m.warn.as_ref()),
        crit: text(m.crit.as_ref()),
        crit_means: means(m.crit.as_ref()),
        breach: breached(m.value, m.warn.as_ref(), m.crit.as_ref()).map_or("", CheckState::as_str),
    }
}

fn rank(state: &str) -> u8 {
    match state {
        "crit" => 0,
        "warn" => 1,
        "unknown" => 2,
        _ => 3,
    }
}

fn state_label(s: CheckState) -> &'static str {
    match s {
        CheckState::Ok => "OK",
        CheckState::Warn => "WARN",
        CheckState::Crit => "CRIT",
        CheckState::Unknown => "UNKNOWN",
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "?".into();
    }
    format!("{:.1} %", part as f64 * 100.0 / whole as f64)
}

/// Binary units, one decimal.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// JSON that is safe as the text of a `<script type="application/json">`
/// (no `<`, `>` or `&` that could end the element).
pub(super) fn script_json(v: &serde_json::Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_its_element() {
        let s = script_json(&serde_json::json!({"x": "</script><b>&"}));
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        let back: serde_json::Value = serde_json::from_str(&s).expect("still JSON");
        assert_eq!(back["x"], "</script><b>&");
    }

    #[test]
    fn a_plugin_metric_shows_its_ranges_and_breach() {
        let range = |start, end| Threshold {
            start: Some(start),
            end: Some(end),
            inside: false,
        };
        let m = Metric {
            name: "procs".into(),
            value: 97.0,
            unit: String::new(),
            warn: Some(range(0.0, 1.0)),
            crit: Some(range(0.0, 100_000.0)),
            min: Some(0.0),
            max: None,
        };
        let line = metric_line(&m);
        assert_eq!(line.value, "97 (min 0)");
        assert_eq!((line.warn.as_str(), line.crit.as_str()), ("1", "100000"));
        assert_eq!(line.warn_means, "< 0 or > 1");
        assert_eq!(line.breach, "warn");
        let calm = metric_line(&Metric {
            value: 0.5,
            unit: "s".into(),
            ..m.clone()
        });
        assert_eq!((calm.value.as_str(), calm.breach), ("0.5s (min 0s)", ""));
        let over = metric_line(&Metric { value: 2e5, ..m });
        assert_eq!(over.breach, "crit");
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(pct(1, 4), "25.0 %");
        assert_eq!(pct(1, 0), "?");
    }
}
