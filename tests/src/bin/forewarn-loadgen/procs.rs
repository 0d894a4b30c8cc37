//! CPU and RSS of processes from /proc: this process, the collector(s) of
//! `--collector-pid` (summed, and each apart) and every process whose name
//! is `--watch-comm` (e.g. `postgres`: its server and one backend per
//! connection), optionally only `--watch-parent` and its children.
//!
//! CPU is utime + stime from /proc/PID/stat between two samples, as % of
//! one core. For `--watch-comm` the set of processes changes while it runs:
//! only the processes present at both samples (same pid, same start time)
//! count, so the CPU of one that started or ended in between is missed.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

/// Clock ticks per second of /proc/PID/stat times: USER_HZ, which Linux
/// fixes at 100 for userspace on every common architecture.
const TICKS_PER_SEC: f64 = 100.0;

/// A process's CPU time and the moment it was read.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    ticks: u64,
}

/// What /proc/PID/stat says that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    comm: String,
    ppid: u32,
    /// utime + stime.
    ticks: u64,
    /// Start time after boot (ticks): tells a reused pid apart.
    start: u64,
}

/// Parses the text of /proc/PID/stat.
fn parse_stat(text: &str) -> Option<Stat> {
    // The command name may hold spaces and parentheses: it runs from the
    // first '(' to the last ')'; then field 3 (state) is the first, utime
    // is 14, stime 15 and starttime 22.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let ppid: u32 = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let start: u64 = fields.get(19)?.parse().ok()?;
    Some(Stat {
        comm,
        ppid,
        ticks: utime + stime,
        start,
    })
}

fn read_stat(pid: &str) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime of `pid` ("self" for this process).
pub fn cpu_sample(pid: &str) -> Option<CpuSample> {
    read_stat(pid).map(|s| CpuSample {
        at: Instant::now(),
        ticks: s.ticks,
    })
}

/// CPU used between two samples, as % of one core.
pub fn cpu_percent(from: Option<CpuSample>, to: Option<CpuSample>) -> Option<f64> {
    let (a, b) = (from?, to?);
    let wall = b.at.duration_since(a.at).as_secs_f64();
    (wall > 0.0 && b.ticks >= a.ticks)
        .then(|| (b.ticks - a.ticks) as f64 / TICKS_PER_SEC / wall * 100.0)
}

/// VmRSS of `pid` in MiB.
pub fn rss_mib(pid: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Every process named `comm` now (if `parent` is given: only that
/// process and its children): pid → (start time, ticks).
fn by_comm(comm: &str, parent: Option<u32>) -> BTreeMap<u32, (u64, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeMap::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let s = read_stat(&pid.to_string())?;
            let family = parent.is_none_or(|p| pid == p || s.ppid == p);
            (s.comm == comm && family).then_some((pid, (s.start, s.ticks)))
        })
        .collect()
}

/// Ticks used between two [`by_comm`] samples by the processes in both
/// (same pid and start time), and how many those were.
fn common_ticks(from: &BTreeMap<u32, (u64, u64)>, to: &BTreeMap<u32, (u64, u64)>) -> (u64, usize) {
    let mut ticks = 0;
    let mut n = 0;
    for (pid, &(start, before)) in from {
        if let Some(&(start2, after)) = to.get(pid)
            && start2 == start
        {
            ticks += after.saturating_sub(before);
            n += 1;
        }
    }
    (ticks, n)
}

/// The processes a run measures besides itself.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    pub pids: Vec<u32>,
    pub comm: Option<String>,
    /// With `comm`: only this process and its children.
    pub parent: Option<u32>,
}

/// A sample of everything in a [`Watch`].
#[derive(Debug, Clone)]
pub struct Sample {
    at: Instant,
    pids: Vec<Option<CpuSample>>,
    comm: BTreeMap<u32, (u64, u64)>,
    own: Option<CpuSample>,
}

/// One collector process's figures over a window.
#[derive(Debug, Clone, Serialize)]
pub struct PidFigures {
    pub pid: u32,
    pub cpu_percent: Option<f64>,
    pub rss_mib: Option<f64>,
    pub rss_max_mib: Option<f64>,
}

/// The figures of a window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// Sum over `--collector-pid` (null unless every one was measured).
    pub collector_cpu_percent: Option<f64>,
    pub collector_rss_mib: Option<f64>,
    pub collector_rss_max_mib: Option<f64>,
    /// Each `--collector-pid` apart.
    pub collector_pids: Vec<PidFigures>,
    /// Processes named `--watch-comm` present at the start and the end of
    /// the window: their CPU summed, and how many.
    pub watch_cpu_percent: Option<f64>,
    pub watch_processes: Option<usize>,
    pub loadgen_cpu_percent: Option<f64>,
    pub loadgen_rss_mib: Option<f64>,
}

/// `Some(sum)` if every value is there (and there is one at least).
fn sum_all(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    let mut total = None;
    for v in values {
        total = Some(total.unwrap_or(0.0) + v?);
    }
    total
}

impl Watch {
    pub fn sample(&self) -> Sample {
        Sample {
            at: Instant::now(),
            pids: self
                .pids
                .iter()
                .map(|p| cpu_sample(&p.to_string()))
                .collect(),
            comm: self
                .comm
                .as_deref()
                .map(|c| by_comm(c, self.parent))
                .unwrap_or_default(),
            own: cpu_sample("self"),
        }
    }

    /// RSS of each collector process now.
    pub fn rss(&self) -> Vec<Option<f64>> {
        self.pids.iter().map(|p| rss_mib(&p.to_string())).collect()
    }

    /// Summed collector RSS now (`None` without pids or if one is gone).
    pub fn rss_total(&self) -> Option<f64> {
        sum_all(self.rss())
    }

    /// Figures between `from` and now; `rss_max` holds the per-pid and
    /// summed maxima seen by progress lines during the window.
    pub fn figures(&self, from: &Sample, rss_max: &RssMax) -> Figures {
        let to = self.sample();
        let rss = self.rss();
        let cpu: Vec<Option<f64>> = from
            .pids
            .iter()
            .zip(&to.pids)
            .map(|(a, b)| cpu_percent(*a, *b))
            .collect();
        let max_of = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let collector_pids = self
            .pids
            .iter()
            .enumerate()
            .map(|(i, &pid)| PidFigures {
                pid,
                cpu_percent: cpu[i],
                rss_mib: rss[i],
                rss_max_mib: max_of(rss_max.each.get(i).copied().flatten(), rss[i]),
            })
            .collect();
        let rss_total = sum_all(rss.iter().copied());
        let wall = to.at.duration_since(from.at).as_secs_f64();
        let (watch_cpu_percent, watch_processes) = match &self.comm {
            Some(_) if wall > 0.0 => {
                let (ticks, n) = common_ticks(&from.comm, &to.comm);
                (Some(ticks as f64 / TICKS_PER_SEC / wall * 100.0), Some(n))
            }
            _ => (None, None),
        };
        Figures {
            collector_cpu_percent: sum_all(cpu.iter().copied()),
            collector_rss_mib: rss_total,
            collector_rss_max_mib: max_of(rss_max.total, rss_total),
            collector_pids,
            watch_cpu_percent,
            watch_processes,
            loadgen_cpu_percent: cpu_percent(from.own, to.own),
            loadgen_rss_mib: rss_mib("self"),
        }
    }
}

/// Largest collector RSS seen in a window: summed, and per pid.
#[derive(Debug, Clone, Default)]
pub struct RssMax {
    pub total: Option<f64>,
    pub each: Vec<Option<f64>>,
}

impl RssMax {
    /// Takes in one reading of [`Watch::rss`].
    pub fn see(&mut self, rss: &[Option<f64>]) {
        if let Some(t) = sum_all(rss.iter().copied()) {
            self.total = Some(self.total.map_or(t, |m| m.max(t)));
        }
        self.each.resize(rss.len(), None);
        for (m, r) in self.each.iter_mut().zip(rss) {
            if let Some(r) = *r {
                *m = Some(m.map_or(r, |m| m.max(r)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_an_awkward_name() {
        let text = "4242 (post gres) (x)) S 1 4242 4242 0 -1 4194560 1 0 0 0 \
                    70 30 0 0 20 0 1 0 5555 0 0";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                comm: "post gres) (x)".into(),
                ppid: 1,
                ticks: 100,
                start: 5555
            })
        );
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn only_processes_in_both_samples_count() {
        let from = BTreeMap::from([(1, (10, 100)), (2, (20, 50)), (3, (30, 5))]);
        // 1 used 40 ticks; 2 ended; 3 is a reused pid (new start time);
        // 4 is new.
        let to = BTreeMap::from([(1, (10, 140)), (3, (99, 1)), (4, (40, 500))]);
        assert_eq!(common_ticks(&from, &to), (40, 1));
    }

    #[test]
    fn sums_need_every_value() {
        assert_eq!(sum_all([Some(1.0), Some(2.5)]), Some(3.5));
        assert_eq!(sum_all([Some(1.0), None]), None);
        assert_eq!(sum_all([]), None);
        let mut m = RssMax::default();
        m.see(&[Some(10.0), Some(5.0)]);
        m.see(&[Some(8.0), None]);
        assert_eq!(m.total, Some(15.0));
        assert_eq!(m.each, [Some(10.0), Some(5.0)]);
    }

    #[test]
    fn reads_this_process_and_finds_it_by_name() {
        assert!(cpu_sample("self").is_some());
        assert!(rss_mib("self").is_some_and(|m| m > 0.0));
        let me = read_stat("self").expect("own stat");
        let found = by_comm(&me.comm, None);
        assert!(found.contains_key(&std::process::id()), "{found:?}");
        let mine = by_comm(&me.comm, Some(std::process::id()));
        assert!(mine.contains_key(&std::process::id()), "{mine:?}");
        assert!(by_comm(&me.comm, Some(me.ppid)).contains_key(&std::process::id()));
        assert!(by_comm(&me.comm, Some(u32::MAX)).is_empty());
        let w = Watch {
            pids: vec![std::process::id()],
            comm: Some(me.comm),
            parent: None,
        };
        let f = w.figures(&w.sample(), &RssMax::default());
        assert!(f.collector_rss_mib.is_some_and(|m| m > 0.0));
        assert_eq!(f.collector_pids.len(), 1);
        assert!(f.watch_processes >= Some(1));
    }
}
