//! Deciding whether a heartbeat becomes a metric sample, and building it.

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::domain::{CheckResult, HostSnapshot, Millis, Report, ReportPayload};
use crate::store::{AgentRow, MetricSample, WriteTx};

/// The check whose results carry a mount's time-to-full (`agent/src/checks/disk.rs`).
const DISK_CHECK: &str = "disk";
/// Its metric: hours until the mount is full at the current fill rate.
const HOURS_TO_FULL: &str = "hours_to_full";
/// A projection further out than this is no projection (the agent reports
/// `Duration::MAX` for a disk that barely grows).
const MAX_HOURS_TO_FULL: f64 = 10.0 * 365.0 * 24.0;

/// One mount in a stored sample (`metric_samples.disks`, a JSON array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSample {
    pub mount: String,
    pub used_bytes: i64,
    pub total_bytes: i64,
    /// When the disk check projects the mount full, in collector time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_at: Option<Millis>,
}

/// When a report's observation happened in collector time: the agent's
/// clock shifted by its offset measured at session start (so a heartbeat
/// replayed from the spool after an outage lands where it was taken),
/// never after `now`.
pub fn sample_time(observed_at: Millis, clock_offset_ms: Option<i64>, now: Millis) -> Millis {
    observed_at
        .saturating_add(clock_offset_ms.unwrap_or(0))
        .min(now)
}

/// Whether a sample at `at` is due: the first in its aligned window of
/// `every_ms` (windows start at multiples of `every_ms` since the epoch),
/// and later than the agent's latest sample.
pub fn window_due(last_sample_at: Option<Millis>, at: Millis, every_ms: Millis) -> bool {
    let every = every_ms.max(1);
    match last_sample_at {
        None => true,
        Some(last) => at > last && at.div_euclid(every) > last.div_euclid(every),
    }
}

/// Writes the report's metric sample if one is due; when it was taken, for
/// `touch_agent` to record as the agent's latest.
pub(crate) async fn sample(
    tx: &mut dyn WriteTx,
    row: &AgentRow,
    report: &Report,
    every_ms: Millis,
    now: Millis,
) -> Result<Option<Millis>> {
    let ReportPayload::Heartbeat { snapshot, checks } = &report.payload else {
        return Ok(None);
    };
    let at = sample_time(report.observed_at, row.clock_offset_ms, now);
    if !window_due(row.last_sample_at, at, every_ms) {
        return Ok(None);
    }
    tx.insert_metric_sample(&build(row, snapshot, checks, at))
        .await?;
    Ok(Some(at))
}

/// The stored form of one heartbeat's snapshot taken at `at`.
fn build(row: &AgentRow, s: &HostSnapshot, checks: &[CheckResult], at: Millis) -> MetricSample {
    let disks: Vec<MountSample> = s
        .disks
        .iter()
        .map(|d| MountSample {
            mount: d.mount_point.clone(),
            used_bytes: int(d.total_bytes.saturating_sub(d.available_bytes)),
            total_bytes: int(d.total_bytes),
            full_at: full_at(checks, &d.mount_point, at),
        })
        .collect();
    let swap = (s.swap_total_bytes > 0).then_some((s.swap_used_bytes, s.swap_total_bytes));
    MetricSample {
        tenant_id: row.tenant_id.clone(),
        agent_id: row.agent_id.clone(),
        at,
        cpu_centipercent: scaled(s.cpu_percent, 100.0),
        memory_used_bytes: int(s.memory_used_bytes),
        memory_total_bytes: int(s.memory_total_bytes),
        swap_used_bytes: swap.map(|(used, _)| int(used)),
        swap_total_bytes: swap.map(|(_, total)| int(total)),
        load1_milli: scaled(s.load1, 1000.0),
        load5_milli: scaled(s.load5, 1000.0),
        load15_milli: scaled(s.load15, 1000.0),
        // A Vec of plain fields always serializes.
        disks: serde_json::to_string(&disks).unwrap_or_else(|_| "[]".into()),
    }
}

/// The disk check's projection for `mount` in this heartbeat, as a time.
fn full_at(checks: &[CheckResult], mount: &str, at: Millis) -> Option<Millis> {
    let hours = checks
        .iter()
        .find(|c| c.check == DISK_CHECK && c.item == mount)?
        .metrics
        .iter()
        .find(|m| m.name == HOURS_TO_FULL)?
        .value;
    if !hours.is_finite() || !(0.0..=MAX_HOURS_TO_FULL).contains(&hours) {
        return None;
    }
    Some(at.saturating_add(scaled(hours, 3_600_000.0)))
}

/// `value × factor`, rounded (NaN stores as 0; the cast saturates).
#[allow(clippy::cast_possible_truncation)]
fn scaled(value: f64, factor: f64) -> i64 {
    (value * factor).round() as i64
}

fn int(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CheckState, DiskUsage, Metric};

    const MIN: Millis = 60_000;

    fn row() -> AgentRow {
        AgentRow {
            tenant_id: "t".into(),
            tenant: "acme".into(),
            agent_id: "a".into(),
            site: String::new(),
            host: "h".into(),
            role: "server".into(),
            overdue: false,
            revoked: false,
            interval_secs: 15,
            connected_at: None,
            clock_offset_ms: None,
            last_sample_at: None,
        }
    }

    fn disk_result(mount: &str, hours: f64) -> CheckResult {
        CheckResult {
            check: DISK_CHECK.into(),
            item: mount.into(),
            state: CheckState::Warn,
            message: String::new(),
            metrics: vec![
                Metric {
                    name: "used_percent".into(),
                    value: 90.0,
                    unit: "percent".into(),
                    ..Metric::default()
                },
                Metric {
                    name: HOURS_TO_FULL.into(),
                    value: hours,
                    unit: "hours".into(),
                    ..Metric::default()
                },
            ],
            since: 0,
        }
    }

    #[test]
    fn one_sample_per_aligned_window() {
        // Heartbeats every 15 s from 10 s past a minute: the first of each
        // minute is kept, so samples are a minute apart, never two in one.
        let mut last = None;
        let mut kept = Vec::new();
        for i in 0..12 {
            let at = 10 * MIN + 10_000 + i * 15_000;
            if window_due(last, at, MIN) {
                kept.push(at);
                last = Some(at);
            }
        }
        assert_eq!(kept, [610_000, 670_000, 730_000]);
        // A resend older than the latest sample never samples again.
        assert!(!window_due(Some(20 * MIN), 19 * MIN - 1, MIN));
        assert!(!window_due(Some(20 * MIN + 5), 20 * MIN + 5, MIN));
        assert!(window_due(None, 0, MIN));
        // A heartbeat slower than the period samples every time.
        assert!(window_due(Some(MIN), 3 * MIN, MIN));
    }

    #[test]
    fn sample_time_follows_the_agent_clock_offset_but_not_past_now() {
        assert_eq!(sample_time(1_000, Some(500), 10_000), 1_500);
        assert_eq!(sample_time(1_000, None, 10_000), 1_000);
        assert_eq!(sample_time(9_900, Some(500), 10_000), 10_000);
    }

    #[test]
    fn a_snapshot_is_stored_scaled_with_projections_in_collector_time() {
        let s = HostSnapshot {
            cpu_percent: 12.345,
            memory_used_bytes: 3,
            memory_total_bytes: 8,
            load1: 0.5,
            load5: 1.25,
            load15: 2.0,
            disks: vec![
                DiskUsage {
                    mount_point: "/".into(),
                    fs_type: "ext4".into(),
                    total_bytes: 100,
                    available_bytes: 40,
                },
                DiskUsage {
                    mount_point: "/data".into(),
                    fs_type: "xfs".into(),
                    total_bytes: 10,
                    available_bytes: 20,
                },
                DiskUsage {
                    mount_point: "/var".into(),
                    fs_type: "xfs".into(),
                    total_bytes: 10,
                    available_bytes: 5,
                },
            ],
            ..HostSnapshot::default()
        };
        let checks = [
            disk_result("/", 2.0),
            disk_result("/var", f64::INFINITY),
            disk_result("/data", -1.0),
        ];
        let m = build(&row(), &s, &checks, 1_000);
        assert_eq!(m.cpu_centipercent, 1235);
        assert_eq!(
            (m.load1_milli, m.load5_milli, m.load15_milli),
            (500, 1250, 2000)
        );
        assert_eq!((m.memory_used_bytes, m.memory_total_bytes), (3, 8));
        assert_eq!((m.swap_used_bytes, m.swap_total_bytes), (None, None));
        let disks: Vec<MountSample> = serde_json::from_str(&m.disks).expect("json");
        assert_eq!(disks[0].used_bytes, 60);
        assert_eq!(disks[0].full_at, Some(1_000 + 2 * 3_600_000));
        // More available than total (a racy statvfs) is not negative use.
        assert_eq!(disks[1].used_bytes, 0);
        assert_eq!(disks[1].full_at, None, "a negative projection is none");
        assert_eq!(disks[2].full_at, None, "an infinite projection is none");
        assert!(!m.disks.contains("null"), "absent projections are left out");

        let with_swap = HostSnapshot {
            swap_used_bytes: 1,
            swap_total_bytes: 4,
            ..HostSnapshot::default()
        };
        let m = build(&row(), &with_swap, &[], 0);
        assert_eq!((m.swap_used_bytes, m.swap_total_bytes), (Some(1), Some(4)));
        assert_eq!(m.disks, "[]");
    }
}
