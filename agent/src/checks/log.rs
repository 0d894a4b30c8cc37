//! The `log` check (`[[checks.log]]`): a line matching `pattern` appended
//! to a log file raises WARN or CRIT (`state`), which holds for `hold_secs`
//! after the last match and then returns to OK. Item = `name` (default:
//! the path). The message carries the match count in the hold window and
//! the last matching line; metric `matches`.
//!
//! The file is followed like `tail -F` ([`follow`]): from its end at agent
//! start, rotation- and truncation-safe, at most 1 MiB per run. Appended
//! lines are read at once through a watch on the file's directory; the
//! periodic run (`interval_secs`) ends the hold and catches what no event
//! announced. The read position is not persisted across agent restarts.
//!
//! Patterns use the `regex` crate (linear time, no blow-ups on hostile
//! lines), with only the features `is_match` needs to be fast: literal
//! prefilter and lazy DFA, plus Unicode `\w`/`\d`/`(?i)`. Measured here
//! (release, LTO, stripped, on top of tracing-subscriber's env-filter which
//! already links regex-automata): `regex-lite` adds ~65 KB to the binary,
//! this `regex` ~580 KB (the default features ~920 KB); but scanning 1 MiB
//! of typical log lines takes `regex-lite` 40–90 ms against 0.6–4 ms here.
//! A busy log (an access log at 200 KB/s) would cost ~1.5 % of a core with
//! `regex-lite` and ~0.1 % with `regex`; an agent that must never hurt its
//! host is worth the half megabyte of disk.

mod follow;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use regex::Regex;

use super::watch::{Pacing, Target, Watch};
use super::{BoxFuture, CheckState, Evaluation, Metric, Probe, format_secs};
use crate::config::{LogConfig, LogMatchState};
use follow::{Follower, Polled};

/// Most bytes read from the file per run.
const READ_BUDGET: usize = 1024 * 1024;
/// Longest excerpt of the matching line in the message.
const MAX_EXCERPT_CHARS: usize = 200;
/// Matches closer together than this share one entry of the hold window.
const BUCKET: Duration = Duration::from_secs(1);
/// Appended lines are read once writes pause this long, or after
/// `MAX_DELAY` during a steady stream.
const SETTLE: Duration = Duration::from_millis(50);
const MAX_DELAY: Duration = Duration::from_millis(250);

/// One probe per `[[checks.log]]` table.
pub fn probes(list: &[LogConfig]) -> Vec<Box<dyn Probe>> {
    list.iter()
        .map(|c| Box::new(LogProbe::new(c)) as Box<dyn Probe>)
        .collect()
}

/// One followed file and pattern.
pub struct LogProbe {
    item: String,
    path: PathBuf,
    raised: CheckState,
    hold: Duration,
    interval: Duration,
    pattern: Arc<Result<Regex, String>>,
    tail: Arc<Mutex<Tail>>,
    watch: Option<Arc<Watch>>,
}

/// The follower and what it matched, kept across runs.
struct Tail {
    follower: Follower,
    matches: Matches,
}

impl LogProbe {
    pub fn new(config: &LogConfig) -> Self {
        Self {
            item: config.item(),
            path: config.path.clone(),
            raised: match config.state {
                LogMatchState::Warn => CheckState::Warn,
                LogMatchState::Crit => CheckState::Crit,
            },
            hold: config.hold(),
            interval: config.interval(),
            pattern: Arc::new(config.regex().map_err(|e| e.to_string())),
            tail: Arc::new(Mutex::new(Tail {
                follower: Follower::new(config.path.clone()),
                matches: Matches::default(),
            })),
            watch: None,
        }
    }

    /// One run, blocking: read what was appended, match, judge.
    fn run_blocking(&self, now: Instant) -> Evaluation {
        let regex = match self.pattern.as_ref() {
            Ok(regex) => regex,
            Err(e) => return self.result(CheckState::Unknown, format!("invalid pattern: {e}"), 0),
        };
        let mut tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        let Tail { follower, matches } = &mut *tail;
        let mut count = 0u64;
        let mut last = String::new();
        let polled = follower.poll(READ_BUDGET, &mut |line| {
            if regex.is_match(line) {
                count += 1;
                last.clear();
                last.push_str(line);
            }
        });
        matches.record(now, count, (count > 0).then(|| excerpt(&last)));
        matches.expire(now, self.hold);
        if polled.as_ref().is_ok_and(|p| p.more)
            && let Some(watch) = &self.watch
        {
            watch.poke();
        }
        self.judge(matches, &polled)
    }

    /// The result from the hold window and how the read went.
    fn judge(&self, matches: &Matches, polled: &std::io::Result<Polled>) -> Evaluation {
        let n = matches.count();
        let path = self.path.display();
        let hold = format_secs(self.hold);
        if n > 0 {
            let noun = if n == 1 {
                "matching line"
            } else {
                "matching lines"
            };
            let last = matches.last_line.as_deref().unwrap_or_default();
            let mut message = format!("{n} {noun} in the last {hold}; last: {last}");
            if let Err(e) = polled {
                message.push_str(&format!(" (cannot read {path} now: {e})"));
            }
            return self.result(self.raised, message, n);
        }
        match polled {
            Err(e) => self.result(CheckState::Unknown, format!("cannot read {path}: {e}"), 0),
            Ok(p) if p.missing && !p.seen => {
                self.result(CheckState::Unknown, format!("{path} does not exist"), 0)
            }
            Ok(p) if p.missing => self.result(
                CheckState::Ok,
                format!("no matching line in the last {hold} ({path} is gone, waiting for it)"),
                0,
            ),
            Ok(_) => self.result(
                CheckState::Ok,
                format!("no matching line in the last {hold}"),
                0,
            ),
        }
    }

    fn result(&self, state: CheckState, message: String, matches: u64) -> Evaluation {
        #[allow(clippy::cast_precision_loss)]
        let metrics = vec![Metric::new("matches", matches as f64, "")];
        Evaluation {
            item: self.item.clone(),
            state,
            message,
            metrics,
        }
    }

    /// What the blocking part of a run needs, detached from `&mut self`.
    fn detached(&self) -> Self {
        Self {
            item: self.item.clone(),
            path: self.path.clone(),
            raised: self.raised,
            hold: self.hold,
            interval: self.interval,
            pattern: Arc::clone(&self.pattern),
            tail: Arc::clone(&self.tail),
            watch: self.watch.clone(),
        }
    }
}

impl Probe for LogProbe {
    fn kind(&self) -> &'static str {
        "log"
    }

    fn item(&self) -> String {
        self.item.clone()
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn wake(&mut self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        let target = Target::file(&self.path)?;
        let pacing = Pacing {
            settle: SETTLE,
            max_delay: Some(MAX_DELAY),
        };
        let (watch, wake) = Watch::start(vec![target], pacing)?;
        self.watch = Some(Arc::new(watch));
        Some(wake)
    }

    fn run(&mut self) -> BoxFuture<'_, Vec<Evaluation>> {
        let probe = self.detached();
        Box::pin(async move {
            let item = probe.item.clone();
            let run = tokio::task::spawn_blocking(move || {
                if let Some(watch) = &probe.watch {
                    watch.ensure();
                }
                probe.run_blocking(Instant::now())
            });
            let evaluation = run.await.unwrap_or_else(|e| Evaluation {
                item,
                state: CheckState::Unknown,
                message: format!("log check failed: {e}"),
                metrics: Vec::new(),
            });
            vec![evaluation]
        })
    }
}

/// Matches within the hold window, in buckets of at most [`BUCKET`]
/// (bounded memory however many lines match), oldest first, plus the last
/// matching line.
#[derive(Debug, Default)]
struct Matches {
    buckets: VecDeque<Bucket>,
    last_line: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    first: Instant,
    last: Instant,
    count: u64,
}

impl Matches {
    fn record(&mut self, now: Instant, count: u64, last_line: Option<String>) {
        if count == 0 {
            return;
        }
        match self.buckets.back_mut() {
            Some(b) if now.duration_since(b.first) < BUCKET => {
                b.last = now;
                b.count += count;
            }
            _ => self.buckets.push_back(Bucket {
                first: now,
                last: now,
                count,
            }),
        }
        if last_line.is_some() {
            self.last_line = last_line;
        }
    }

    /// Forgets matches older than `hold` (a bucket goes when its last
    /// match does: the state is held at least `hold` after every match).
    fn expire(&mut self, now: Instant, hold: Duration) {
        while let Some(b) = self.buckets.front() {
            if now.duration_since(b.last) < hold {
                break;
            }
            self.buckets.pop_front();
        }
        if self.buckets.is_empty() {
            self.last_line = None;
        }
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.count).sum()
    }
}

/// The line as shown in a message: trimmed, control characters replaced,
/// at most [`MAX_EXCERPT_CHARS`] characters.
fn excerpt(line: &str) -> String {
    let line = line.trim();
    let mut out: String = line
        .chars()
        .take(MAX_EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().nth(MAX_EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
