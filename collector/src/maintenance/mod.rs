//! Maintenance windows and silences: while one covers a problem's scope, the
//! problem is tracked but no ticket opens, and open tickets do not escalate.
//!
//! A window is one-off (`start..end`), weekly (days + local time +
//! duration in the tenant's time zone, see [`schedule`]) or recurs by an
//! RRULE (Patch Tuesday, the last day of the month; see [`recurrence`]
//! and [`rrule`]); a silence is an
//! ad-hoc `now..now + duration` with a reason. Each is scoped to its tenant
//! and optionally narrowed to a site, a host (agent id) and a check kind.
//! This file, [`schedule`], [`recurrence`] and [`rrule`] are pure: the engine loads windows and asks
//! [`Holds::until`]; `windows` stores them (audited) through the storage. [`request`] turns API/CLI input into a validated
//! [`NewWindow`] (resolving tenant and host through the store); [`cli`] is
//! the `maintenance` / `silence` commands.

pub mod cli;
pub mod recurrence;
pub mod request;
pub mod rrule;
pub mod schedule;
mod windows;

pub use windows::ActiveWindows;

use std::time::Duration;

use jiff::tz::TimeZone;
use serde::Serialize;

use crate::domain::{Millis, rfc3339};
use recurrence::Recurrence;
use schedule::Weekly;

/// What kind of suppression a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A planned one-off window.
    Once,
    /// A planned window on days of the week.
    Weekly,
    /// A planned window recurring by an RRULE.
    Rrule,
    /// An ad-hoc silence, from its creation for a duration.
    Silence,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Once => "once",
            Kind::Weekly => "weekly",
            Kind::Rrule => "rrule",
            Kind::Silence => "silence",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "once" => Kind::Once,
            "weekly" => Kind::Weekly,
            "rrule" => Kind::Rrule,
            "silence" => Kind::Silence,
            _ => return None,
        })
    }

    /// The kinds behind `/maintenance` (planned windows).
    pub const WINDOWS: [Kind; 3] = [Kind::Once, Kind::Weekly, Kind::Rrule];
    /// The kind behind `/silences`.
    pub const SILENCES: [Kind; 1] = [Kind::Silence];
}

/// What a window covers inside its tenant; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Target {
    pub site: Option<String>,
    /// A host, by agent id.
    pub agent_id: Option<String>,
    /// A check kind (`disk`, `backup`, `agent` for liveness, …).
    pub check: Option<String>,
}

impl Target {
    /// Whether a problem of `site`/`agent_id`/`check` is inside this scope.
    pub fn covers(&self, site: &str, agent_id: &str, check: &str) -> bool {
        let ok = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        ok(&self.site, site) && ok(&self.agent_id, agent_id) && ok(&self.check, check)
    }
}

/// When a window applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `[start, end)`, Unix milliseconds (one-off windows and silences).
    Between { start: Millis, end: Millis },
    /// Recurring on days of the week, in the tenant's time zone.
    Weekly(Weekly),
    /// Recurring by an RRULE, in the tenant's time zone.
    Recurring(Recurrence),
}

impl Schedule {
    /// If active at `now`: when the current occurrence ends.
    pub fn active_until(&self, now: Millis, tz: &TimeZone) -> Option<Millis> {
        match self {
            &Schedule::Between { start, end } => (start <= now && now < end).then_some(end),
            Schedule::Weekly(w) => w.active_until(now, tz),
            Schedule::Recurring(r) => r.active_until(now, tz),
        }
    }

    /// The next start after `now` (none for a one-off window that started).
    pub fn next_start(&self, now: Millis, tz: &TimeZone) -> Option<Millis> {
        match self {
            &Schedule::Between { start, .. } => (start > now).then_some(start),
            Schedule::Weekly(w) => w.next_start(now, tz),
            Schedule::Recurring(r) => r.next_start(now, tz),
        }
    }

    /// A one-off window or silence that is over for good.
    pub fn ended(&self, now: Millis) -> bool {
        matches!(*self, Schedule::Between { end, .. } if end <= now)
    }
}

/// A stored window or silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub id: i64,
    pub tenant_id: String,
    pub kind: Kind,
    pub target: Target,
    pub schedule: Schedule,
    pub reason: String,
    /// The operator (API key name or `cli:<user>`).
    pub created_by: String,
    pub created_at: Millis,
    /// The tenant's time zone, in which a weekly schedule is read.
    pub time_zone: String,
}

/// Whether `window` covers the instant `now` (its scope aside).
pub fn is_active(window: &Window, now: Millis, tz: &TimeZone) -> bool {
    window.schedule.active_until(now, tz).is_some()
}

/// A validated window or silence to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWindow {
    pub tenant_id: String,
    pub kind: Kind,
    pub target: Target,
    pub schedule: Schedule,
    pub reason: String,
}

/// One tenant's windows with its time zone: the engine's hold lookup.
#[derive(Debug, Clone)]
pub struct Holds {
    tz: TimeZone,
    windows: Vec<Window>,
}

impl Default for Holds {
    fn default() -> Self {
        Self {
            tz: TimeZone::UTC,
            windows: Vec::new(),
        }
    }
}

impl Holds {
    /// `windows` must all belong to one tenant whose zone is `tz`.
    pub fn new(tz: TimeZone, windows: Vec<Window>) -> Self {
        Self { tz, windows }
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// If a window or silence covers this problem at `now`: when the last
    /// of the covering ones ends (the escalation clock restarts then).
    pub fn until(&self, site: &str, agent_id: &str, check: &str, now: Millis) -> Option<Millis> {
        self.windows
            .iter()
            .filter(|w| w.target.covers(site, agent_id, check))
            .filter_map(|w| w.schedule.active_until(now, &self.tz))
            .max()
    }
}

/// Looks up an IANA time zone in the system database; returns it with its
/// canonical name.
pub fn time_zone(name: &str) -> Result<(TimeZone, String), String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 {
        return Err("time zone must be an IANA name such as Europe/Berlin or UTC".into());
    }
    let tz = TimeZone::get(name).map_err(|e| {
        format!("unknown time zone {name:?} (an IANA name such as Europe/Berlin or UTC): {e}")
    })?;
    let canonical = tz.iana_name().unwrap_or(name).to_string();
    Ok((tz, canonical))
}

/// A tenant's stored zone, falling back to UTC if the system database no
/// longer knows it (logged: windows would otherwise silently never apply).
pub fn stored_time_zone(name: &str) -> TimeZone {
    time_zone(name).map_or_else(
        |error| {
            tracing::warn!(%error, time_zone = name, "tenant time zone unusable, using utc");
            TimeZone::UTC
        },
        |(tz, _)| tz,
    )
}

/// A window as the API and CLI show it, with its current state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WindowView {
    pub id: i64,
    pub kind: Kind,
    pub tenant_id: String,
    pub site: Option<String>,
    pub agent_id: Option<String>,
    pub check: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub start_at: Option<Millis>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub end_at: Option<Millis>,
    pub weekly: Option<WeeklyView>,
    pub recurrence: Option<RecurrenceView>,
    pub time_zone: String,
    pub reason: String,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub created_at: Millis,
    /// Covers its scope right now.
    pub active: bool,
    /// End of the current occurrence, when active.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub active_until: Option<Millis>,
    /// Start of the next occurrence, if any.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub next_start: Option<Millis>,
    /// A one-off window or silence, or an rrule series (COUNT, UNTIL), that is over.
    pub ended: bool,
}

/// A weekly schedule as shown: `{"days": ["mon"], "at": "22:00", ...}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WeeklyView {
    #[schema(value_type = Vec<String>)]
    pub days: Vec<&'static str>,
    /// Local start time, `HH:MM`, in `time_zone`.
    pub at: String,
    pub duration_secs: u32,
}

/// An RRULE schedule as shown: `{"rrule": "FREQ=MONTHLY;BYDAY=2TU", ...}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecurrenceView {
    /// The rule, normalized.
    pub rrule: String,
    /// The anchor date (`YYYY-MM-DD`, local): the series' first period.
    pub dtstart: String,
    /// Local start time, `HH:MM`, in `time_zone`.
    pub at: String,
    pub duration_secs: u32,
}

impl WindowView {
    /// Evaluates `w` at `now`.
    pub fn new(w: &Window, now: Millis) -> Self {
        let tz = stored_time_zone(&w.time_zone);
        let active_until = w.schedule.active_until(now, &tz);
        let (mut start_at, mut end_at, mut weekly, mut recurrence) = (None, None, None, None);
        match &w.schedule {
            &Schedule::Between { start, end } => (start_at, end_at) = (Some(start), Some(end)),
            Schedule::Weekly(s) => {
                weekly = Some(WeeklyView {
                    days: schedule::format_days(s.days),
                    at: schedule::format_clock(s.start_minute),
                    duration_secs: s.duration_secs,
                });
            }
            Schedule::Recurring(r) => {
                recurrence = Some(RecurrenceView {
                    rrule: r.rule().to_string(),
                    dtstart: r.dtstart().to_string(),
                    at: schedule::format_clock(r.start_minute()),
                    duration_secs: r.duration_secs(),
                });
            }
        }
        Self {
            id: w.id,
            kind: w.kind,
            tenant_id: w.tenant_id.clone(),
            site: w.target.site.clone(),
            agent_id: w.target.agent_id.clone(),
            check: w.target.check.clone(),
            start_at,
            end_at,
            weekly,
            recurrence,
            time_zone: w.time_zone.clone(),
            reason: w.reason.clone(),
            created_by: w.created_by.clone(),
            created_at: w.created_at,
            active: active_until.is_some(),
            active_until,
            next_start: w.schedule.next_start(now, &tz),
            ended: match &w.schedule {
                Schedule::Recurring(r) => r.over(now, &tz),
                s => s.ended(now),
            },
        }
    }

    /// One line for the CLI.
    pub fn line(&self) -> String {
        let scope = [
            self.site.as_deref().map(|s| format!("site={s}")),
            self.agent_id.as_deref().map(|a| format!("host={a}")),
            self.check.as_deref().map(|c| format!("check={c}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
        let scope = if scope.is_empty() {
            "whole tenant".to_string()
        } else {
            scope.join(" ")
        };
        let human = |secs: u32| humantime::format_duration(Duration::from_secs(u64::from(secs)));
        let when = match (&self.weekly, &self.recurrence) {
            (Some(w), _) => format!(
                "weekly {} at {} {} for {}",
                w.days.join(","),
                w.at,
                self.time_zone,
                human(w.duration_secs)
            ),
            (None, Some(r)) => format!(
                "rrule {} from {} at {} {} for {}",
                r.rrule,
                r.dtstart,
                r.at,
                self.time_zone,
                human(r.duration_secs)
            ),
            (None, None) => format!(
                "{} → {}",
                self.start_at.map(rfc3339::format).unwrap_or_default(),
                self.end_at.map(rfc3339::format).unwrap_or_default()
            ),
        };
        let state = if self.active {
            "ACTIVE"
        } else if self.ended {
            "ended"
        } else {
            "pending"
        };
        format!(
            "{:>5}  {:<7}  {:<7}  {:<40}  {}{}",
            self.id,
            self.kind.as_str(),
            state,
            scope,
            when,
            if self.reason.is_empty() {
                String::new()
            } else {
                format!("  ({}; by {})", self.reason, self.created_by)
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(target: Target, schedule: Schedule) -> Window {
        Window {
            id: 1,
            tenant_id: "t".into(),
            kind: Kind::Once,
            target,
            schedule,
            reason: String::new(),
            created_by: "alice".into(),
            created_at: 0,
            time_zone: "UTC".into(),
        }
    }

    #[test]
    fn scope_narrows_by_site_host_and_check() {
        let any = Target::default();
        assert!(any.covers("hq", "a1", "disk"));
        let host_backup = Target {
            agent_id: Some("a1".into()),
            check: Some("backup".into()),
            ..Target::default()
        };
        assert!(host_backup.covers("hq", "a1", "backup"));
        assert!(!host_backup.covers("hq", "a1", "disk"));
        assert!(!host_backup.covers("hq", "a2", "backup"));
        let site = Target {
            site: Some("hq".into()),
            ..Target::default()
        };
        assert!(site.covers("hq", "a9", "agent"));
        assert!(!site.covers("branch", "a9", "agent"));
    }

    #[test]
    fn one_off_windows_are_half_open() {
        let w = window(
            Target::default(),
            Schedule::Between {
                start: 1000,
                end: 2000,
            },
        );
        let tz = TimeZone::UTC;
        assert!(!is_active(&w, 999, &tz));
        assert!(is_active(&w, 1000, &tz));
        assert!(is_active(&w, 1999, &tz));
        assert!(!is_active(&w, 2000, &tz));
        assert!(w.schedule.ended(2000));
        assert_eq!(w.schedule.next_start(500, &tz), Some(1000));
    }

    #[test]
    fn holds_report_the_latest_end_of_the_covering_windows() {
        let host = Target {
            agent_id: Some("a1".into()),
            ..Target::default()
        };
        let holds = Holds::new(
            TimeZone::UTC,
            vec![
                window(host.clone(), Schedule::Between { start: 0, end: 50 }),
                window(Target::default(), Schedule::Between { start: 0, end: 80 }),
                window(
                    Target {
                        check: Some("backup".into()),
                        ..host
                    },
                    Schedule::Between { start: 0, end: 99 },
                ),
            ],
        );
        assert_eq!(holds.until("hq", "a1", "disk", 10), Some(80));
        assert_eq!(holds.until("hq", "a1", "backup", 10), Some(99));
        assert_eq!(holds.until("hq", "a1", "disk", 80), None);
        assert_eq!(Holds::default().until("hq", "a1", "disk", 10), None);
    }

    #[test]
    fn time_zones_are_validated_and_canonical() {
        assert_eq!(
            time_zone("Europe/Berlin").map(|t| t.1),
            Ok("Europe/Berlin".into())
        );
        assert!(time_zone("Mars/Olympus_Mons").is_err());
        assert!(time_zone("").is_err());
    }
}
