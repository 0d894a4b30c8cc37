//! Runs the checks on their own timers and turns what they find into
//! observations for the session: a `StateChanges` the moment any (check,
//! item) changes state, a `Heartbeat` every interval. Host reads go through
//! `spawn_blocking`; checks that fall due together share one read.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tracing::info;

use crate::checks::{
    self, Check, CheckResult, CheckState, DiskSelector, Evaluation, Mode, Needs, Probe, Sample,
    StateTracker,
};
use crate::config::Config;
use crate::error::Result;
use crate::host::{Host, HostSnapshot};
use crate::report::{Observation, Payload};

/// The checks, their states and the host they read.
pub struct Scheduler {
    host: Arc<Mutex<Host>>,
    checks: Vec<Box<dyn Check>>,
    probes: Vec<Box<dyn Probe>>,
    tracker: StateTracker,
    selector: DiskSelector,
    cpu_sampled_by_check: bool,
    /// The config the checks were built from (for reload diffs).
    config: Config,
}

/// Running probe tasks, by kind.
type ProbeTasks = Vec<(&'static str, tokio::task::JoinHandle<()>)>;
type ProbeSender = mpsc::Sender<(&'static str, Vec<Evaluation>)>;

impl Scheduler {
    pub fn new(host: Host, config: &Config, mode: Mode) -> Self {
        let checks = checks::build(&config.checks, mode, Some(&config.state_dir));
        let probes = checks::build_probes(&config.checks, mode);
        let cpu_sampled_by_check = checks.iter().any(|c| c.needs().cpu);
        Self {
            host: Arc::new(Mutex::new(host)),
            checks,
            probes,
            tracker: StateTracker::new(),
            selector: DiskSelector::new(&config.checks.disk),
            cpu_sampled_by_check,
            config: config.clone(),
        }
    }

    /// Evaluates every check once and returns every result. `cpu_ready`:
    /// whether enough time has passed since the host was created for a CPU
    /// figure to mean anything.
    pub async fn evaluate_all(&mut self, cpu_ready: bool) -> Result<Vec<CheckResult>> {
        let all: Vec<usize> = (0..self.checks.len()).collect();
        self.evaluate(&all, cpu_ready).await?;
        // Probes run concurrently, each bounded by its own timeout.
        let mut runs = tokio::task::JoinSet::new();
        for mut probe in std::mem::take(&mut self.probes) {
            runs.spawn(async move {
                let evaluations = run_probe(probe.as_mut()).await;
                (probe, evaluations)
            });
        }
        let now = SystemTime::now();
        while let Some(joined) = runs.join_next().await {
            let (probe, evaluations) = joined?;
            self.tracker.apply_items(probe.kind(), evaluations, now);
            self.probes.push(probe);
        }
        Ok(self.tracker.current())
    }

    /// Evaluates the checks at `indices` on one fresh sample; returns the
    /// results whose state changed.
    async fn evaluate(&mut self, indices: &[usize], cpu_ready: bool) -> Result<Vec<CheckResult>> {
        let needs = indices
            .iter()
            .filter_map(|&i| self.checks.get(i))
            .fold(Needs::default(), |n, c| n.union(c.needs()));
        let host = Arc::clone(&self.host);
        let sample = tokio::task::spawn_blocking(move || {
            let mut host = host.lock().unwrap_or_else(PoisonError::into_inner);
            Sample {
                disks: needs.disks.then(|| host.sample_disks()),
                cpu_percent: (needs.cpu && cpu_ready)
                    .then(|| host.sample_cpu())
                    .flatten(),
                cpu_problem: host.cpu_problem(),
                memory: needs.memory.then(|| host.sample_memory()),
                load: needs.load.then(|| host.sample_load()),
                processes: needs.processes.then(|| host.sample_processes()),
            }
        })
        .await?;
        let now = SystemTime::now();
        let mut changed = Vec::new();
        for &i in indices {
            if let Some(check) = self.checks.get_mut(i) {
                let evaluations = check.evaluate(&sample);
                changed.extend(self.tracker.apply(check.kind(), evaluations, now));
            }
        }
        Ok(changed)
    }

    /// A heartbeat: fresh snapshot + every check's current result.
    async fn heartbeat(&mut self) -> Result<Payload> {
        let host = Arc::clone(&self.host);
        let selector = self.selector.clone();
        let refresh_cpu = !self.cpu_sampled_by_check;
        let snapshot: HostSnapshot = tokio::task::spawn_blocking(move || {
            let mut host = host.lock().unwrap_or_else(PoisonError::into_inner);
            let disks = selector.select(host.sample_disks());
            host.snapshot(refresh_cpu, disks)
        })
        .await?;
        Ok(Payload::Heartbeat {
            snapshot,
            checks: self.tracker.current(),
        })
    }

    /// Runs until `shutdown` fires or the session stops listening. Sends
    /// one heartbeat at once (every check's state included), then state
    /// changes as they happen and a heartbeat every `interval`.
    /// `reload` delivers validated new configs (SIGHUP / file change); they
    /// are applied as a diff: only check kinds whose settings changed are
    /// rebuilt, the others keep their windows, trends and state.
    /// `resync` asks for a heartbeat now (a session opened after a lost one).
    pub async fn run(
        mut self,
        observations: mpsc::Sender<Observation>,
        resync: Arc<Notify>,
        mut interval: watch::Receiver<Duration>,
        mut reload: watch::Receiver<Arc<Config>>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let start = Instant::now();
        // Probes get their own tasks; their results come back on a channel.
        let (probe_tx, mut probe_rx) = mpsc::channel::<(&'static str, Vec<Evaluation>)>(64);
        let mut probe_tasks: ProbeTasks = Vec::new();
        for probe in std::mem::take(&mut self.probes) {
            let kind = probe.kind();
            let task = tokio::spawn(probe_loop(probe, probe_tx.clone(), shutdown.clone()));
            probe_tasks.push((kind, task));
        }
        let mut reload_open = true;
        let all: Vec<usize> = (0..self.checks.len()).collect();
        self.evaluate(&all, false).await?;
        let mut due: Vec<Instant> = self.checks.iter().map(|c| start + c.interval()).collect();
        let mut heartbeat_due = start;
        loop {
            let now = Instant::now();
            if heartbeat_due <= now {
                let payload = self.heartbeat().await?;
                if !send(&observations, payload).await {
                    return Ok(());
                }
                heartbeat_due = next_due(heartbeat_due, *interval.borrow(), now);
            }
            let ready: Vec<usize> = (0..due.len()).filter(|&i| due[i] <= now).collect();
            if !ready.is_empty() {
                for &i in &ready {
                    due[i] = next_due(due[i], self.checks[i].interval(), now);
                }
                let changed = self.evaluate(&ready, true).await?;
                log_changes(&changed);
                if !changed.is_empty() && !send(&observations, Payload::StateChanges(changed)).await
                {
                    return Ok(());
                }
            }
            let next = due.iter().copied().fold(heartbeat_due, Instant::min);
            tokio::select! {
                _ = sleep_until(next) => {}
                Some((kind, evaluations)) = probe_rx.recv() => {
                    let changed = self.tracker.apply_items(kind, evaluations, SystemTime::now());
                    log_changes(&changed);
                    if !changed.is_empty()
                        && !send(&observations, Payload::StateChanges(changed)).await
                    {
                        return Ok(());
                    }
                }
                () = resync.notified() => heartbeat_due = Instant::now(),
                changed = interval.changed() => {
                    if changed.is_ok() {
                        // Apply a new heartbeat interval from now on.
                        heartbeat_due = Instant::now() + *interval.borrow_and_update();
                    }
                }
                changed = reload.changed(), if reload_open => {
                    match changed {
                        Ok(()) => {
                            let new = reload.borrow_and_update().clone();
                            self.apply_reload(&new, &mut due, &mut probe_tasks, &probe_tx, &shutdown);
                        }
                        Err(_) => reload_open = false,
                    }
                }
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }
}

impl Scheduler {
    /// Applies a new config as a diff against the running one.
    fn apply_reload(
        &mut self,
        new: &Config,
        due: &mut Vec<Instant>,
        probe_tasks: &mut ProbeTasks,
        probe_tx: &ProbeSender,
        shutdown: &watch::Receiver<bool>,
    ) {
        let (old, next) = (&self.config.checks, &new.checks);
        let sampled: Vec<&'static str> = [
            ("disk", old.disk != next.disk),
            ("cpu", old.cpu != next.cpu),
            ("memory", old.memory != next.memory),
            ("load", old.load != next.load),
        ]
        .into_iter()
        .filter_map(|(k, changed)| changed.then_some(k))
        .collect();
        let probes: Vec<&'static str> = [
            ("process", old.process != next.process),
            ("service", old.service != next.service),
            ("backup", old.backup != next.backup),
            ("log", old.log != next.log),
            ("plugin", old.plugin != next.plugin),
            ("tcp", old.tcp != next.tcp),
            ("http", old.http != next.http),
            ("certificate", old.certificate != next.certificate),
            (
                "reboot_required",
                old.reboot_required != next.reboot_required,
            ),
        ]
        .into_iter()
        .filter_map(|(k, changed)| changed.then_some(k))
        .collect();

        if !sampled.is_empty() {
            let fresh = checks::build(next, Mode::Continuous, Some(&self.config.state_dir));
            let mut previous = std::mem::take(&mut self.checks);
            for check in fresh {
                let kind = check.kind();
                let kept = (!sampled.contains(&kind))
                    .then(|| previous.iter().position(|c| c.kind() == kind))
                    .flatten()
                    .map(|i| previous.swap_remove(i));
                self.checks.push(kept.unwrap_or(check));
            }
            for kind in ["disk", "cpu", "memory", "load"] {
                if !self.checks.iter().any(|c| c.kind() == kind) {
                    self.tracker.retain_items(kind, &[]);
                }
            }
            // Changed kinds run at once with their new settings.
            let now = Instant::now();
            *due = self.checks.iter().map(|c| now + c.interval()).collect();
            for (i, c) in self.checks.iter().enumerate() {
                if sampled.contains(&c.kind()) {
                    due[i] = now;
                }
            }
            self.selector = DiskSelector::new(&next.disk);
            self.cpu_sampled_by_check = self.checks.iter().any(|c| c.needs().cpu);
        }
        if !probes.is_empty() {
            probe_tasks.retain(|(kind, task)| {
                let stop = probes.contains(kind);
                if stop {
                    task.abort();
                }
                !stop
            });
            let fresh: Vec<Box<dyn Probe>> = checks::build_probes(next, Mode::Continuous)
                .into_iter()
                .filter(|p| probes.contains(&p.kind()))
                .collect();
            for kind in &probes {
                let items: Vec<String> = fresh
                    .iter()
                    .filter(|p| p.kind() == *kind)
                    .map(|p| p.item())
                    .collect();
                self.tracker.retain_items(kind, &items);
            }
            for probe in fresh {
                let kind = probe.kind();
                let task = tokio::spawn(probe_loop(probe, probe_tx.clone(), shutdown.clone()));
                probe_tasks.push((kind, task));
            }
        }
        let mut changed: Vec<&str> = sampled.iter().chain(&probes).copied().collect();
        if self.config.interval_secs != new.interval_secs {
            changed.push("interval_secs");
        }
        info!(changed = ?changed, "config reloaded");
        self.config = new.clone();
    }
}

fn log_changes(changed: &[CheckResult]) {
    for r in changed {
        info!(
            check = %r.check,
            item = %r.item,
            state = %r.state,
            detail = %r.message,
            "check state changed"
        );
    }
}

/// One probe run, capped at its timeout (overrun = UNKNOWN).
async fn run_probe(probe: &mut dyn Probe) -> Vec<Evaluation> {
    let timeout = probe.timeout();
    let item = probe.item();
    match tokio::time::timeout(timeout, probe.run()).await {
        Ok(evaluations) => evaluations,
        Err(_) => vec![Evaluation {
            item,
            state: CheckState::Unknown,
            message: format!(
                "check did not finish within {}",
                checks::format_secs(timeout)
            ),
            metrics: Vec::new(),
        }],
    }
}

/// A probe's own task: run now, then every interval or when woken.
async fn probe_loop(
    mut probe: Box<dyn Probe>,
    results: mpsc::Sender<(&'static str, Vec<Evaluation>)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut wake = probe.wake();
    let interval = probe.interval();
    loop {
        let evaluations = run_probe(probe.as_mut()).await;
        if results.send((probe.kind(), evaluations)).await.is_err() {
            return;
        }
        let next = Instant::now() + interval;
        let woken = async {
            match wake.as_mut() {
                Some(rx) => rx.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep_until(next) => {}
            alive = woken => {
                if !alive {
                    wake = None;
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// The next due time after `previous`, skipping ticks missed while busy or
/// suspended rather than firing them in a burst.
fn next_due(previous: Instant, period: Duration, now: Instant) -> Instant {
    let next = previous + period;
    if next <= now { now + period } else { next }
}

/// Hands a payload to the session; false once the session is gone.
async fn send(observations: &mpsc::Sender<Observation>, payload: Payload) -> bool {
    observations
        .send(Observation {
            observed_at: SystemTime::now(),
            payload,
        })
        .await
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missed_ticks_are_skipped() {
        let t0 = Instant::now();
        let p = Duration::from_secs(1);
        assert_eq!(next_due(t0, p, t0), t0 + p);
        assert_eq!(
            next_due(t0, p, t0 + Duration::from_secs(5)),
            t0 + Duration::from_secs(6)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn first_heartbeat_carries_every_check() {
        let config = Config::default();
        let host = Host::new().expect("host");
        let scheduler = Scheduler::new(host, &config, Mode::Continuous);
        let (tx, mut rx) = mpsc::channel(4);
        let (_interval_tx, interval_rx) = watch::channel(Duration::from_secs(60));
        let (stop_tx, stop_rx) = watch::channel(false);
        let (_reload_tx, reload_rx) = watch::channel(Arc::new(Config::default()));
        let task = tokio::spawn(scheduler.run(
            tx,
            Arc::new(Notify::new()),
            interval_rx,
            reload_rx,
            stop_rx,
        ));
        let first = rx.recv().await.expect("heartbeat");
        let Payload::Heartbeat { checks, .. } = first.payload else {
            panic!("first observation is not a heartbeat");
        };
        let kinds: std::collections::BTreeSet<_> = checks.iter().map(|c| c.check).collect();
        assert!(
            kinds.contains("cpu") && kinds.contains("memory"),
            "{kinds:?}"
        );
        stop_tx.send(true).expect("stop");
        task.await.expect("join").expect("run");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_resync_sends_every_check_at_once() {
        let config = Config::default();
        let host = Host::new().expect("host");
        let scheduler = Scheduler::new(host, &config, Mode::Continuous);
        let (tx, mut rx) = mpsc::channel(16);
        let (_interval_tx, interval_rx) = watch::channel(Duration::from_secs(3600));
        let (stop_tx, stop_rx) = watch::channel(false);
        let (_reload_tx, reload_rx) = watch::channel(Arc::new(Config::default()));
        let resync = Arc::new(Notify::new());
        let task = tokio::spawn(scheduler.run(tx, resync.clone(), interval_rx, reload_rx, stop_rx));
        let heartbeats = |rx: &mut mpsc::Receiver<Observation>| {
            let mut n = 0;
            while let Ok(o) = rx.try_recv() {
                n += usize::from(matches!(o.payload, Payload::Heartbeat { .. }));
            }
            n
        };
        assert!(matches!(
            rx.recv().await.expect("first").payload,
            Payload::Heartbeat { .. }
        ));
        // An hour-long interval: without a resync no heartbeat comes for an
        // hour (one second is what a test can afford to watch).
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(heartbeats(&mut rx), 0);
        resync.notify_one();
        let o = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let o = rx.recv().await.expect("observation");
                if matches!(o.payload, Payload::Heartbeat { .. }) {
                    break o;
                }
            }
        })
        .await
        .expect("a heartbeat right after the resync");
        let Payload::Heartbeat { checks, .. } = o.payload else {
            unreachable!()
        };
        assert!(checks.iter().any(|c| c.check == "memory"), "{checks:?}");
        stop_tx.send(true).expect("stop");
        task.await.expect("join").expect("run");
    }
}
