//! The `backup` check (`[[checks.backup]]`): is the newest file matching
//! `glob` in `dir` fresh, big enough and not much smaller than the one
//! before it, and does the job's optional status file say it succeeded?
//! Item = `name` (default: the directory).
//!
//! Event-driven: the directory (and the status file's directory) are
//! watched, so a finished or failed backup is judged the moment its file
//! lands — after ~200 ms without further writes, so a file still being
//! written is judged once complete. The periodic run (`interval_secs`)
//! catches what no event announces: a backup that simply did not happen.
//!
//! File names are matched with the `glob` crate (`glob::Pattern`): the
//! rust-lang-maintained shell-pattern matcher, with no dependencies of its
//! own, which is all a single file-name pattern needs (`globset` would add
//! regex and aho-corasick machinery for sets of path globs).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::watch::{Filter, Pacing, Target, Watch};
use super::{BoxFuture, CheckState, Evaluation, Metric, Probe, format_bytes};
use crate::config::BackupConfig;

mod status;

use status::{JobStatus, StatusReport};

/// Quiet time after the last write before a new file is judged.
const SETTLE: Duration = Duration::from_millis(200);

/// One probe per `[[checks.backup]]` table.
pub fn probes(list: &[BackupConfig]) -> Vec<Box<dyn Probe>> {
    list.iter()
        .map(|c| Box::new(BackupProbe::new(c)) as Box<dyn Probe>)
        .collect()
}

/// One backup set.
pub struct BackupProbe {
    config: Arc<BackupConfig>,
    item: String,
    pattern: Result<glob::Pattern, String>,
    generations: Arc<Mutex<Generations>>,
    watch: Option<Arc<Watch>>,
}

impl BackupProbe {
    pub fn new(config: &BackupConfig) -> Self {
        Self {
            item: config.item(),
            pattern: glob::Pattern::new(&config.glob).map_err(|e| e.to_string()),
            config: Arc::new(config.clone()),
            generations: Arc::default(),
            watch: None,
        }
    }
}

impl Probe for BackupProbe {
    fn kind(&self) -> &'static str {
        "backup"
    }

    fn item(&self) -> String {
        self.item.clone()
    }

    fn interval(&self) -> Duration {
        self.config.interval()
    }

    fn wake(&mut self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        let mut targets = vec![Target {
            dir: self.config.dir.clone(),
            filter: Filter::Glob(self.pattern.clone().ok()?),
        }];
        targets.extend(self.config.status_file.as_deref().and_then(Target::file));
        let pacing = Pacing {
            settle: SETTLE,
            max_delay: None,
        };
        let (watch, wake) = Watch::start(targets, pacing)?;
        self.watch = Some(Arc::new(watch));
        Some(wake)
    }

    fn run(&mut self) -> BoxFuture<'_, Vec<Evaluation>> {
        let config = Arc::clone(&self.config);
        let item = self.item.clone();
        let pattern = self.pattern.clone();
        let generations = Arc::clone(&self.generations);
        let watch = self.watch.clone();
        Box::pin(async move {
            let blocking_item = item.clone();
            let run = tokio::task::spawn_blocking(move || {
                if let Some(watch) = &watch {
                    watch.ensure();
                }
                let listing = match &pattern {
                    Ok(pattern) => scan(&config.dir, pattern, config.status_file.as_deref()),
                    Err(e) => Listing::Unreadable(format!("invalid glob {:?}: {e}", config.glob)),
                };
                let status = config.status_file.as_deref().map(status::read);
                let baseline = match &listing {
                    Listing::Files(files) => generations
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .baseline(files),
                    _ => None,
                };
                let now = SystemTime::now();
                evaluate(&config, blocking_item, &listing, baseline, status, now)
            });
            let evaluation = run.await.unwrap_or_else(|e| Evaluation {
                item,
                state: CheckState::Unknown,
                message: format!("backup check failed: {e}"),
                metrics: Vec::new(),
            });
            vec![evaluation]
        })
    }
}

/// One matching file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    pub name: String,
    pub modified: SystemTime,
    pub size: u64,
}

/// What the backup directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// The matching regular files, newest first.
    Files(Vec<BackupFile>),
    DirMissing,
    Unreadable(String),
}

/// The matching regular files in `dir` (symlinks followed), newest first.
/// Hidden files (`.name`) match only a pattern that starts with a dot, so
/// a job's `.partial` temp file is not taken for a backup; the status
/// file, if it lives in `dir`, is never one either.
pub fn scan(dir: &Path, pattern: &glob::Pattern, status_file: Option<&Path>) -> Listing {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Listing::DirMissing,
        Err(e) => return Listing::Unreadable(e.to_string()),
    };
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !pattern.matches_with(&name, options) || status_file == Some(entry.path().as_path()) {
            continue;
        }
        // A file deleted between listing and stat is simply not there.
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        files.push(BackupFile {
            name,
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            size: meta.len(),
        });
    }
    files.sort_by(|a, b| b.modified.cmp(&a.modified).then(b.name.cmp(&a.name)));
    Listing::Files(files)
}

/// What the newest backup is compared with, across runs.
#[derive(Debug, Default)]
struct Generations {
    /// The newest file seen on the last run: name, mtime, size.
    newest: Option<BackupFile>,
    /// The size of the newest file before that one.
    previous_size: Option<u64>,
}

impl Generations {
    /// The size the newest file must not shrink from: the second-newest
    /// file, or — when one file is rewritten in place, or older ones were
    /// pruned — the newest file of an earlier run.
    fn baseline(&mut self, files: &[BackupFile]) -> Option<u64> {
        let newest = files.first()?;
        match &self.newest {
            Some(seen) if seen.name == newest.name && seen.modified == newest.modified => {}
            Some(seen) => {
                self.previous_size = Some(seen.size);
                self.newest = Some(newest.clone());
            }
            None => self.newest = Some(newest.clone()),
        }
        files.get(1).map(|f| f.size).or(self.previous_size)
    }
}

/// One rule's verdict.
struct Finding {
    state: CheckState,
    message: String,
}

/// Where the backup set stands. `baseline`: the size the newest file is
/// compared with (see [`Generations::baseline`]).
pub fn evaluate(
    config: &BackupConfig,
    item: String,
    listing: &Listing,
    baseline: Option<u64>,
    status: Option<Result<StatusReport, String>>,
    now: SystemTime,
) -> Evaluation {
    let dir = config.dir.display();
    let limit_h = config.max_age_hours;
    let max_age = config.max_age();
    let mut findings = Vec::new();
    let mut fine = Vec::new();
    let mut metrics = Vec::new();
    let mut problem = |state, message| findings.push(Finding { state, message });
    match listing {
        Listing::DirMissing => problem(
            CheckState::Crit,
            format!(
                "no backup matching {} in {dir} ({dir} does not exist)",
                config.glob
            ),
        ),
        Listing::Unreadable(e) => problem(CheckState::Unknown, format!("cannot read {dir}: {e}")),
        Listing::Files(files) => match files.first() {
            None => problem(
                CheckState::Crit,
                format!("no backup matching {} in {dir}", config.glob),
            ),
            Some(newest) => {
                let age = now.duration_since(newest.modified).unwrap_or_default();
                #[allow(clippy::cast_precision_loss)]
                metrics.extend([
                    Metric::new("age_seconds", age.as_secs_f64().floor(), "seconds"),
                    Metric::new("size_bytes", newest.size as f64, "bytes"),
                ]);
                if age > max_age {
                    problem(
                        CheckState::Crit,
                        format!("last backup {} ago (limit {limit_h} h)", format_age(age)),
                    );
                }
                if newest.size < config.min_bytes {
                    problem(
                        CheckState::Crit,
                        format!(
                            "last backup {} is {} (minimum {})",
                            newest.name,
                            format_bytes(newest.size),
                            format_bytes(config.min_bytes)
                        ),
                    );
                } else if let Some(shrink) = baseline.and_then(|b| shrink_percent(b, newest.size))
                    && shrink > config.max_shrink_percent
                {
                    problem(
                        CheckState::Warn,
                        format!(
                            "backup shrank {shrink:.0}% (from {} to {})",
                            format_bytes(baseline.unwrap_or_default()),
                            format_bytes(newest.size)
                        ),
                    );
                }
                fine.push(format!(
                    "last backup {} {} ago, {}",
                    newest.name,
                    format_age(age),
                    format_bytes(newest.size)
                ));
            }
        },
    }
    match status {
        None => {}
        Some(Err(message)) => problem(CheckState::Unknown, message),
        Some(Ok(report)) => {
            let age = now.duration_since(report.finished_at).unwrap_or_default();
            match report.status {
                JobStatus::Failure => problem(
                    CheckState::Crit,
                    match report.message.as_str() {
                        "" => format!("backup job failed {} ago", format_age(age)),
                        m => format!("backup job failed {} ago: {m}", format_age(age)),
                    },
                ),
                JobStatus::Success if age > max_age => problem(
                    CheckState::Crit,
                    format!(
                        "backup job last succeeded {} ago (limit {limit_h} h)",
                        format_age(age)
                    ),
                ),
                JobStatus::Success => {
                    fine.push(format!("job succeeded {} ago", format_age(age)));
                }
            }
        }
    }
    let state = findings
        .iter()
        .fold(CheckState::Ok, |s, f| s.worst(f.state));
    let message = if findings.is_empty() {
        fine.join("; ")
    } else {
        // Worst first (the sort is stable: rule order otherwise).
        findings.sort_by_key(|f| std::cmp::Reverse(f.state.severity()));
        let parts: Vec<_> = findings.into_iter().map(|f| f.message).collect();
        parts.join("; ")
    };
    Evaluation {
        item,
        state,
        message,
        metrics,
    }
}

/// How much smaller `now` is than `before`, in percent; `None` if it is not.
fn shrink_percent(before: u64, now: u64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    (now < before).then(|| (before - now) as f64 / before as f64 * 100.0)
}

/// An age for people: `45 s`, `12 min`, `31 h`, `9 d`.
pub fn format_age(age: Duration) -> String {
    let s = age.as_secs();
    if s < 120 {
        format!("{s} s")
    } else if s < 120 * 60 {
        format!("{} min", s / 60)
    } else if s < 72 * 3600 {
        format!("{} h", s / 3600)
    } else {
        format!("{} d", s / 86_400)
    }
}

#[cfg(test)]
mod tests;
