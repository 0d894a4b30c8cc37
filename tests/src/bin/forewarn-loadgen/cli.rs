//! Command-line flags of `forewarn-loadgen`, each with its default, and the
//! checks that reject a bad combination before anything connects.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Parser;

/// Simulates many Forewarn agents against a running collector over the
/// real protocol (Enroll, then an mTLS `Ingest/Session` stream per agent)
/// and measures how fast the collector acknowledges their reports.
///
/// Modes: steady (default: N agents for --duration-secs after
/// --warmup-secs), --ramp START,STEP,MAX (raise N step by step until a step
/// misses --p99-ms or has errors) and --reconnect (wait for the sessions to
/// drop, e.g. a collector restart, and time until every agent is back).
///
/// Prints a progress line every --progress-secs, then a summary and one
/// JSON line starting with `loadgen-result `.
#[derive(Debug, Parser)]
#[command(name = "forewarn-loadgen", version, verbatim_doc_comment)]
pub struct Args {
    /// Collector gRPC URL, https://HOST:PORT; several, comma-separated (or
    /// the flag repeated), for replicas sharing one database: agent i
    /// reports to URL i mod n, and after a failed connect (or a session
    /// closed before its first ack) moves on to the next URL; a session
    /// that worked and then dropped is retried on the same URL first.
    /// Enrollment goes to the first URL.
    #[arg(long, required = true, value_delimiter = ',')]
    pub collector: Vec<String>,
    /// TLS name the collectors' certificates must carry [default: the first
    /// URL's host].
    #[arg(long)]
    pub server_name: Option<String>,
    /// Keeps the pinned CA and every simulated agent's key and certificate;
    /// a later run reuses them and enrolls only the agents missing.
    #[arg(long, default_value = "loadgen-state")]
    pub state: PathBuf,
    /// Simulated agents (steady and reconnect modes).
    #[arg(long, default_value_t = 100)]
    pub agents: usize,

    /// Enrollment token with at least as many uses as agents to enroll.
    #[arg(long, env = "FOREWARN_LOADGEN_TOKEN")]
    pub token: Option<String>,
    /// SHA-256 fingerprint of the collector CA to pin (from `token create`).
    #[arg(long)]
    pub ca_fingerprint: Option<String>,
    /// Instead of --token/--ca-fingerprint: run `forewarn-collector --config
    /// PATH token create --max-uses <missing agents> --json` on this
    /// machine, only when some agent has to be enrolled.
    #[arg(long, conflicts_with = "token")]
    pub collector_config: Option<PathBuf>,
    /// The forewarn-collector binary for --collector-config [default: the
    /// one next to this binary, else forewarn-collector from PATH].
    #[arg(long)]
    pub collector_bin: Option<PathBuf>,
    /// Tenant of the token made with --collector-config.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Role of the token made with --collector-config (server tickets are P1
    /// on CRIT; workstation is the collector's default).
    #[arg(long, default_value = "workstation")]
    pub role: String,
    /// Simulated hostnames are PREFIX-00000, PREFIX-00001, …
    #[arg(long, default_value = "loadgen")]
    pub hostname_prefix: String,
    /// Enrollments in flight at once (each a new TLS connection, as agents do).
    #[arg(long, default_value_t = 16)]
    pub enroll_concurrency: usize,

    /// Check results in every heartbeat (cpu, memory, load, disks, services,
    /// processes, …; beyond 12, more disks).
    #[arg(long, default_value_t = 12)]
    pub checks: usize,
    /// Heartbeat interval of every agent; their start times are spread
    /// evenly over one interval.
    #[arg(long, default_value_t = 15)]
    pub interval_secs: u64,
    /// State-change reports per agent per hour: half raise a random check
    /// to WARN or CRIT (a ticket opens), half bring it back to OK (it
    /// resolves). 0 = heartbeats only.
    #[arg(long, default_value_t = 2.0)]
    pub change_rate: f64,
    /// Mean time a raised check stays WARN/CRIT before OK (±50 %).
    #[arg(long, default_value_t = 120.0)]
    pub problem_secs: f64,

    /// Time to connect and settle before measuring (each ramp step too).
    #[arg(long, default_value_t = 30)]
    pub warmup_secs: u64,
    /// Measured time (each ramp step too).
    #[arg(long, default_value_t = 60)]
    pub duration_secs: u64,
    /// Ramp mode: START,STEP,MAX agents; stops at the first step whose p99
    /// ack latency exceeds --p99-ms or that had any error, and prints the
    /// largest N that held.
    #[arg(long, value_parser = parse_ramp, conflicts_with = "reconnect")]
    pub ramp: Option<Ramp>,
    /// The bar of a ramp step: p99 ack latency in ms.
    #[arg(long, default_value_t = 100.0)]
    pub p99_ms: f64,
    /// Reconnect mode: once all agents are connected, wait for their
    /// sessions to drop (restart the collector), then report the time from
    /// the first drop until every agent has a session again and got an ack.
    #[arg(long)]
    pub reconnect: bool,
    /// Reconnect mode: give up if the drop or the recovery takes longer.
    #[arg(long, default_value_t = 600)]
    pub reconnect_timeout_secs: u64,
    /// A report not acknowledged within this time counts as an error
    /// (ack_timeout); its ack, if it comes, still counts in the latencies.
    #[arg(long, default_value_t = 30)]
    pub ack_timeout_secs: u64,

    /// Also measure this collector process: CPU (% of one core) and RSS.
    /// Several pids, comma-separated (replicas): summed, and each apart
    /// in `collector_pids`.
    #[arg(long, value_delimiter = ',')]
    pub collector_pid: Vec<u32>,
    /// Also measure the CPU of every process whose name (/proc/PID/comm)
    /// is NAME, summed, e.g. `postgres` (the server and its backends).
    /// Processes come and go: only those present at both the start and the
    /// end of a window (same pid, same start time) count, so the CPU of a
    /// process that started or ended within the window is missed.
    #[arg(long, value_name = "NAME")]
    pub watch_comm: Option<String>,
    /// With --watch-comm: only process PID and its children (e.g. the
    /// postmaster's pid, so that other PostgreSQL servers on the machine
    /// do not count).
    #[arg(long, value_name = "PID", requires = "watch_comm")]
    pub watch_parent: Option<u32>,
    /// Enroll the agents missing from --state, print the result line and
    /// exit without starting any session (the other flags of a run may
    /// stay: --agents or --ramp say how many).
    #[arg(long)]
    pub enroll_only: bool,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 5)]
    pub progress_secs: u64,
    /// Tokio worker threads [default: one per core].
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `--ramp START,STEP,MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ramp {
    pub start: usize,
    pub step: usize,
    pub max: usize,
}

impl Ramp {
    /// The agent counts of each step: START, START+STEP, … up to MAX.
    pub fn steps(self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut n = self.start;
        while n <= self.max {
            out.push(n);
            n += self.step;
        }
        out
    }
}

fn parse_ramp(s: &str) -> std::result::Result<Ramp, String> {
    let parts: Vec<usize> = s
        .split(',')
        .map(|p| p.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("expected START,STEP,MAX (three whole numbers), not {s:?}"))?;
    match parts[..] {
        [start, step, max] if start > 0 && step > 0 && max >= start => {
            Ok(Ramp { start, step, max })
        }
        [_, _, _] => Err(format!(
            "need START > 0, STEP > 0 and MAX >= START, not {s:?}"
        )),
        _ => Err(format!("expected START,STEP,MAX, not {s:?}")),
    }
}

impl Args {
    /// Agents to enroll and run: MAX of a ramp, else --agents.
    pub fn max_agents(&self) -> usize {
        self.ramp.map_or(self.agents, |r| r.max)
    }

    /// Every problem of the flags, at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.max_agents() == 0 {
            problems.push("--agents must be at least 1".to_string());
        }
        if self.checks == 0 {
            problems.push("--checks must be at least 1".to_string());
        }
        if !(1..=3600).contains(&self.interval_secs) {
            problems.push("--interval-secs must be between 1 and 3600".to_string());
        }
        if !(self.change_rate >= 0.0 && self.change_rate.is_finite()) {
            problems.push("--change-rate must be 0 or more".to_string());
        }
        if !(self.problem_secs > 0.0 && self.problem_secs.is_finite()) {
            problems.push("--problem-secs must be more than 0".to_string());
        }
        if self.duration_secs == 0 && !self.reconnect {
            problems.push("--duration-secs must be at least 1".to_string());
        }
        if self.enroll_concurrency == 0 || self.progress_secs == 0 || self.ack_timeout_secs == 0 {
            problems.push(
                "--enroll-concurrency, --progress-secs and --ack-timeout-secs must be at least 1"
                    .to_string(),
            );
        }
        if self.token.is_some() != self.ca_fingerprint.is_some() {
            problems.push("--token and --ca-fingerprint go together".to_string());
        }
        if self.collector.iter().any(|u| u.trim().is_empty()) {
            problems.push("--collector has an empty URL".to_string());
        }
        if self.hostname_prefix.is_empty() || self.hostname_prefix.len() > 100 {
            problems.push("--hostname-prefix must be 1..100 characters".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            bail!("bad arguments:\n  {}", problems.join("\n  "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_parses_and_lists_its_steps() {
        let r = parse_ramp("100,50,250").expect("valid");
        assert_eq!(r.steps(), [100, 150, 200, 250]);
        assert!(parse_ramp("0,1,2").is_err());
        assert!(parse_ramp("5,1").is_err());
        assert!(parse_ramp("5,0,9").is_err());
        assert!(parse_ramp("9,1,5").is_err());
    }

    #[test]
    fn several_collectors_and_pids() {
        let a = Args::try_parse_from([
            "forewarn-loadgen",
            "--collector",
            "https://127.0.0.1:4443,https://127.0.0.1:4444",
            "--collector-pid",
            "10,11",
            "--collector-pid",
            "12",
            "--watch-comm",
            "postgres",
        ])
        .expect("parses");
        assert_eq!(
            a.collector,
            ["https://127.0.0.1:4443", "https://127.0.0.1:4444"]
        );
        assert_eq!(a.collector_pid, [10, 11, 12]);
        assert_eq!(a.watch_comm.as_deref(), Some("postgres"));
        assert!(a.validate().is_ok());

        let one = Args::try_parse_from(["forewarn-loadgen", "--collector", "https://h:1"])
            .expect("parses");
        assert_eq!(one.collector, ["https://h:1"]);
        assert!(one.collector_pid.is_empty());
        assert!(!one.enroll_only);

        assert!(Args::try_parse_from(["forewarn-loadgen"]).is_err());
        assert!(
            Args::try_parse_from([
                "forewarn-loadgen",
                "--collector",
                "https://h:1",
                "--collector-pid",
                "1,x"
            ])
            .is_err()
        );
        let empty = Args::try_parse_from(["forewarn-loadgen", "--collector", "https://h:1,"])
            .expect("parses");
        assert!(empty.validate().is_err());
    }
}
