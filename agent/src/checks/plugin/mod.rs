//! The `plugin` check (`[[checks.plugin]]`): runs a Nagios / Monitoring
//! Plugins compatible program and reports what it says. The exit code is
//! the state (0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN; anything else, a signal or a
//! program that cannot start is UNKNOWN with the reason), the first output
//! line before `|` is the message, and performance data become metrics
//! ([`perfdata`], thresholds in [`range`]).
//!
//! The command is an argument vector run directly, never through a shell
//! (on Windows a `.ps1` goes through `powershell -File`, see [`launch`]),
//! as the agent's own user, with stdin closed and its output capped. It
//! runs in its own process group so a timeout kills the plugin and anything
//! it started.

pub mod launch;
pub mod perfdata;
pub mod range;

use std::collections::BTreeMap;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::debug;

use super::limits::{self, MAX_MESSAGE_BYTES, MAX_METRICS};
use super::{BoxFuture, CheckState, Evaluation, Metric, Probe};
use crate::config::PluginConfig;

/// Most bytes of standard output kept; the rest is read and discarded.
const STDOUT_CAP: usize = 64 * 1024;
/// Most bytes of standard error kept (only shown when stdout is empty).
const STDERR_CAP: usize = 8 * 1024;
/// How long output is still read after the plugin exited, in case a
/// process it left behind holds the pipes open.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Every configured plugin as a probe.
pub fn build(plugins: &[PluginConfig]) -> Vec<Box<dyn Probe>> {
    plugins
        .iter()
        .map(|c| Box::new(PluginProbe::new(c)) as Box<dyn Probe>)
        .collect()
}

/// One plugin instance.
pub struct PluginProbe {
    config: PluginConfig,
}

impl PluginProbe {
    pub fn new(config: &PluginConfig) -> Self {
        Self {
            config: config.clone(),
        }
    }

    fn plugin_timeout(&self) -> Duration {
        Duration::from_secs(self.config.timeout_secs)
    }

    async fn check(&self) -> Evaluation {
        let outcome = run(
            &self.config.command,
            &self.config.env,
            self.plugin_timeout(),
        )
        .await;
        let (state, message, metrics) = judge(&self.config.name, &outcome, self.plugin_timeout());
        Evaluation {
            item: self.config.name.clone(),
            state,
            message: limits::clean_text(&message, MAX_MESSAGE_BYTES),
            metrics,
        }
    }
}

impl Probe for PluginProbe {
    fn kind(&self) -> &'static str {
        "plugin"
    }

    fn item(&self) -> String {
        self.config.name.clone()
    }

    fn interval(&self) -> Duration {
        self.config.interval()
    }

    /// Longer than the plugin's own timeout, so that the plugin's timeout
    /// (which kills it and says so) is what fires.
    fn timeout(&self) -> Duration {
        self.plugin_timeout() + Duration::from_secs(5)
    }

    fn run(&mut self) -> BoxFuture<'_, Vec<Evaluation>> {
        Box::pin(async move { vec![self.check().await] })
    }
}

// === running ===

/// What became of one run.
#[derive(Debug)]
enum Outcome {
    Finished {
        status: ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    /// The program could not be started.
    NotStarted(std::io::Error),
    /// Waiting for it failed (should not happen).
    Lost(std::io::Error),
    TimedOut,
}

/// Runs `command` with `env` added, for at most `timeout`.
async fn run(command: &[String], env: &BTreeMap<String, String>, timeout: Duration) -> Outcome {
    let Some((program, args)) = launch::argv(command, launch::windows_root().as_deref()) else {
        return Outcome::NotStarted(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty command",
        ));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return Outcome::NotStarted(e),
    };
    let pid = child.id();
    let (out_pipe, err_pipe) = (child.stdout.take(), child.stderr.take());
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let finished = tokio::time::timeout(timeout, async {
        let reads = async {
            tokio::join!(
                read_capped(out_pipe, &mut stdout, STDOUT_CAP),
                read_capped(err_pipe, &mut stderr, STDERR_CAP)
            )
        };
        let mut reads = std::pin::pin!(reads);
        tokio::select! {
            status = child.wait() => {
                // Exited: take what is left, but do not wait on pipes a
                // leftover background process may hold open.
                let _ = tokio::time::timeout(DRAIN_GRACE, &mut reads).await;
                status
            }
            _ = &mut reads => child.wait().await,
        }
    })
    .await;
    match finished {
        Ok(Ok(status)) => Outcome::Finished {
            status,
            stdout,
            stderr,
        },
        Ok(Err(e)) => Outcome::Lost(e),
        Err(_) => {
            kill_group(pid);
            // SIGKILL and reap; kill_on_drop covers a failure here.
            let _ = tokio::time::timeout(Duration::from_secs(1), child.kill()).await;
            Outcome::TimedOut
        }
    }
}

/// Reads `pipe` to its end, keeping the first `cap` bytes in `buf`.
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>, buf: &mut Vec<u8>, cap: usize) {
    let Some(mut pipe) = pipe else { return };
    let mut chunk = [0u8; 4096];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let keep = n.min(cap.saturating_sub(buf.len()));
                buf.extend_from_slice(&chunk[..keep]);
            }
        }
    }
}

/// SIGKILL to the plugin's process group (the plugin and its children).
#[cfg(unix)]
fn kill_group(pid: Option<u32>) {
    let pid = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid
        && let Err(error) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL)
    {
        debug!(%error, "cannot kill plugin process group");
    }
}

/// No process group elsewhere (Windows): the caller's `child.kill()` ends
/// the plugin itself; a child it started may outlive it.
#[cfg(not(unix))]
fn kill_group(_pid: Option<u32>) {}

// === judging ===

/// State, message and metrics for one outcome.
fn judge(name: &str, outcome: &Outcome, timeout: Duration) -> (CheckState, String, Vec<Metric>) {
    let (status, stdout, stderr) = match outcome {
        Outcome::Finished {
            status,
            stdout,
            stderr,
        } => (status, stdout, stderr),
        Outcome::TimedOut => {
            let secs = super::format_secs(timeout);
            return (
                CheckState::Unknown,
                format!("plugin timed out after {secs}"),
                Vec::new(),
            );
        }
        Outcome::NotStarted(e) => {
            let reason = match e.kind() {
                std::io::ErrorKind::NotFound => "program not found".to_owned(),
                std::io::ErrorKind::PermissionDenied => {
                    "program is not executable (permission denied)".to_owned()
                }
                _ => e.to_string(),
            };
            return (
                CheckState::Unknown,
                format!("cannot run plugin: {reason}"),
                Vec::new(),
            );
        }
        Outcome::Lost(e) => {
            return (
                CheckState::Unknown,
                format!("lost track of the plugin: {e}"),
                Vec::new(),
            );
        }
    };
    let text = String::from_utf8_lossy(stdout);
    let output = perfdata::parse_output(&text);
    if let Some(first) = output.perfdata.errors.first() {
        debug!(
            plugin = name,
            count = output.perfdata.errors.len(),
            first = %first,
            "unreadable performance data skipped"
        );
    }
    let mut said = output.message.to_owned();
    if said.is_empty() {
        said = String::from_utf8_lossy(stderr)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default()
            .to_owned();
    }
    let metrics = output
        .perfdata
        .data
        .iter()
        .filter_map(perfdata::PerfDatum::metric)
        .filter(limits::metric_ok)
        .take(MAX_METRICS)
        .collect();
    let (state, message) = match exit_state(*status) {
        Ok(state) if said.is_empty() => (
            state,
            format!("plugin said nothing (exit {})", state.exit_code()),
        ),
        Ok(state) => (state, said),
        Err(reason) if said.is_empty() => (CheckState::Unknown, reason),
        Err(reason) => (CheckState::Unknown, format!("{reason}: {said}")),
    };
    (state, message, metrics)
}

/// The state an exit status stands for, or why it stands for none.
fn exit_state(status: ExitStatus) -> Result<CheckState, String> {
    match status.code() {
        Some(0) => Ok(CheckState::Ok),
        Some(1) => Ok(CheckState::Warn),
        Some(2) => Ok(CheckState::Crit),
        Some(3) => Ok(CheckState::Unknown),
        Some(code) => Err(format!("plugin exited with code {code}")),
        None => Err(signal_reason(status)),
    }
}

#[cfg(unix)]
fn signal_reason(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(signal) => format!("plugin killed by signal {signal}"),
        None => "plugin ended without an exit code".to_owned(),
    }
}

#[cfg(not(unix))]
fn signal_reason(_status: ExitStatus) -> String {
    "plugin ended without an exit code".to_owned()
}

#[cfg(test)]
mod tests;
