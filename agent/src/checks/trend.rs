//! Time-to-full for filesystems: a least-squares line through the recent
//! history of free space, kept per mount point and persisted in the state
//! dir so an agent restart does not forget the trend.
//!
//! The history is downsampled to one point per `trend_sample_secs` and
//! bounded by `trend_window_hours`. A forecast needs history spanning at
//! least `trend_min_span_secs`, and only counts when the disk is at least
//! `trend_min_used_percent` full — so an almost empty disk taking one big
//! write does not cry wolf. A jump in free space (a cleanup, a resize)
//! starts the history afresh.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::CheckState;

/// Trend settings from `[checks.disk]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendSettings {
    pub window: Duration,
    pub sample_every: Duration,
    pub min_span: Duration,
    pub warn_within: Duration,
    pub crit_within: Duration,
    pub min_used_percent: f64,
}

/// Where a filling disk is heading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// Bytes per second being consumed (> 0).
    pub fill_rate: f64,
    /// From now until available space reaches zero at that rate.
    pub time_to_full: Duration,
}

/// Free-space history per mount point: `(unix seconds, available bytes)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    mounts: BTreeMap<String, VecDeque<(u64, u64)>>,
}

/// Free space growing by more than this share of the filesystem between two
/// points resets the trend.
const RESET_GROWTH_PERCENT: f64 = 2.0;

impl History {
    /// Reads a persisted history; a missing or unreadable file is an empty one.
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the history atomically (temp file + rename), mode 0600.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let data = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        {
            use std::io::Write;
            let mut f = options.open(&tmp)?;
            f.write_all(&data)?;
        }
        std::fs::rename(&tmp, path)
    }

    /// Adds a point for `mount` unless the previous one is more recent than
    /// `sample_every`; drops points older than the window.
    pub fn record(&mut self, mount: &str, now: u64, available: u64, total: u64, s: &TrendSettings) {
        let points = self.mounts.entry(mount.to_owned()).or_default();
        if let Some(&(_, last)) = points.back() {
            #[allow(clippy::cast_precision_loss)]
            let growth = available.saturating_sub(last) as f64 * 100.0 / total.max(1) as f64;
            if growth > RESET_GROWTH_PERCENT {
                points.clear();
            }
        }
        let due = points
            .back()
            .is_none_or(|&(t, _)| now.saturating_sub(t) >= s.sample_every.as_secs().max(1));
        if due {
            points.push_back((now, available));
        }
        let oldest = now.saturating_sub(s.window.as_secs());
        while points.front().is_some_and(|&(t, _)| t < oldest) {
            points.pop_front();
        }
    }

    /// Keeps only the given mount points.
    pub fn retain(&mut self, mounts: &[String]) {
        self.mounts.retain(|m, _| mounts.contains(m));
    }

    /// The forecast for `mount` given its current free space, if it is filling.
    pub fn forecast(&self, mount: &str, available: u64, s: &TrendSettings) -> Option<Forecast> {
        let points = self.mounts.get(mount)?;
        let (first, last) = (points.front()?.0, points.back()?.0);
        if points.len() < 3 || last - first < s.min_span.as_secs() {
            return None;
        }
        let slope = least_squares_slope(points.iter().copied())?;
        if slope >= 0.0 {
            return None;
        }
        let fill_rate = -slope;
        #[allow(clippy::cast_precision_loss)]
        let secs = available as f64 / fill_rate;
        Some(Forecast {
            fill_rate,
            time_to_full: Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX),
        })
    }
}

/// Slope (bytes per second) of the least-squares line through the points.
fn least_squares_slope(points: impl Iterator<Item = (u64, u64)> + Clone) -> Option<f64> {
    let n = points.clone().count();
    if n < 2 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let (nf, t0) = (n as f64, points.clone().next()?.0);
    #[allow(clippy::cast_precision_loss)]
    let xy = || {
        points
            .clone()
            .map(move |(t, a)| ((t - t0) as f64, a as f64))
    };
    let mean_x = xy().map(|(x, _)| x).sum::<f64>() / nf;
    let mean_y = xy().map(|(_, y)| y).sum::<f64>() / nf;
    let sxx: f64 = xy().map(|(x, _)| (x - mean_x).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = xy().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    Some(sxy / sxx)
}

/// The trend's verdict: CRIT when full within `crit_within`, WARN within
/// `warn_within`, else OK — and always OK below the minimum used share.
pub fn trend_state(
    forecast: Option<&Forecast>,
    used_percent: f64,
    s: &TrendSettings,
) -> CheckState {
    match forecast {
        Some(f) if used_percent >= s.min_used_percent => {
            if f.time_to_full <= s.crit_within {
                CheckState::Crit
            } else if f.time_to_full <= s.warn_within {
                CheckState::Warn
            } else {
                CheckState::Ok
            }
        }
        _ => CheckState::Ok,
    }
}

/// `2 h 30 min`, `45 min`, `3 d 4 h`, `40 s`.
pub fn format_eta(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => {
            let m = (s % 3600) / 60;
            if m == 0 {
                format!("{} h", s / 3600)
            } else {
                format!("{} h {m} min", s / 3600)
            }
        }
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn settings() -> TrendSettings {
        TrendSettings {
            window: Duration::from_secs(6 * 3600),
            sample_every: Duration::from_secs(60),
            min_span: Duration::from_secs(600),
            warn_within: Duration::from_secs(24 * 3600),
            crit_within: Duration::from_secs(4 * 3600),
            min_used_percent: 40.0,
        }
    }

    #[test]
    fn steady_fill_predicts_time_to_full() {
        let s = settings();
        let mut h = History::default();
        // 1 MiB per minute consumed, 1000 MiB free at the start.
        for minute in 0..=20u64 {
            h.record("/data", minute * 60, (1000 - minute) * MIB, 2000 * MIB, &s);
        }
        let f = h.forecast("/data", 980 * MIB, &s).expect("filling");
        assert!((f.fill_rate - MIB as f64 / 60.0).abs() < 1.0, "{f:?}");
        assert_eq!(f.time_to_full.as_secs() / 60, 980);
        assert_eq!(trend_state(Some(&f), 51.0, &s), CheckState::Warn);
        assert_eq!(
            trend_state(Some(&f), 10.0, &s),
            CheckState::Ok,
            "min used share"
        );
    }

    #[test]
    fn too_short_or_flat_or_draining_history_predicts_nothing() {
        let s = settings();
        let mut h = History::default();
        for minute in 0..5u64 {
            h.record("/a", minute * 60, (1000 - minute) * MIB, 2000 * MIB, &s);
            h.record("/flat", minute * 600, 1000 * MIB, 2000 * MIB, &s);
            h.record(
                "/drain",
                minute * 600,
                (1000 + minute) * MIB / 2 * 2,
                4000 * MIB,
                &s,
            );
        }
        assert!(
            h.forecast("/a", 996 * MIB, &s).is_none(),
            "span below 10 min"
        );
        assert!(h.forecast("/flat", 1000 * MIB, &s).is_none());
        assert!(h.forecast("/drain", 1004 * MIB, &s).is_none());
    }

    #[test]
    fn points_are_downsampled_and_bounded_by_the_window() {
        let s = settings();
        let mut h = History::default();
        for sec in 0..(7 * 3600u64) {
            h.record("/", sec, 10 * MIB, 20 * MIB, &s);
        }
        let n = h.mounts["/"].len();
        assert!((359..=361).contains(&n), "{n} points");
    }

    #[test]
    fn a_cleanup_resets_the_trend() {
        let s = settings();
        let mut h = History::default();
        for minute in 0..=20u64 {
            h.record("/", minute * 60, (1000 - minute) * MIB, 2000 * MIB, &s);
        }
        h.record("/", 21 * 60, 1500 * MIB, 2000 * MIB, &s);
        assert!(h.forecast("/", 1500 * MIB, &s).is_none());
    }

    #[test]
    fn history_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("disk-trend.json");
        let s = settings();
        let mut h = History::default();
        h.record("/", 0, 10, 20, &s);
        h.save(&path).expect("save");
        assert_eq!(History::load(&path), h);
        assert_eq!(
            History::load(&dir.path().join("missing")),
            History::default()
        );
    }

    #[test]
    fn eta_for_people() {
        assert_eq!(format_eta(Duration::from_secs(40)), "40 s");
        assert_eq!(format_eta(Duration::from_secs(9000)), "2 h 30 min");
        assert_eq!(format_eta(Duration::from_secs(7200)), "2 h");
        assert_eq!(
            format_eta(Duration::from_secs(3 * 86_400 + 4 * 3600)),
            "3 d 4 h"
        );
    }
}
