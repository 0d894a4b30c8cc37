//! One agent's metric history shaped for a chart: aligned arrays (one
//! timestamp array, one value array per series, `null` where a value is
//! unknown), at most [`MAX_POINTS`] points, and each mount's time-to-full
//! projection from its latest sample, drawn as a line from that sample to
//! 100 % at the projected time.

use std::collections::BTreeMap;

use serde::Serialize;

use super::MountSample;
use crate::domain::{Millis, Scope, rfc3339};
use crate::store::MetricSample;
use crate::tickets::Service;
use crate::{Error, Result};

/// Points per series at most: a chart a few hundred pixels wide shows no
/// more, and a week of one-minute samples (10,080) would be a heavy page.
pub const MAX_POINTS: usize = 500;

/// The charts' data for one agent over `[from, to)`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MetricSeries {
    pub agent_id: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub from: Millis,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub to: Millis,
    /// Width of the buckets the samples were averaged in; `None` when the
    /// range holds few enough samples to be returned as they are.
    pub bucket_secs: Option<i64>,
    /// Point times, Unix seconds (what uPlot takes): a bucket's start when
    /// bucketed, else the sample's time.
    pub at_unix_secs: Vec<i64>,
    pub cpu_percent: Vec<f64>,
    /// `None` where the total is unknown (0).
    pub memory_percent: Vec<Option<f64>>,
    /// `None` where the host has no swap.
    pub swap_percent: Vec<Option<f64>>,
    pub load1: Vec<f64>,
    pub load5: Vec<f64>,
    pub load15: Vec<f64>,
    /// One per mount seen in the range, by mount point.
    pub disks: Vec<MountSeries>,
}

/// One mount's used share over the range.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MountSeries {
    pub mount: String,
    /// Aligned with `at_unix_secs`; `None` where the mount was absent.
    pub used_percent: Vec<Option<f64>>,
    /// Size at its latest sample.
    pub total_bytes: i64,
    /// From the latest sample of this mount, when its disk check projects
    /// a time-to-full.
    pub projection: Option<Projection>,
}

/// A straight line from the latest sample to 100 % at the projected time.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Projection {
    pub from_unix_secs: i64,
    pub from_used_percent: f64,
    pub full_unix_secs: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub full_at: Millis,
}

// === impl Service ===

impl Service {
    /// The charts' data for `agent_id` over `[from, to)`; `NotFound` if
    /// there is no such agent in `scope` (another tenant's is not found).
    pub async fn agent_metrics(
        &self,
        scope: &Scope,
        agent_id: &str,
        from: Millis,
        to: Millis,
    ) -> Result<MetricSeries> {
        if from >= to {
            return Err(Error::InvalidArgument(format!(
                "from ({}) must be before to ({})",
                rfc3339::format(from),
                rfc3339::format(to)
            )));
        }
        let samples = self
            .store()
            .agent_metrics(scope, agent_id, from, to)
            .await?
            .ok_or_else(|| Error::NotFound(format!("agent {agent_id}")))?;
        shape(agent_id, from, to, &samples, MAX_POINTS)
    }
}

/// Shapes `samples` (oldest first, all in `[from, to)`) into at most
/// `max_points` points: as they are when few enough, else averaged in
/// equal buckets from `from`.
pub fn shape(
    agent_id: &str,
    from: Millis,
    to: Millis,
    samples: &[MetricSample],
    max_points: usize,
) -> Result<MetricSeries> {
    let points: Vec<Point> = samples.iter().map(Point::of).collect::<Result<_>>()?;
    let (bucket_ms, points) = if points.len() <= max_points {
        (None, points)
    } else {
        let bucket = bucket_ms(from, to, max_points);
        (Some(bucket), bucketed(&points, from, bucket))
    };
    let mut mounts: BTreeMap<&str, MountSeries> = BTreeMap::new();
    for p in &points {
        for d in &p.disks {
            mounts.entry(&d.mount).or_insert_with(|| MountSeries {
                mount: d.mount.clone(),
                used_percent: Vec::with_capacity(points.len()),
                total_bytes: 0,
                projection: None,
            });
        }
    }
    for (mount, series) in &mut mounts {
        series.used_percent = points
            .iter()
            .map(|p| p.disks.iter().find(|d| d.mount == *mount).map(|d| d.used))
            .collect();
    }
    // Projections and sizes from the raw latest sample of each mount.
    for s in samples.iter().rev() {
        for d in serde_json::from_str::<Vec<MountSample>>(&s.disks).unwrap_or_default() {
            let Some(series) = mounts.get_mut(d.mount.as_str()) else {
                continue;
            };
            if series.total_bytes == 0 && d.total_bytes > 0 {
                series.total_bytes = d.total_bytes;
                series.projection = d.full_at.and_then(|full_at| {
                    (full_at > s.at).then(|| Projection {
                        from_unix_secs: s.at.div_euclid(1000),
                        from_used_percent: percent(d.used_bytes, d.total_bytes).unwrap_or(0.0),
                        full_unix_secs: full_at.div_euclid(1000),
                        full_at,
                    })
                });
            }
        }
    }
    Ok(MetricSeries {
        agent_id: agent_id.to_string(),
        from,
        to,
        bucket_secs: bucket_ms.map(|b| b / 1000),
        at_unix_secs: points.iter().map(|p| p.at.div_euclid(1000)).collect(),
        cpu_percent: points.iter().map(|p| p.cpu).collect(),
        memory_percent: points.iter().map(|p| p.memory).collect(),
        swap_percent: points.iter().map(|p| p.swap).collect(),
        load1: points.iter().map(|p| p.load[0]).collect(),
        load5: points.iter().map(|p| p.load[1]).collect(),
        load15: points.iter().map(|p| p.load[2]).collect(),
        disks: mounts.into_values().collect(),
    })
}

/// Whole seconds per bucket, so that `[from, to)` makes at most `max_points`.
fn bucket_ms(from: Millis, to: Millis, max_points: usize) -> Millis {
    let n = i64::try_from(max_points.max(1)).unwrap_or(i64::MAX);
    let span = (to - from).max(1);
    let ms = (span + n - 1) / n;
    (ms + 999) / 1000 * 1000
}

/// One chart point: a sample, or the mean of a bucket's samples.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    at: Millis,
    cpu: f64,
    memory: Option<f64>,
    swap: Option<f64>,
    load: [f64; 3],
    disks: Vec<MountPoint>,
}

#[derive(Debug, Clone, PartialEq)]
struct MountPoint {
    mount: String,
    used: f64,
}

impl Point {
    #[allow(clippy::cast_precision_loss)]
    fn of(s: &MetricSample) -> Result<Self> {
        let disks: Vec<MountSample> = serde_json::from_str(&s.disks).map_err(|e| {
            Error::Corrupt(format!(
                "metric_samples.disks of agent {} at {}: {e}",
                s.agent_id, s.at
            ))
        })?;
        Ok(Self {
            at: s.at,
            cpu: s.cpu_centipercent as f64 / 100.0,
            memory: percent(s.memory_used_bytes, s.memory_total_bytes),
            swap: s
                .swap_used_bytes
                .zip(s.swap_total_bytes)
                .and_then(|(used, total)| percent(used, total)),
            load: [s.load1_milli, s.load5_milli, s.load15_milli].map(|l| l as f64 / 1000.0),
            disks: disks
                .into_iter()
                .filter_map(|d| {
                    Some(MountPoint {
                        used: percent(d.used_bytes, d.total_bytes)?,
                        mount: d.mount,
                    })
                })
                .collect(),
        })
    }
}

/// Points averaged per bucket of `bucket` ms from `from` (empty buckets
/// make no point); each value averaged over the samples that have it.
fn bucketed(points: &[Point], from: Millis, bucket: Millis) -> Vec<Point> {
    let mut out = Vec::new();
    let mut rest = points;
    while let Some(first) = rest.first() {
        let index = (first.at - from).div_euclid(bucket);
        let end = rest
            .iter()
            .position(|p| (p.at - from).div_euclid(bucket) != index)
            .unwrap_or(rest.len());
        let (group, tail) = rest.split_at(end);
        out.push(mean(group, from + index * bucket));
        rest = tail;
    }
    out
}

#[allow(clippy::cast_precision_loss)]
fn mean(group: &[Point], at: Millis) -> Point {
    let avg = |values: Vec<f64>| {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let mut mounts: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for p in group {
        for d in &p.disks {
            mounts.entry(&d.mount).or_default().push(d.used);
        }
    }
    let load = |i: usize| avg(group.iter().map(|p| p.load[i]).collect()).unwrap_or(0.0);
    Point {
        at,
        cpu: avg(group.iter().map(|p| p.cpu).collect()).unwrap_or(0.0),
        memory: avg(group.iter().filter_map(|p| p.memory).collect()),
        swap: avg(group.iter().filter_map(|p| p.swap).collect()),
        load: [load(0), load(1), load(2)],
        disks: mounts
            .into_iter()
            .filter_map(|(mount, used)| {
                Some(MountPoint {
                    mount: mount.to_string(),
                    used: avg(used)?,
                })
            })
            .collect(),
    }
}

/// `used / total` in percent; `None` when the total is unknown.
#[allow(clippy::cast_precision_loss)]
fn percent(used: i64, total: i64) -> Option<f64> {
    (total > 0).then(|| used as f64 * 100.0 / total as f64)
}

#[cfg(test)]
#[path = "series_tests.rs"]
mod tests;
