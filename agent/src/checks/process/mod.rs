//! The `process` check (`[[checks.process]]`): how many processes match a
//! name or a command-line pattern, against a minimum and an optional
//! maximum. The item is the configured name or pattern, as written, so it
//! stays stable across restarts of the watched program.
//!
//! The process list comes from sysinfo with a minimal refresh (no CPU,
//! memory, environment or per-thread data; command lines only when a
//! pattern needs them, and read once per process). One [`ProcessTable`] is
//! shared by every process probe, so probes that fall due together walk
//! `/proc` once.
//!
//! Every process a probe counted is then followed by a pidfd on Linux
//! ([`exits`]): its exit wakes the probe at once. A new matching process is
//! found by the next periodic count (`interval_secs`).

mod exits;

use std::ffi::{OsStr, OsString};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sysinfo::{ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind};

use super::{BoxFuture, CheckState, Evaluation, Metric, Probe};
use crate::config::ProcessConfig;

/// One probe per `[[checks.process]]` entry, all sharing one process table.
pub fn probes(list: &[ProcessConfig]) -> Vec<Box<dyn Probe>> {
    // Entries without a name or pattern do not pass validation.
    let entries: Vec<(&ProcessConfig, Matcher)> = list
        .iter()
        .filter_map(|c| Some((c, Matcher::from_config(c)?)))
        .collect();
    if entries.is_empty() {
        return Vec::new();
    }
    let table = ProcessTable::new(entries.iter().any(|(_, m)| m.needs_cmdline()));
    entries
        .into_iter()
        .map(|(c, matcher)| -> Box<dyn Probe> {
            Box::new(ProcessProbe {
                item: c.item().to_owned(),
                matcher: Arc::new(matcher),
                min_count: c.min_count,
                max_count: c.max_count,
                interval: Duration::from_secs(c.interval_secs),
                table: table.clone(),
                exits: None,
            })
        })
        .collect()
}

// === impl Matcher ===

/// Linux keeps only this many bytes of a process name (`TASK_COMM_LEN - 1`).
const COMM_LEN: usize = 15;

/// What a process must look like to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    Name(String),
    Cmdline(String),
}

impl Matcher {
    fn from_config(c: &ProcessConfig) -> Option<Self> {
        match (&c.name, &c.cmdline) {
            (Some(name), _) => Some(Self::Name(name.clone())),
            (None, Some(pattern)) => Some(Self::Cmdline(pattern.clone())),
            (None, None) => None,
        }
    }

    /// Whether the process table must hold command lines for this matcher:
    /// patterns do, and so do names longer than Linux keeps (the kernel's
    /// name is then only a prefix, and `argv[0]` decides).
    fn needs_cmdline(&self) -> bool {
        match self {
            Self::Cmdline(_) => true,
            Self::Name(name) => cfg!(target_os = "linux") && name.len() > COMM_LEN,
        }
    }

    /// Whether a process with this name and argument vector matches.
    pub fn matches(&self, name: &OsStr, cmd: &[OsString]) -> bool {
        match self {
            Self::Name(wanted) => name_matches(name, cmd.first().map(OsString::as_os_str), wanted),
            Self::Cmdline(pattern) => !cmd.is_empty() && joined(cmd).contains(pattern.as_str()),
        }
    }
}

/// The command line as `ps -o args` shows it.
fn joined(cmd: &[OsString]) -> String {
    let parts: Vec<_> = cmd.iter().map(|a| a.to_string_lossy()).collect();
    parts.join(" ")
}

fn name_matches(name: &OsStr, argv0: Option<&OsStr>, wanted: &str) -> bool {
    let name = name.to_string_lossy();
    if cfg!(windows) {
        // Windows names carry `.exe` and are case-insensitive.
        let name = name.to_lowercase();
        let wanted = wanted.to_lowercase();
        return name == wanted || name.strip_suffix(".exe") == Some(wanted.as_str());
    }
    if name == wanted {
        return true;
    }
    // Linux truncates names to 15 bytes: `comm` is then a prefix and the
    // base name of argv[0] must be the full name (what `pgrep` cannot do).
    let truncated =
        wanted.len() > COMM_LEN && wanted.as_bytes().get(..COMM_LEN) == Some(name.as_bytes());
    truncated
        && argv0.is_some_and(|a| {
            std::path::Path::new(a)
                .file_name()
                .is_some_and(|base| base == OsStr::new(wanted))
        })
}

// === impl ProcessTable ===

/// A refresh this recent is reused rather than repeated.
const REUSE_WITHIN: Duration = Duration::from_millis(500);

/// The host's process list, shared by the process probes.
#[derive(Clone)]
pub struct ProcessTable {
    inner: Arc<Mutex<Table>>,
}

struct Table {
    /// Made at the first count (creating it can fail).
    system: Option<System>,
    refresh: ProcessRefreshKind,
    refreshed: Option<Instant>,
}

impl ProcessTable {
    pub fn new(needs_cmdline: bool) -> Self {
        // No per-thread entries, no CPU / memory / environment / user data;
        // command lines only when needed, read once per process (a reused
        // pid is a new process to sysinfo: it compares start times).
        let mut refresh = ProcessRefreshKind::nothing().without_tasks();
        if needs_cmdline {
            refresh = refresh.with_cmd(UpdateKind::OnlyIfNotSet);
        }
        Self {
            inner: Arc::new(Mutex::new(Table {
                system: None,
                refresh,
                refreshed: None,
            })),
        }
    }

    /// The next count walks `/proc` again, however recent the last walk
    /// (a watched process just exited).
    pub fn invalidate(&self) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refreshed = None;
    }

    /// Blocking (walks `/proc`): how many live processes, other than the
    /// agent itself, match.
    #[cfg(all(test, unix))]
    pub fn count(&self, matcher: &Matcher) -> Result<u64, sysinfo::Error> {
        let n = self.matching(matcher)?.len();
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    /// Blocking (walks `/proc`): the pids of the live processes, other than
    /// the agent itself, that match.
    pub fn matching(&self, matcher: &Matcher) -> Result<Vec<u32>, sysinfo::Error> {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let table = &mut *guard;
        let system = match &mut table.system {
            Some(system) => system,
            none => none.insert(System::new()?),
        };
        if table.refreshed.is_none_or(|at| at.elapsed() > REUSE_WITHIN) {
            system.refresh_processes_specifics(ProcessesToUpdate::All, true, table.refresh);
            table.refreshed = Some(Instant::now());
        }
        let me = sysinfo::get_current_pid().ok();
        let pids = system
            .processes()
            .values()
            .filter(|p| {
                Some(p.pid()) != me
                    && p.thread_kind().is_none()
                    && !matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead)
                    && matcher.matches(p.name(), p.cmd())
            })
            .map(|p| p.pid().as_u32())
            .collect();
        Ok(pids)
    }
}

// === impl ProcessProbe ===

/// One `[[checks.process]]` entry.
pub struct ProcessProbe {
    item: String,
    matcher: Arc<Matcher>,
    min_count: u64,
    max_count: Option<u64>,
    interval: Duration,
    table: ProcessTable,
    /// Pidfd watches on what it counted; set up by [`Probe::wake`].
    exits: Option<exits::Exits>,
}

impl Probe for ProcessProbe {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn item(&self) -> String {
        self.item.clone()
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    /// Woken when a counted process exits (Linux pidfds).
    fn wake(&mut self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        self.exits = Some(exits::Exits::new(tx, self.table.clone()));
        Some(rx)
    }

    fn run(&mut self) -> BoxFuture<'_, Vec<Evaluation>> {
        Box::pin(async move {
            let table = self.table.clone();
            let matcher = Arc::clone(&self.matcher);
            let counted = tokio::task::spawn_blocking(move || table.matching(&matcher))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            if let (Ok(pids), Some(exits)) = (&counted, &self.exits) {
                exits.follow(pids);
            }
            let evaluation = match counted {
                Ok(pids) => {
                    let count = u64::try_from(pids.len()).unwrap_or(u64::MAX);
                    evaluate(&self.item, count, self.min_count, self.max_count)
                }
                Err(error) => Evaluation {
                    item: self.item.clone(),
                    state: CheckState::Unknown,
                    message: format!("{}: cannot list processes: {error}", self.item),
                    metrics: Vec::new(),
                },
            };
            vec![evaluation]
        })
    }
}

/// CRIT below `min`, WARN above `max`, else OK.
pub fn evaluate(item: &str, count: u64, min: u64, max: Option<u64>) -> Evaluation {
    let (state, message) = if count < min {
        (
            CheckState::Crit,
            format!("{item}: {count} running, expected at least {min}"),
        )
    } else if let Some(max) = max.filter(|&max| count > max) {
        (
            CheckState::Warn,
            format!("{item}: {count} running, expected at most {max}"),
        )
    } else {
        (CheckState::Ok, format!("{item}: {count} running"))
    };
    #[allow(clippy::cast_precision_loss)]
    let metrics = vec![Metric::new("count", count as f64, "")];
    Evaluation {
        item: item.to_owned(),
        state,
        message,
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn fewer_than_min_is_crit_more_than_max_is_warn() {
        let e = evaluate("nginx", 0, 1, None);
        assert_eq!(e.state, CheckState::Crit);
        assert_eq!(e.message, "nginx: 0 running, expected at least 1");
        assert_eq!(e.item, "nginx");
        assert_eq!(e.metrics, [Metric::new("count", 0.0, "")]);

        let e = evaluate("worker", 5, 1, Some(4));
        assert_eq!(e.state, CheckState::Warn);
        assert_eq!(e.message, "worker: 5 running, expected at most 4");

        let e = evaluate("worker", 4, 1, Some(4));
        assert_eq!(
            (e.state, e.message.as_str()),
            (CheckState::Ok, "worker: 4 running")
        );
        // "must not run": min 0, max 0.
        assert_eq!(evaluate("miner", 1, 0, Some(0)).state, CheckState::Warn);
        assert_eq!(evaluate("miner", 0, 0, Some(0)).state, CheckState::Ok);
    }

    #[test]
    fn name_matches_exactly_and_cmdline_by_substring() {
        let nginx = Matcher::Name("nginx".into());
        let cmd = os(&["nginx: worker process"]);
        assert!(nginx.matches(OsStr::new("nginx"), &cmd));
        assert!(!nginx.matches(OsStr::new("nginx-debug"), &cmd));
        assert!(!nginx.matches(OsStr::new("ngin"), &cmd));

        let pattern = Matcher::Cmdline("--config /etc/app.toml".into());
        assert!(pattern.matches(
            OsStr::new("app"),
            &os(&["/usr/bin/app", "--config", "/etc/app.toml", "run"])
        ));
        assert!(!pattern.matches(OsStr::new("app"), &os(&["/usr/bin/app", "run"])));
        // Kernel threads and zombies have no command line: never a match.
        assert!(!Matcher::Cmdline("kworker".into()).matches(OsStr::new("kworker/0:1"), &[]));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn long_names_match_through_argv0_on_linux() {
        let m = Matcher::Name("unattended-upgrade-shutdown".into());
        assert!(m.needs_cmdline());
        let comm = OsStr::new("unattended-upgr");
        assert!(m.matches(
            comm,
            &os(&[
                "/usr/share/unattended-upgrades/unattended-upgrade-shutdown",
                "--wait"
            ])
        ));
        assert!(!m.matches(comm, &os(&["/usr/bin/unattended-upgrades"])));
        assert!(!Matcher::Name("nginx".into()).needs_cmdline());
    }

    #[test]
    fn one_probe_per_entry_with_stable_items() {
        let list: Vec<ProcessConfig> = [
            "name = \"nginx\"",
            "cmdline = \"java -jar app.jar\"\ninterval_secs = 30",
        ]
        .iter()
        .map(|t| toml::from_str(t).expect("parses"))
        .collect();
        let probes = probes(&list);
        assert_eq!(probes.len(), 2);
        assert_eq!(probes[0].item(), "nginx");
        assert_eq!(probes[1].item(), "java -jar app.jar");
        assert_eq!(probes[1].interval(), Duration::from_secs(30));
        assert_eq!(probes[1].kind(), "process");
    }

    #[cfg(unix)]
    #[test]
    fn counts_a_real_process_and_not_itself() {
        // `sleep` under a name no other process has.
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = format!("forewarn-unit-{}", std::process::id());
        let exe = dir.path().join(&marker);
        std::os::unix::fs::symlink("/bin/sleep", &exe).expect("symlink sleep");
        let mut child = std::process::Command::new(&exe)
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let table = ProcessTable::new(true);
        let matcher = Matcher::Cmdline(marker.clone());
        assert_eq!(table.count(&matcher).expect("count"), 1);
        // The kernel keeps 15 bytes of the name; argv[0] completes it.
        #[cfg(target_os = "linux")]
        assert_eq!(
            table.count(&Matcher::Name(marker.clone())).expect("count"),
            1
        );
        assert_eq!(
            table
                .count(&Matcher::Cmdline("no such process 8c1f".into()))
                .expect("count"),
            0
        );
        child.kill().expect("kill");
        child.wait().expect("reap");
        // A count within REUSE_WITHIN reuses the walk unless invalidated.
        table.invalidate();
        assert_eq!(table.count(&matcher).expect("count"), 0);
    }

    /// The whole probe on a real process: the first run counts it and
    /// follows it by pidfd; killing it wakes the probe (no interval passes:
    /// it is an hour), and the woken run counts it out — fresh, although
    /// the shared table was walked less than REUSE_WITHIN ago.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn an_exit_wakes_the_probe_and_the_next_run_is_crit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = format!("forewarn-exit-{}", std::process::id());
        let exe = dir.path().join(&marker);
        std::os::unix::fs::symlink("/bin/sleep", &exe).expect("symlink sleep");
        let mut child = std::process::Command::new(&exe)
            .arg("600")
            .spawn()
            .expect("spawn sleep");
        let list: Vec<ProcessConfig> = [format!("cmdline = {marker:?}\ninterval_secs = 3600")]
            .iter()
            .map(|t| toml::from_str(t).expect("parses"))
            .collect();
        let mut probe = probes(&list).pop().expect("one probe");
        let mut wake = probe.wake().expect("process probes are woken by exits");
        let first = probe.run().await;
        assert_eq!(first[0].state, CheckState::Ok, "{first:?}");
        child.kill().expect("kill");
        child.wait().expect("reap");
        tokio::time::timeout(Duration::from_secs(30), wake.recv())
            .await
            .expect("woken by the exit")
            .expect("open");
        let second = probe.run().await;
        assert_eq!(second[0].state, CheckState::Crit, "{second:?}");
    }
}
