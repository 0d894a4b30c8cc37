//! The three modes over one fleet of agent tasks: steady (warm up, measure),
//! ramp (grow N step by step, measure each, stop at the first miss) and
//! reconnect (wait for every session to drop and come back), with a
//! progress line every few seconds and the figures of each measured window.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep};

use crate::agent::{self, Shared};
use crate::enroll::AgentSpec;
use crate::procs::{Figures, RssMax, Sample, Watch};
use crate::stats::{Latency, Stats};

/// The fleet of agent tasks and what the progress lines need.
pub struct Runner {
    shared: Arc<Shared>,
    agents: Vec<AgentSpec>,
    started: usize,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    t0: Instant,
    progress: Duration,
    watch: Watch,
    rss_max: RssMax,
    last_acks: (Instant, u64),
    interrupted: Arc<AtomicBool>,
}

/// Figures of one measured window.
#[derive(Debug, Serialize)]
pub struct Step {
    pub agents: usize,
    /// Agents with a working session at the end of the window.
    pub connected: usize,
    /// Fewest agents with a working session during the window.
    pub connected_min: usize,
    pub duration_secs: f64,
    pub acks: u64,
    pub acks_per_sec: f64,
    pub latency: Latency,
    pub heartbeat_latency: Latency,
    pub change_latency: Latency,
    pub errors: BTreeMap<String, u64>,
    pub errors_total: u64,
    /// Errors while the step warmed up (connecting).
    pub warmup_errors: BTreeMap<String, u64>,
    /// Collector(s), `--watch-comm` processes and the loadgen itself.
    #[serde(flatten)]
    pub procs: Figures,
}

impl Step {
    /// Whether the step met the bar: p99 ≤ `p99_ms`, no error at all, and
    /// every agent connected throughout.
    pub fn held(&self, p99_ms: f64) -> bool {
        self.latency.p99_ms.is_some_and(|p| p <= p99_ms)
            && self.errors_total == 0
            && self.warmup_errors.is_empty()
            && self.connected_min == self.agents
    }

    pub fn print(&self, label: &str) {
        let opt = |v: Option<f64>, unit: &str| {
            v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}{unit}"))
        };
        println!(
            "--- {label}: {} agents, {:.0} s measured",
            self.agents, self.duration_secs
        );
        println!(
            "  connected      {} (min {})",
            self.connected, self.connected_min
        );
        println!(
            "  acks           {} ({:.1}/s)",
            self.acks, self.acks_per_sec
        );
        println!("  ack latency    {}", self.latency.line());
        println!("    heartbeats   {}", self.heartbeat_latency.line());
        println!("    changes      {}", self.change_latency.line());
        println!("  errors         {} {:?}", self.errors_total, self.errors);
        if !self.warmup_errors.is_empty() {
            println!("  warmup errors  {:?}", self.warmup_errors);
        }
        let p = &self.procs;
        println!(
            "  collector      cpu {} of one core, rss {} (max {})",
            opt(p.collector_cpu_percent, " %"),
            opt(p.collector_rss_mib, " MiB"),
            opt(p.collector_rss_max_mib, " MiB")
        );
        if p.collector_pids.len() > 1 {
            for c in &p.collector_pids {
                println!(
                    "    pid {:<10} cpu {} of one core, rss {} (max {})",
                    c.pid,
                    opt(c.cpu_percent, " %"),
                    opt(c.rss_mib, " MiB"),
                    opt(c.rss_max_mib, " MiB")
                );
            }
        }
        if let Some(n) = p.watch_processes {
            println!(
                "  watched        cpu {} of one core ({n} processes)",
                opt(p.watch_cpu_percent, " %")
            );
        }
        println!(
            "  loadgen        cpu {} of one core, rss {}",
            opt(p.loadgen_cpu_percent, " %"),
            opt(p.loadgen_rss_mib, " MiB")
        );
    }
}

/// A wait that can end early.
enum Waited {
    Done,
    TimedOut,
    Interrupted,
}

impl Runner {
    pub fn new(
        shared: Arc<Shared>,
        agents: Vec<AgentSpec>,
        progress: Duration,
        watch: Watch,
    ) -> Self {
        let interrupted = Arc::new(AtomicBool::new(false));
        let flag = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                println!("interrupted: finishing the current window");
                flag.store(true, Ordering::Relaxed);
            }
        });
        let now = Instant::now();
        Self {
            shared,
            agents,
            started: 0,
            stop: watch::channel(false).0,
            tasks: JoinSet::new(),
            t0: now,
            progress,
            watch,
            rss_max: RssMax::default(),
            last_acks: (now, 0),
            interrupted,
        }
    }

    fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// Starts agents until `n` run; the new ones' first connects are spread
    /// evenly over one interval.
    pub fn grow(&mut self, n: usize) {
        let n = n.min(self.agents.len());
        let count = n.saturating_sub(self.started);
        let now = Instant::now();
        for k in 0..count {
            let spec = self.agents[self.started + k].clone();
            let start = now + self.shared.interval.mul_f64(k as f64 / count as f64);
            let (shared, stop) = (self.shared.clone(), self.stop.subscribe());
            self.tasks.spawn(agent::run(spec, start, shared, stop));
        }
        self.started = n;
        self.stats().set_target(n);
    }

    /// Waits `limit`, printing progress, or less if `done` says so.
    async fn wait(
        &mut self,
        phase: &str,
        limit: Duration,
        done: impl Fn(&Stats) -> bool,
    ) -> Waited {
        let deadline = Instant::now() + limit;
        let mut next_progress = Instant::now() + self.progress;
        loop {
            if done(self.stats()) {
                return Waited::Done;
            }
            if self.interrupted() {
                return Waited::Interrupted;
            }
            let now = Instant::now();
            if now >= deadline {
                return Waited::TimedOut;
            }
            if now >= next_progress {
                self.progress_line(phase);
                next_progress += self.progress;
            }
            sleep(Duration::from_millis(50).min(deadline - now)).await;
        }
    }

    fn progress_line(&mut self, phase: &str) {
        let now = Instant::now();
        let acks = self.stats().total_acks();
        let (at, before) = self.last_acks;
        let rate = (acks - before) as f64 / now.duration_since(at).as_secs_f64().max(1e-3);
        self.last_acks = (now, acks);
        let (up, _) = self.stats().up();
        let (errors, p99) = self.stats().peek();
        let errors: u64 = errors.values().sum();
        let mut line = format!(
            "[{:>6.1}s] {phase:<9} N={} connected={up} acks/s={rate:.1} p99={} errors={errors}",
            now.duration_since(self.t0).as_secs_f64(),
            self.started,
            p99.map_or_else(|| "-".to_string(), |p| format!("{p:.2}ms")),
        );
        if !self.watch.pids.is_empty() {
            let rss = self.watch.rss();
            self.rss_max.see(&rss);
            if let Some(total) = self.watch.rss_total() {
                line.push_str(&format!(" collector_rss={total:.0}MiB"));
            }
        }
        println!("{line}");
    }

    /// Starts the window now: the CPU samples of the processes measured.
    fn begin(&mut self) -> (Instant, Sample) {
        let _ = self.stats().take_window();
        self.rss_max = RssMax::default();
        (Instant::now(), self.watch.sample())
    }

    /// Ends the window begun at `begun`: its figures.
    fn finish(&mut self, begun: (Instant, Sample), warmup_errors: BTreeMap<String, u64>) -> Step {
        let (at, sample) = begun;
        let (connected, connected_min) = self.stats().up();
        let w = self.stats().take_window();
        let secs = at.elapsed().as_secs_f64();
        let all: Vec<u32> = w.heartbeat_us.iter().chain(&w.change_us).copied().collect();
        Step {
            agents: self.started,
            connected,
            connected_min,
            duration_secs: secs,
            acks: w.acks,
            acks_per_sec: w.acks as f64 / secs.max(1e-3),
            latency: Latency::of(all),
            heartbeat_latency: Latency::of(w.heartbeat_us),
            change_latency: Latency::of(w.change_us),
            errors_total: w.errors.values().sum(),
            errors: w.errors,
            warmup_errors,
            procs: self.watch.figures(&sample, &self.rss_max),
        }
    }

    /// Runs `n` agents: warm-up, then a measured window of `duration`.
    pub async fn step(&mut self, n: usize, warmup: Duration, duration: Duration) -> Step {
        self.grow(n);
        let _ = self.stats().take_window();
        self.wait("warmup", warmup, |_| false).await;
        let warmup_errors = self.stats().take_window().errors;
        let begun = self.begin();
        self.wait("measuring", duration, |_| false).await;
        self.finish(begun, warmup_errors)
    }

    /// Reconnect mode: all `n` up, then the drop, then all up again.
    /// Returns the window over all of it and the seconds to reconnect.
    pub async fn reconnect(&mut self, n: usize, timeout: Duration) -> Result<(Step, f64)> {
        self.grow(n);
        let _ = self.stats().take_window();
        if !matches!(
            self.wait("connecting", timeout, |s| s.up().0 >= n).await,
            Waited::Done
        ) {
            bail!(
                "not every agent connected within {timeout:?} ({} of {n})",
                self.stats().up().0
            );
        }
        let warmup_errors = self.stats().take_window().errors;
        println!(
            "all {n} agents connected; waiting for their sessions to drop (restart the collector now)"
        );
        let begun = self.begin();
        let before = self.stats().reconnects().1.len();
        if !matches!(
            self.wait("waiting", timeout, |s| s.reconnects().0).await,
            Waited::Done
        ) {
            bail!("no session dropped within {timeout:?}");
        }
        println!("sessions dropping; waiting for all {n} to reconnect");
        let back = |s: &Stats| s.reconnects().1.len() > before;
        let waited = self.wait("reconnect", timeout, back).await;
        let step = self.finish(begun, warmup_errors);
        match (waited, self.stats().reconnects().1.get(before)) {
            (Waited::Done, Some(&secs)) => Ok((step, secs)),
            _ => {
                step.print("reconnect (incomplete)");
                bail!(
                    "only {} of {n} agents reconnected within {timeout:?}",
                    self.stats().up().0
                )
            }
        }
    }

    /// Every reconnect episode measured so far (seconds).
    pub fn reconnects(&self) -> Vec<f64> {
        self.stats().reconnects().1
    }

    /// Goodbye from every agent, bounded.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .is_err()
        {
            println!("some agents did not finish their goodbye within 10 s");
        }
    }
}
