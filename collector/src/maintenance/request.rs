//! API and CLI input → a validated [`NewWindow`]: the tenant is resolved
//! within the caller's scope (another tenant is "not found"), the host (agent
//! id or hostname) within the tenant, local times in the tenant's zone.

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::Deserialize;

use super::recurrence::Recurrence;
use super::rrule::Rule;
use super::schedule::{self, Weekly};
use super::{Kind, NewWindow, Schedule, Target, Window};
use crate::domain::{ApiCaller, Millis, Scope, Tenant};
use crate::tickets::Service;
use crate::{Error, Result};

/// Longest one-off window or silence.
const MAX_SPAN_MS: i64 = 366 * 24 * 3600 * 1000;

/// `POST /api/v1/maintenance`: one-off (`start` + `end`), `weekly` or
/// `recurrence` (an RRULE).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowRequest {
    /// Tenant name or id; a tenant-scoped API key may leave it out.
    pub tenant: Option<String>,
    pub site: Option<String>,
    /// Agent id or hostname.
    pub host: Option<String>,
    /// Check kind, e.g. `backup`.
    pub check: Option<String>,
    /// RFC 3339 (`2026-05-01T20:00:00Z`) or local `2026-05-01 22:00`
    /// in the tenant's time zone.
    pub start: Option<String>,
    pub end: Option<String>,
    pub weekly: Option<WeeklyRequest>,
    pub recurrence: Option<RecurrenceRequest>,
    #[serde(default)]
    pub reason: String,
}

/// An RRULE schedule:
/// `{"rrule": "FREQ=MONTHLY;BYDAY=2TU", "at": "22:00", "duration": "4h"}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecurrenceRequest {
    /// An RFC 5545 RRULE subset (see [`super::rrule`]).
    pub rrule: String,
    /// Local start time `HH:MM` in the tenant's time zone.
    pub at: String,
    /// `4h`, `90m`.
    pub duration: String,
    /// Anchor date `YYYY-MM-DD` (RFC 5545 DTSTART) from which INTERVAL
    /// counts and occurrences start; default: today in the tenant's zone.
    pub dtstart: Option<String>,
}

/// A weekly schedule: `{"days": "mon-fri", "at": "22:00", "duration": "2h"}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyRequest {
    /// `mon,tue`, `mon-fri`, `daily`.
    pub days: String,
    /// Local start time `HH:MM` in the tenant's time zone.
    pub at: String,
    /// `2h`, `90m`, `1h 30m`.
    pub duration: String,
}

/// `POST /api/v1/silences`: from now for `duration`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    pub tenant: Option<String>,
    pub site: Option<String>,
    pub host: Option<String>,
    pub check: Option<String>,
    /// `30m`, `2h`.
    pub duration: String,
    /// Why (required: whoever sees the silence later needs to know).
    pub reason: String,
}

/// Validates and stores a planned window.
pub async fn create_window(
    store: &Service,
    caller: &ApiCaller,
    req: WindowRequest,
    now: Millis,
) -> Result<Window> {
    let (tenant, target) = resolve(
        store,
        caller,
        req.tenant.as_deref(),
        req.site,
        req.host,
        req.check,
    )
    .await?;
    let (tz, _) = super::time_zone(&tenant.time_zone).map_err(Error::InvalidArgument)?;
    let (kind, schedule) = match (req.start, req.end, req.weekly, req.recurrence) {
        (Some(start), Some(end), None, None) => {
            let start = parse_instant(&start, &tz, now)?;
            let end = parse_instant(&end, &tz, now)?;
            if end <= start {
                return Err(invalid("end must be after start"));
            }
            if end <= now {
                return Err(invalid("the window is already over"));
            }
            if end - start > MAX_SPAN_MS {
                return Err(invalid("a window may last at most 366 days"));
            }
            (Kind::Once, Schedule::Between { start, end })
        }
        (None, None, Some(w), None) => {
            let days = schedule::parse_days(&w.days).map_err(Error::InvalidArgument)?;
            let at = schedule::parse_clock(&w.at).map_err(Error::InvalidArgument)?;
            let secs = duration_secs(&w.duration)?;
            let weekly = Weekly::new(days, at, secs).map_err(Error::InvalidArgument)?;
            (Kind::Weekly, Schedule::Weekly(weekly))
        }
        (None, None, None, Some(r)) => {
            (Kind::Rrule, Schedule::Recurring(recurrence(&r, &tz, now)?))
        }
        _ => {
            return Err(invalid(
                "give one of: start and end (one-off), weekly (days, at, duration), \
                 or recurrence (rrule, at, duration)",
            ));
        }
    };
    let reason = req.reason.trim().to_string();
    if reason.len() > 1024 {
        return Err(invalid("reason is longer than 1024 characters"));
    }
    store
        .create_maintenance(
            caller,
            &NewWindow {
                tenant_id: tenant.id,
                kind,
                target,
                schedule,
                reason,
            },
            now,
        )
        .await
}

/// Validates and stores a silence starting `now`.
pub async fn create_silence(
    store: &Service,
    caller: &ApiCaller,
    req: SilenceRequest,
    now: Millis,
) -> Result<Window> {
    let (tenant, target) = resolve(
        store,
        caller,
        req.tenant.as_deref(),
        req.site,
        req.host,
        req.check,
    )
    .await?;
    let d = parse_duration(&req.duration)?;
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if !(60_000..=MAX_SPAN_MS).contains(&ms) {
        return Err(invalid("duration must be between 1 minute and 366 days"));
    }
    let reason = req.reason.trim().to_string();
    if reason.is_empty() || reason.len() > 1024 {
        return Err(invalid("a silence needs a reason (1..1024 characters)"));
    }
    store
        .create_maintenance(
            caller,
            &NewWindow {
                tenant_id: tenant.id,
                kind: Kind::Silence,
                target,
                schedule: Schedule::Between {
                    start: now,
                    end: now + ms,
                },
                reason,
            },
            now,
        )
        .await
}

/// A validated RRULE schedule that still has an occurrence after `now`.
pub fn recurrence(r: &RecurrenceRequest, tz: &TimeZone, now: Millis) -> Result<Recurrence> {
    let rule = Rule::parse(&r.rrule).map_err(Error::InvalidArgument)?;
    let at = schedule::parse_clock(&r.at).map_err(Error::InvalidArgument)?;
    let secs = duration_secs(&r.duration)?;
    let dtstart = match r.dtstart.as_deref().map(str::trim) {
        Some(d) => d.parse().map_err(|_| {
            Error::InvalidArgument(format!("dtstart {d:?} must be a date, YYYY-MM-DD"))
        })?,
        None => schedule::local_date(now, tz).ok_or_else(|| invalid("now is out of range"))?,
    };
    let rec = Recurrence::new(rule, dtstart, at, secs).map_err(Error::InvalidArgument)?;
    if rec.over(now, tz) {
        return Err(Error::InvalidArgument(format!(
            "rrule {} from {dtstart} has no occurrence after now",
            rec.rule()
        )));
    }
    Ok(rec)
}

fn duration_secs(text: &str) -> Result<u32> {
    Ok(u32::try_from(parse_duration(text)?.as_secs()).unwrap_or(u32::MAX))
}

fn invalid(m: &str) -> Error {
    Error::InvalidArgument(m.to_string())
}

/// The tenant (by name or id, within the caller's scope) and the target,
/// for a caller allowed to write.
async fn resolve(
    store: &Service,
    caller: &ApiCaller,
    tenant: Option<&str>,
    site: Option<String>,
    host: Option<String>,
    check: Option<String>,
) -> Result<(Tenant, Target)> {
    caller.require_write()?;
    let tenants = store.store().list_tenants(&caller.scope).await?;
    let tenant = match (tenant.map(str::trim), &caller.scope) {
        (Some(t), _) => tenants
            .into_iter()
            .find(|x| x.id == t || x.name == t)
            .ok_or_else(|| Error::NotFound(format!("tenant {t:?}")))?,
        (None, Scope::All) => {
            return Err(invalid("tenant is required with an all-tenants API key"));
        }
        (None, _) => match <[Tenant; 1]>::try_from(tenants) {
            Ok([t]) => t,
            Err(v) if v.is_empty() => return Err(Error::NotFound("the caller's tenant".into())),
            Err(_) => {
                return Err(invalid(
                    "tenant is required: the caller has several tenants",
                ));
            }
        },
    };
    let site = optional(site, "site", 128, |_| true)?;
    let check = optional(check, "check", 64, |c| {
        c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
    })?;
    let agent_id = match optional(host, "host", 256, |_| true)? {
        None => None,
        Some(h) => {
            let agents = store.list_agents(&Scope::Tenant(tenant.id.clone())).await?;
            if let Some(a) = agents.iter().find(|a| a.id == h) {
                Some(a.id.clone())
            } else {
                let by_name: Vec<_> = agents.iter().filter(|a| a.hostname == h).collect();
                match by_name.as_slice() {
                    [a] => Some(a.id.clone()),
                    [] => {
                        return Err(Error::NotFound(format!(
                            "host {h:?} in tenant {:?}",
                            tenant.name
                        )));
                    }
                    _ => {
                        return Err(Error::InvalidArgument(format!(
                            "several agents are named {h:?}: give the agent id"
                        )));
                    }
                }
            }
        }
    };
    Ok((
        tenant,
        Target {
            site,
            agent_id,
            check,
        },
    ))
}

fn optional(
    v: Option<String>,
    what: &str,
    max: usize,
    valid: impl Fn(&str) -> bool,
) -> Result<Option<String>> {
    match v.map(|s| s.trim().to_string()) {
        None => Ok(None),
        Some(s) if s.is_empty() || s.len() > max || !valid(&s) => Err(Error::InvalidArgument(
            format!("{what} {s:?} is empty, too long or has invalid characters"),
        )),
        Some(s) => Ok(Some(s)),
    }
}

/// `now`, an RFC 3339 instant, or a local date-time in `tz`.
pub fn parse_instant(text: &str, tz: &TimeZone, now: Millis) -> Result<Millis> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let local: DateTime = text.parse().map_err(|_| {
        Error::InvalidArgument(format!(
            "time {text:?}: expected RFC 3339 (2026-05-01T20:00:00Z) or local \"2026-05-01 22:00\""
        ))
    })?;
    tz.to_timestamp(local)
        .map(Timestamp::as_millisecond)
        .map_err(|e| Error::InvalidArgument(format!("time {text:?}: {e}")))
}

/// `2h`, `30m`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    humantime::parse_duration(text.trim())
        .map_err(|e| Error::InvalidArgument(format!("duration {text:?}: {e} (e.g. 30m, 2h)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc3339_or_local_in_the_tenant_zone() {
        let berlin = TimeZone::get("Europe/Berlin").expect("tz");
        let utc = parse_instant("2026-07-01T20:00:00Z", &berlin, 0).expect("rfc3339");
        let local = parse_instant("2026-07-01 22:00", &berlin, 0).expect("local");
        assert_eq!(utc, local, "22:00 CEST is 20:00 UTC");
        assert_eq!(parse_instant("now", &berlin, 42).expect("now"), 42);
        assert!(parse_instant("tomorrow-ish", &berlin, 0).is_err());
        assert_eq!(parse_duration("1h 30m").expect("d").as_secs(), 5400);
        assert!(parse_duration("soon").is_err());
    }
}
