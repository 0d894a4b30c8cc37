//! Wire (`forewarn.v1`) ↔ domain conversion, with validation.
//!
//! Limits are deliberately tight: an agent sends short names and a bounded
//! number of results; anything beyond is a broken or hostile agent and gets
//! `INVALID_ARGUMENT`, never a row in the store.

use forewarn_proto::v1 as pb;

use crate::domain::{
    CheckResult, CheckState, DiskUsage, HostFacts, HostSnapshot, Metric, Millis, Report,
    ReportPayload, SpoolStatus, Threshold,
};
use crate::{Error, Result};

pub const MAX_ID_LEN: usize = 64;
pub const MAX_NAME_LEN: usize = 255;
pub const MAX_CHECK_LEN: usize = 64;
pub const MAX_ITEM_LEN: usize = 512;
pub const MAX_MESSAGE_LEN: usize = 4096;
pub const MAX_RESULTS: usize = 1000;
pub const MAX_METRICS: usize = 64;
pub const MAX_DISKS: usize = 256;
/// Reports stamped further than this in the future are refused.
pub const MAX_CLOCK_SKEW_MS: Millis = 24 * 3600 * 1000;

fn text(field: &str, value: &str, max: usize) -> Result<String> {
    if value.len() > max {
        return Err(Error::InvalidArgument(format!(
            "{field} is {} bytes, limit {max}",
            value.len()
        )));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Error::InvalidArgument(format!(
            "{field} contains control characters"
        )));
    }
    Ok(value.to_string())
}

fn required(field: &str, value: &str, max: usize) -> Result<String> {
    if value.is_empty() {
        return Err(Error::InvalidArgument(format!("{field} is required")));
    }
    text(field, value, max)
}

fn millis(field: &str, ts: Option<&forewarn_proto::Timestamp>, now: Millis) -> Result<Millis> {
    let ts = ts.ok_or_else(|| Error::InvalidArgument(format!("{field} is required")))?;
    if !(0..1_000_000_000).contains(&ts.nanos) || ts.seconds < 0 {
        return Err(Error::InvalidArgument(format!("{field} is out of range")));
    }
    let ms = ts
        .seconds
        .checked_mul(1000)
        .and_then(|s| s.checked_add(i64::from(ts.nanos / 1_000_000)))
        .ok_or_else(|| Error::InvalidArgument(format!("{field} is out of range")))?;
    if ms > now + MAX_CLOCK_SKEW_MS {
        return Err(Error::InvalidArgument(format!(
            "{field} is more than 24 h in the future"
        )));
    }
    Ok(ms)
}

/// Validated host facts.
pub fn host_facts(f: Option<&pb::HostFacts>) -> Result<HostFacts> {
    let f = f.ok_or_else(|| Error::InvalidArgument("host is required".into()))?;
    Ok(HostFacts {
        hostname: required("host.hostname", &f.hostname, MAX_NAME_LEN)?,
        os_name: text("host.os_name", &f.os_name, MAX_NAME_LEN)?,
        os_version: text("host.os_version", &f.os_version, MAX_NAME_LEN)?,
        kernel_version: text("host.kernel_version", &f.kernel_version, MAX_NAME_LEN)?,
        arch: text("host.arch", &f.arch, MAX_CHECK_LEN)?,
        agent_version: text("host.agent_version", &f.agent_version, MAX_CHECK_LEN)?,
        cpu_count: f.cpu_count,
        memory_total_bytes: f.memory_total_bytes,
    })
}

fn check_state(v: i32) -> Result<CheckState> {
    match pb::CheckState::try_from(v) {
        Ok(pb::CheckState::Ok) => Ok(CheckState::Ok),
        Ok(pb::CheckState::Warn) => Ok(CheckState::Warn),
        Ok(pb::CheckState::Crit) => Ok(CheckState::Crit),
        Ok(pb::CheckState::Unknown) => Ok(CheckState::Unknown),
        Ok(pb::CheckState::Unspecified) | Err(_) => Err(Error::InvalidArgument(format!(
            "check state {v} is not a valid state"
        ))),
    }
}

fn check_result(r: &pb::CheckResult, now: Millis) -> Result<CheckResult> {
    if r.metrics.len() > MAX_METRICS {
        return Err(Error::InvalidArgument(format!(
            "{} metrics in one result, limit {MAX_METRICS}",
            r.metrics.len()
        )));
    }
    let metrics = r
        .metrics
        .iter()
        .map(|m| {
            if !m.value.is_finite() {
                return Err(Error::InvalidArgument(format!(
                    "metric {:?} is not a finite number",
                    m.name
                )));
            }
            let limit = |which: &str, v: Option<f64>| finite_opt(&m.name, which, v);
            Ok(Metric {
                name: required("metric.name", &m.name, MAX_CHECK_LEN * 2)?,
                value: m.value,
                unit: text("metric.unit", &m.unit, 32)?,
                warn: threshold(&m.name, "warn", m.warn.as_ref())?,
                crit: threshold(&m.name, "crit", m.crit.as_ref())?,
                min: limit("min", m.min)?,
                max: limit("max", m.max)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(CheckResult {
        check: required("check", &r.check, MAX_CHECK_LEN)?,
        item: text("item", &r.item, MAX_ITEM_LEN)?,
        state: check_state(r.state)?,
        message: text("message", &r.message, MAX_MESSAGE_LEN)?,
        metrics,
        since: millis("since", r.since.as_ref(), now)?,
    })
}

/// An optional number of metric `name` that must be finite when present.
fn finite_opt(name: &str, field: &str, v: Option<f64>) -> Result<Option<f64>> {
    match v {
        Some(v) if !v.is_finite() => Err(Error::InvalidArgument(format!(
            "metric {name:?} {field} is not a finite number"
        ))),
        v => Ok(v),
    }
}

/// A plugin threshold of metric `name`: finite bounds (an absent one is
/// unbounded), start not above end.
fn threshold(name: &str, which: &str, t: Option<&pb::Threshold>) -> Result<Option<Threshold>> {
    let Some(t) = t else { return Ok(None) };
    let start = finite_opt(name, &format!("{which}.start"), t.start)?;
    let end = finite_opt(name, &format!("{which}.end"), t.end)?;
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(Error::InvalidArgument(format!(
            "metric {name:?} {which}.start {s} is above its end {e}"
        )));
    }
    Ok(Some(Threshold {
        start,
        end,
        inside: t.inside,
    }))
}

fn results(rs: &[pb::CheckResult], now: Millis) -> Result<Vec<CheckResult>> {
    if rs.len() > MAX_RESULTS {
        return Err(Error::InvalidArgument(format!(
            "{} results in one report, limit {MAX_RESULTS}",
            rs.len()
        )));
    }
    rs.iter().map(|r| check_result(r, now)).collect()
}

fn snapshot(s: Option<&pb::HostSnapshot>) -> Result<HostSnapshot> {
    let s = s.ok_or_else(|| Error::InvalidArgument("heartbeat.snapshot is required".into()))?;
    if s.disks.len() > MAX_DISKS {
        return Err(Error::InvalidArgument(format!(
            "{} disks in a snapshot, limit {MAX_DISKS}",
            s.disks.len()
        )));
    }
    let finite = |name: &str, v: f64| {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(Error::InvalidArgument(format!(
                "snapshot.{name} is not finite"
            )))
        }
    };
    Ok(HostSnapshot {
        uptime_secs: s.uptime_secs,
        cpu_percent: finite("cpu_percent", s.cpu_percent)?,
        memory_used_bytes: s.memory_used_bytes,
        memory_total_bytes: s.memory_total_bytes,
        swap_used_bytes: s.swap_used_bytes,
        swap_total_bytes: s.swap_total_bytes,
        load1: finite("load1", s.load1)?,
        load5: finite("load5", s.load5)?,
        load15: finite("load15", s.load15)?,
        disks: s
            .disks
            .iter()
            .map(|d| {
                Ok(DiskUsage {
                    mount_point: required("disk.mount_point", &d.mount_point, MAX_ITEM_LEN)?,
                    fs_type: text("disk.fs_type", &d.fs_type, MAX_CHECK_LEN)?,
                    total_bytes: d.total_bytes,
                    available_bytes: d.available_bytes,
                })
            })
            .collect::<Result<Vec<_>>>()?,
        spool: None,
    })
}

/// A validated report. `agent_id` must match the session's (identity comes
/// from the certificate; the field is only cross-checked). `boot_id` may be
/// another than the hello's: an agent resends an earlier run's spooled
/// reports under their original `(boot_id, seq)`, and the dedup key keeps
/// them apart.
pub fn report(r: &pb::Report, agent_id: &str, now: Millis) -> Result<Report> {
    if !r.agent_id.is_empty() && r.agent_id != agent_id {
        return Err(Error::PermissionDenied(
            "report agent_id does not match the client certificate".into(),
        ));
    }
    let boot_id = required("report.boot_id", &r.boot_id, MAX_ID_LEN)?;
    if r.seq == 0 || r.seq > i64::MAX as u64 {
        return Err(Error::InvalidArgument("report seq must be 1..2^63".into()));
    }
    let payload = match &r.payload {
        Some(pb::report::Payload::StateChanges(s)) => {
            ReportPayload::StateChanges(results(&s.results, now)?)
        }
        Some(pb::report::Payload::Heartbeat(h)) => ReportPayload::Heartbeat {
            snapshot: HostSnapshot {
                spool: h.spool.as_ref().map(|s| SpoolStatus {
                    dropped_heartbeats: s.dropped_heartbeats,
                    dropped_state_changes: s.dropped_state_changes,
                    damaged: s.damaged,
                    unreadable: s.unreadable,
                    memory_only: s.memory_only,
                    queued: s.queued,
                }),
                ..snapshot(h.snapshot.as_ref())?
            },
            checks: results(&h.checks, now)?,
        },
        None => return Err(Error::InvalidArgument("report payload is required".into())),
    };
    Ok(Report {
        boot_id,
        seq: r.seq,
        observed_at: millis("observed_at", r.observed_at.as_ref(), now)?,
        payload,
    })
}

/// A validated boot id.
pub fn boot_id(v: &str) -> Result<String> {
    required("hello.boot_id", v, MAX_ID_LEN)
}

/// How far the agent's clock is behind ours: `received` (collector time)
/// minus the hello's `sent_at` (agent time), in ms; `None` when the agent
/// does not say (older agents). Any well-formed instant is accepted, however
/// far off: a wrong clock is what this measures, so it is flagged, not
/// refused.
pub fn clock_offset(
    sent_at: Option<&forewarn_proto::Timestamp>,
    received: Millis,
) -> Result<Option<Millis>> {
    let Some(ts) = sent_at else {
        return Ok(None);
    };
    let bad = || Error::InvalidArgument("hello.sent_at is out of range".into());
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(bad());
    }
    let sent = ts
        .seconds
        .checked_mul(1000)
        .and_then(|s| s.checked_add(i64::from(ts.nanos / 1_000_000)))
        .ok_or_else(bad)?;
    received.checked_sub(sent).map(Some).ok_or_else(bad)
}

/// Wire timestamp of Unix milliseconds.
pub fn timestamp(ms: Millis) -> forewarn_proto::Timestamp {
    forewarn_proto::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// The acknowledgement of one committed report.
pub fn ack(boot_id: &str, seq: u64) -> pb::CollectorMessage {
    pb::CollectorMessage {
        body: Some(pb::collector_message::Body::Ack(pb::Ack {
            boot_id: boot_id.to_string(),
            seq,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Millis {
        1_800_000_000_000
    }

    fn result(state: i32) -> pb::CheckResult {
        pb::CheckResult {
            check: "disk".into(),
            item: "/".into(),
            state,
            message: "ok".into(),
            metrics: vec![],
            since: Some(timestamp(now())),
        }
    }

    fn report_with(results: Vec<pb::CheckResult>) -> pb::Report {
        pb::Report {
            agent_id: "a".into(),
            boot_id: "b".into(),
            seq: 1,
            observed_at: Some(timestamp(now())),
            payload: Some(pb::report::Payload::StateChanges(pb::StateChanges {
                results,
            })),
        }
    }

    #[test]
    fn valid_report_converts() {
        let r = report(&report_with(vec![result(3)]), "a", now()).expect("valid");
        assert_eq!(r.payload.results()[0].state, CheckState::Crit);
        assert_eq!(r.observed_at, now());
    }

    #[test]
    fn invalid_fields_are_refused() {
        for bad in [0, 5, -1, 99] {
            assert!(report(&report_with(vec![result(bad)]), "a", now()).is_err());
        }
        let mut long = result(1);
        long.item = "x".repeat(MAX_ITEM_LEN + 1);
        assert!(report(&report_with(vec![long]), "a", now()).is_err());
        let mut nan = result(1);
        nan.metrics.push(pb::Metric {
            name: "m".into(),
            value: f64::NAN,
            ..Default::default()
        });
        assert!(report(&report_with(vec![nan]), "a", now()).is_err());
        let too_many = vec![result(1); MAX_RESULTS + 1];
        assert!(report(&report_with(too_many), "a", now()).is_err());
    }

    fn with_metric(metric: pb::Metric) -> pb::Report {
        let mut r = result(2);
        r.metrics.push(metric);
        report_with(vec![r])
    }

    fn plugin_metric() -> pb::Metric {
        pb::Metric {
            name: "procs".into(),
            value: 97.0,
            unit: String::new(),
            warn: Some(pb::Threshold {
                start: Some(0.0),
                end: Some(1.0),
                inside: false,
            }),
            crit: Some(pb::Threshold {
                start: None,
                end: Some(100_000.0),
                inside: true,
            }),
            min: Some(0.0),
            max: None,
        }
    }

    #[test]
    fn plugin_thresholds_convert() {
        let r = report(&with_metric(plugin_metric()), "a", now()).expect("valid");
        let m = &r.payload.results()[0].metrics[0];
        let warn = m.warn.expect("warn");
        assert_eq!(
            (warn.start, warn.end, warn.inside),
            (Some(0.0), Some(1.0), false)
        );
        let crit = m.crit.expect("crit");
        assert_eq!(
            (crit.start, crit.end, crit.inside),
            (None, Some(100_000.0), true)
        );
        assert_eq!((m.min, m.max), (Some(0.0), None));
    }

    #[test]
    fn hostile_thresholds_are_refused_naming_the_field() {
        let bad = |edit: fn(&mut pb::Metric)| {
            let mut m = plugin_metric();
            edit(&mut m);
            match report(&with_metric(m), "a", now()) {
                Err(Error::InvalidArgument(e)) => e,
                other => panic!("accepted: {other:?}"),
            }
        };
        let e = bad(|m| m.warn.as_mut().expect("warn").start = Some(f64::NAN));
        assert_eq!(e, "metric \"procs\" warn.start is not a finite number");
        let e = bad(|m| m.crit.as_mut().expect("crit").end = Some(f64::INFINITY));
        assert_eq!(e, "metric \"procs\" crit.end is not a finite number");
        let e = bad(|m| m.warn.as_mut().expect("warn").start = Some(5.0));
        assert_eq!(e, "metric \"procs\" warn.start 5 is above its end 1");
        let e = bad(|m| m.min = Some(f64::NEG_INFINITY));
        assert_eq!(e, "metric \"procs\" min is not a finite number");
        let e = bad(|m| m.max = Some(f64::NAN));
        assert_eq!(e, "metric \"procs\" max is not a finite number");
    }

    #[test]
    fn clock_offset_is_receive_time_minus_sent_at() {
        let ts = |seconds, nanos| forewarn_proto::Timestamp { seconds, nanos };
        assert_eq!(clock_offset(None, now()).unwrap(), None);
        let now = now();
        // 10 minutes ahead: negative offset.
        let ahead = timestamp(now + 600_000);
        assert_eq!(clock_offset(Some(&ahead), now).unwrap(), Some(-600_000));
        assert_eq!(
            clock_offset(Some(&timestamp(now - 1500)), now).unwrap(),
            Some(1500)
        );
        // A clock reset to 1970 is far off, not malformed.
        assert_eq!(clock_offset(Some(&ts(0, 0)), now).unwrap(), Some(now));
        assert!(clock_offset(Some(&ts(1, -1)), now).is_err());
        assert!(clock_offset(Some(&ts(1, 1_000_000_000)), now).is_err());
        assert!(clock_offset(Some(&ts(i64::MAX, 0)), now).is_err());
        assert!(clock_offset(Some(&ts(i64::MIN / 1000, 0)), now).is_err());
    }

    #[test]
    fn a_heartbeat_carries_the_agent_spool_status() {
        let mut r = report_with(vec![]);
        r.payload = Some(pb::report::Payload::Heartbeat(pb::Heartbeat {
            snapshot: Some(pb::HostSnapshot::default()),
            checks: vec![result(1)],
            spool: Some(pb::SpoolStatus {
                dropped_heartbeats: 7,
                dropped_state_changes: 1,
                memory_only: true,
                queued: 3,
                ..Default::default()
            }),
        }));
        let ReportPayload::Heartbeat { snapshot, .. } =
            report(&r, "a", now()).expect("valid").payload
        else {
            panic!("not a heartbeat");
        };
        let spool = snapshot.spool.expect("spool status kept");
        assert_eq!(
            (spool.dropped_heartbeats, spool.dropped_state_changes),
            (7, 1)
        );
        assert!(spool.memory_only);
        assert_eq!(spool.queued, 3);
        // Older agents send none; the snapshot's JSON then has no field.
        if let Some(pb::report::Payload::Heartbeat(h)) = &mut r.payload {
            h.spool = None;
        }
        let ReportPayload::Heartbeat { snapshot, .. } =
            report(&r, "a", now()).expect("valid").payload
        else {
            panic!("not a heartbeat");
        };
        assert!(
            !serde_json::to_string(&snapshot)
                .expect("json")
                .contains("spool")
        );
    }

    #[test]
    fn identity_fields_must_match_session() {
        let r = report_with(vec![result(1)]);
        assert!(matches!(
            report(&r, "other-agent", now()),
            Err(Error::PermissionDenied(_))
        ));
        // An earlier run's report (resent from the agent's spool) keeps its
        // own boot id; a missing or oversized one is refused.
        let mut earlier = r.clone();
        earlier.boot_id = "earlier-boot".into();
        let earlier = report(&earlier, "a", now()).expect("earlier boot accepted");
        assert_eq!(earlier.boot_id, "earlier-boot");
        for bad in [String::new(), "x".repeat(MAX_ID_LEN + 1)] {
            let mut r = r.clone();
            r.boot_id = bad;
            assert!(report(&r, "a", now()).is_err());
        }
        let mut future = r.clone();
        future.observed_at = Some(timestamp(now() + 2 * MAX_CLOCK_SKEW_MS));
        assert!(report(&future, "a", now()).is_err());
        let mut zero = r;
        zero.seq = 0;
        assert!(report(&zero, "a", now()).is_err());
    }
}
