//! The `disk` check: used space per mounted filesystem (`[checks.disk]`).
//! The item is the mount point; the state is the worse of the used-percent
//! rule and the optional free-bytes rule, with per-mount overrides.
//! [`DiskSelector`] decides which filesystems count, for the check and for
//! the heartbeat snapshot alike.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use tracing::warn;

use super::trend::{self, History};
use super::{Check, CheckState, Evaluation, Metric, Mode, Needs, Sample, format_bytes};
use crate::config::{DiskConfig, DiskThresholds};
use crate::host::DiskUsage;
use crate::platform::mounts::normalize_here;

/// Which mounted filesystems are watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSelector {
    mounts: Vec<String>,
    exclude_mounts: Vec<String>,
    exclude_fs_types: Vec<String>,
}

impl DiskSelector {
    pub fn new(config: &DiskConfig) -> Self {
        let config = canonical(config);
        Self {
            mounts: config.mounts,
            exclude_mounts: config.exclude_mounts,
            exclude_fs_types: config.exclude_fs_types,
        }
    }

    /// Explicitly listed mount points, if the config names any.
    pub fn explicit(&self) -> &[String] {
        &self.mounts
    }

    /// The watched filesystems among `disks`, one per mount point (the last
    /// listed wins: it is the one on top), sorted by mount point. Listed
    /// mounts are taken whatever their fs type. Otherwise: every filesystem
    /// with a size whose mount point and type are not excluded, and each
    /// filesystem once — bind mounts of it (systemd's `ReadWritePaths=`,
    /// container volumes) are dropped in favour of the shortest mount
    /// point, as `df` does.
    pub fn select(&self, disks: Vec<DiskUsage>) -> Vec<DiskUsage> {
        let mut by_mount = BTreeMap::new();
        for disk in disks {
            let keep = if self.mounts.is_empty() {
                disk.total_bytes > 0
                    && !self.exclude_mounts.contains(&disk.mount_point)
                    && !self.exclude_fs_types.contains(&disk.fs_type)
            } else {
                self.mounts.contains(&disk.mount_point)
            };
            if keep {
                by_mount.insert(disk.mount_point.clone(), disk);
            }
        }
        if !self.mounts.is_empty() {
            return by_mount.into_values().collect();
        }
        let mut by_filesystem: BTreeMap<(String, u64), DiskUsage> = BTreeMap::new();
        let mut selected = Vec::new();
        for disk in by_mount.into_values() {
            let Some(id) = disk.device_id else {
                selected.push(disk);
                continue;
            };
            let key = (disk.device.clone(), id);
            match by_filesystem.get(&key) {
                Some(kept) if kept.mount_point.len() <= disk.mount_point.len() => {}
                _ => {
                    by_filesystem.insert(key, disk);
                }
            }
        }
        selected.extend(by_filesystem.into_values());
        selected.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        selected
    }
}

/// `config` with every mount point in this OS's spelling (Windows: `c:` and
/// `C:/` become `C:\`, as the host lists them), so they compare equal.
fn canonical(config: &DiskConfig) -> DiskConfig {
    let one = |m: &String| normalize_here(m).unwrap_or_else(|| m.clone());
    DiskConfig {
        mounts: config.mounts.iter().map(one).collect(),
        exclude_mounts: config.exclude_mounts.iter().map(one).collect(),
        overrides: config.overrides.iter().map(|(m, o)| (one(m), *o)).collect(),
        ..config.clone()
    }
}

/// File in the state dir holding the free-space history.
pub const TREND_FILE: &str = "disk-trend.json";

/// How often the history is written to disk: often enough that a restart
/// loses little, rarely enough to cost nothing.
const PERSIST_EVERY: Duration = Duration::from_secs(300);

/// Used space per filesystem, and time-to-full from its trend.
pub struct DiskCheck {
    selector: DiskSelector,
    config: DiskConfig,
    history: History,
    history_file: Option<PathBuf>,
    persist: bool,
    last_persist: Option<Instant>,
}

impl DiskCheck {
    pub fn new(config: &DiskConfig) -> Self {
        Self {
            selector: DiskSelector::new(config),
            config: canonical(config),
            history: History::default(),
            history_file: None,
            persist: false,
            last_persist: None,
        }
    }

    /// Loads the trend history from `file` (if any); in continuous mode it
    /// is also written back every few minutes.
    #[must_use]
    pub fn with_history(mut self, file: Option<PathBuf>, mode: Mode) -> Self {
        if let Some(f) = &file {
            self.history = History::load(f);
        }
        self.history_file = file;
        self.persist = mode == Mode::Continuous;
        self
    }

    fn persist_history(&mut self) {
        let (true, Some(file)) = (self.persist, &self.history_file) else {
            return;
        };
        if self
            .last_persist
            .is_some_and(|t| t.elapsed() < PERSIST_EVERY)
        {
            return;
        }
        // A few KiB every five minutes: small enough to write from here.
        if let Err(error) = self.history.save(file) {
            warn!(%error, file = %file.display(), "cannot save disk trend history");
        }
        self.last_persist = Some(Instant::now());
    }

    fn evaluate_disk(&self, disk: &DiskUsage) -> Evaluation {
        let mount = &disk.mount_point;
        if disk.total_bytes == 0 {
            return Evaluation {
                item: mount.clone(),
                state: CheckState::Unknown,
                message: format!("{mount} size unknown (statvfs failed or empty filesystem)"),
                metrics: Vec::new(),
            };
        }
        let used_percent = disk.used_percent();
        let free = disk.available_bytes;
        let by_threshold = disk_state(&self.config.thresholds_for(mount), used_percent, free);
        #[allow(clippy::cast_precision_loss)]
        let mut metrics = vec![
            Metric::new("used_percent", used_percent, "percent"),
            Metric::new("free_bytes", free as f64, "bytes"),
            Metric::new("total_bytes", disk.total_bytes as f64, "bytes"),
        ];
        let mut message = format!(
            "{mount} {used_percent:.1}% used, {} free of {}",
            format_bytes(free),
            format_bytes(disk.total_bytes)
        );
        let mut state = by_threshold;
        if self.config.trend_enabled {
            let settings = self.config.trend();
            if let Some(f) = self.history.forecast(mount, free, &settings) {
                let by_trend = trend::trend_state(Some(&f), used_percent, &settings);
                state = state.worst(by_trend);
                let hours = f.time_to_full.as_secs_f64() / 3600.0;
                metrics.push(Metric::new(
                    "fill_rate_bytes_per_hour",
                    f.fill_rate * 3600.0,
                    "bytes",
                ));
                metrics.push(Metric::new("hours_to_full", hours, "hours"));
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let rate = format_bytes((f.fill_rate * 3600.0) as u64);
                message.push_str(&format!(
                    "; filling at {rate}/h, full in ~{}{}",
                    trend::format_eta(f.time_to_full),
                    full_at(f.time_to_full)
                ));
            }
        }
        Evaluation {
            item: mount.clone(),
            state,
            message,
            metrics,
        }
    }
}

/// ` (around 2026-11-23 17:40 UTC)`, or nothing when out of range.
fn full_at(in_: Duration) -> String {
    let Some(at) = SystemTime::now().checked_add(in_) else {
        return String::new();
    };
    let at = time::OffsetDateTime::from(at);
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.format(&fmt)
        .map(|s| format!(" (around {s})"))
        .unwrap_or_default()
}

/// The worse of the percent rule (at or above) and the free-bytes rule
/// (below).
pub fn disk_state(t: &DiskThresholds, used_percent: f64, free_bytes: u64) -> CheckState {
    let by_percent = if used_percent >= t.crit_used_percent {
        CheckState::Crit
    } else if used_percent >= t.warn_used_percent {
        CheckState::Warn
    } else {
        CheckState::Ok
    };
    let below = |limit: Option<u64>| limit.is_some_and(|l| free_bytes < l);
    let by_free = if below(t.crit_free_bytes) {
        CheckState::Crit
    } else if below(t.warn_free_bytes) {
        CheckState::Warn
    } else {
        CheckState::Ok
    };
    by_percent.worst(by_free)
}

impl Check for DiskCheck {
    fn kind(&self) -> &'static str {
        "disk"
    }

    fn interval(&self) -> Duration {
        self.config.poll_interval()
    }

    fn needs(&self) -> Needs {
        Needs {
            disks: true,
            ..Needs::default()
        }
    }

    fn evaluate(&mut self, sample: &Sample) -> Vec<Evaluation> {
        let Some(disks) = &sample.disks else {
            return Vec::new();
        };
        let selected = self.selector.select(disks.clone());
        if self.config.trend_enabled {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let settings = self.config.trend();
            for d in selected.iter().filter(|d| d.total_bytes > 0) {
                self.history.record(
                    &d.mount_point,
                    now,
                    d.available_bytes,
                    d.total_bytes,
                    &settings,
                );
            }
            let mounts: Vec<String> = selected.iter().map(|d| d.mount_point.clone()).collect();
            self.history.retain(&mounts);
            self.persist_history();
        }
        let mut evaluations: Vec<Evaluation> =
            selected.iter().map(|d| self.evaluate_disk(d)).collect();
        for mount in self.selector.explicit() {
            if !selected.iter().any(|d| &d.mount_point == mount) {
                evaluations.push(Evaluation {
                    item: mount.clone(),
                    state: CheckState::Unknown,
                    message: format!("{mount} is not mounted"),
                    metrics: Vec::new(),
                });
            }
        }
        evaluations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn disk(mount: &str, fs: &str, total: u64, available: u64) -> DiskUsage {
        DiskUsage {
            mount_point: mount.into(),
            fs_type: fs.into(),
            device: format!("/dev/for{}", mount.replace('/', "-")),
            device_id: None,
            total_bytes: total,
            available_bytes: available,
        }
    }

    fn evaluate(config: &DiskConfig, disks: Vec<DiskUsage>) -> Vec<Evaluation> {
        DiskCheck::new(config).evaluate(&Sample {
            disks: Some(disks),
            ..Sample::default()
        })
    }

    #[test]
    fn percent_thresholds_and_message() {
        let e = evaluate(
            &DiskConfig::default(),
            vec![disk("/mnt/data", "ext4", 8 * MIB, 312 * 1024)],
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].state, CheckState::Crit);
        assert_eq!(
            e[0].message,
            "/mnt/data 96.2% used, 312 KiB free of 8.0 MiB"
        );
        assert_eq!(e[0].item, "/mnt/data");
        let names: Vec<_> = e[0].metrics.iter().map(|m| m.name.as_ref()).collect();
        assert_eq!(names, ["used_percent", "free_bytes", "total_bytes"]);
    }

    #[test]
    fn state_is_the_worse_of_percent_and_free_bytes() {
        let t = DiskThresholds {
            warn_used_percent: 85.0,
            crit_used_percent: 95.0,
            warn_free_bytes: Some(2000),
            crit_free_bytes: Some(500),
        };
        assert_eq!(disk_state(&t, 10.0, 10_000), CheckState::Ok);
        assert_eq!(disk_state(&t, 10.0, 1999), CheckState::Warn);
        assert_eq!(disk_state(&t, 10.0, 499), CheckState::Crit);
        assert_eq!(disk_state(&t, 96.0, 1999), CheckState::Crit);
        assert_eq!(disk_state(&t, 85.0, 10_000), CheckState::Warn);
    }

    #[test]
    fn overrides_apply_per_mount() {
        let mut config = DiskConfig::default();
        config.overrides.insert(
            "/var".into(),
            crate::config::DiskOverride {
                warn_used_percent: Some(90.0),
                ..Default::default()
            },
        );
        let e = evaluate(
            &config,
            vec![disk("/", "ext4", 100, 12), disk("/var", "ext4", 100, 12)],
        );
        let states: Vec<_> = e.iter().map(|e| (e.item.as_str(), e.state)).collect();
        assert_eq!(states, [("/", CheckState::Warn), ("/var", CheckState::Ok)]);
    }

    #[test]
    fn selection_skips_pseudo_filesystems_unless_listed() {
        let disks = vec![
            disk("/", "ext4", 100, 50),
            disk("/dev/shm", "tmpfs", 100, 100),
            disk("/boot", "vfat", 100, 50),
            disk("/empty", "ext4", 0, 0),
        ];
        let mut config = DiskConfig {
            exclude_mounts: vec!["/boot".into()],
            ..DiskConfig::default()
        };
        let picked: Vec<_> = DiskSelector::new(&config)
            .select(disks.clone())
            .into_iter()
            .map(|d| d.mount_point)
            .collect();
        assert_eq!(picked, ["/"]);

        config.mounts = vec!["/dev/shm".into(), "/gone".into()];
        let e = evaluate(&config, disks);
        let states: Vec<_> = e.iter().map(|e| (e.item.as_str(), e.state)).collect();
        assert_eq!(
            states,
            [("/dev/shm", CheckState::Ok), ("/gone", CheckState::Unknown)]
        );
    }

    #[test]
    fn bind_mounts_of_one_filesystem_count_once() {
        let bind = |mount: &str| DiskUsage {
            device: "/dev/sda1".into(),
            device_id: Some(7),
            ..disk(mount, "ext4", 100, 50)
        };
        let picked: Vec<_> = DiskSelector::new(&DiskConfig::default())
            .select(vec![
                bind("/var/lib/forewarn-agent"),
                bind("/"),
                bind("/tmp"),
                disk("/home", "ext4", 100, 50),
            ])
            .into_iter()
            .map(|d| d.mount_point)
            .collect();
        assert_eq!(picked, ["/", "/home"]);
    }
}
