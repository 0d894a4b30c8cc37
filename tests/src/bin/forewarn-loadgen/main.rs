//! `forewarn-loadgen`: many simulated agents against a running collector,
//! over the real protocol and real mTLS, measuring how fast it acknowledges
//! their reports. Wiring only: flags (`cli`), the open-file limit, the
//! runtime, enrollment (`enroll`), the fleet (`agent`, `run`) and the
//! summary with its `loadgen-result ` JSON line. `--help` lists every flag.

#![forbid(unsafe_code)]

mod agent;
mod checks;
mod cli;
mod enroll;
mod procs;
mod run;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use forewarn_agent::endpoint::CollectorUrl;
use serde_json::{Value, json};

use crate::agent::Shared;
use crate::checks::CheckSet;
use crate::cli::Args;
use crate::enroll::StateDir;
use crate::procs::Watch;
use crate::run::Runner;

fn main() -> Result<()> {
    let args = Args::parse();
    args.validate()?;
    raise_nofile(args.max_agents());
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let ok = rt.enable_all().build()?.block_on(run(args))?;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// Each agent holds one socket: raise the soft open-file limit to what N
/// agents need (plus room for enrollment and the runtime), up to the hard
/// limit, and try to raise the hard one too (root may).
fn raise_nofile(agents: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let want = agents as u64 + 1024;
    let old = getrlimit(Resource::Nofile);
    if old.current.is_none_or(|c| c >= want) {
        return;
    }
    let hard = old.maximum.map_or(want, |m| m.max(want));
    let raised = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: Some(hard),
        },
    )
    .or_else(|_| {
        let capped = old.maximum.map_or(want, |m| m.min(want));
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(capped),
                maximum: old.maximum,
            },
        )
    });
    let now = getrlimit(Resource::Nofile).current;
    if raised.is_err() || now.is_some_and(|c| c < want) {
        println!(
            "warning: open-file limit {} is below the {want} that {agents} agents need \
             (raise it with ulimit -n)",
            now.map_or_else(|| "?".to_string(), |c| c.to_string())
        );
    }
}

/// The whole run; `Ok(false)` if it ended without the figure it was for.
async fn run(args: Args) -> Result<bool> {
    let urls = args
        .collector
        .iter()
        .map(|u| CollectorUrl::parse(u.trim()).map_err(|e| anyhow::anyhow!("--collector: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let server_name = args
        .server_name
        .clone()
        .unwrap_or_else(|| urls[0].host().to_string());
    let fleet = enroll::prepare(&args, &urls[0], &server_name).await?;
    let n = args.max_agents();
    if args.enroll_only {
        let result = json!({
            "mode": "enroll",
            "agents": n,
            "enrolled_now": fleet.enrolled_now,
            "enrolled_before": fleet.reused,
        });
        println!("loadgen-result {result}");
        return Ok(true);
    }
    let collectors: Vec<String> = urls.iter().map(ToString::to_string).collect();
    let shared = Arc::new(Shared {
        urls,
        server_name,
        ca_pem: fleet.ca_pem,
        state: StateDir::new(&args.state),
        checks: CheckSet::new(args.checks),
        interval: Duration::from_secs(args.interval_secs),
        // Half of the state changes raise a check, half clear it.
        raise_every_secs: (args.change_rate > 0.0).then(|| 3600.0 / (args.change_rate / 2.0)),
        problem_secs: args.problem_secs,
        ack_timeout: Duration::from_secs(args.ack_timeout_secs),
        run_id: format!("loadgen-{}", uuid::Uuid::new_v4().simple()),
        stats: stats::Stats::default(),
    });
    let mut result = json!({
        "agents": n,
        "enrolled_now": fleet.enrolled_now,
        "enrolled_before": fleet.reused,
        "checks": args.checks,
        "interval_secs": args.interval_secs,
        "change_rate": args.change_rate,
        "collectors": collectors,
        "watch_comm": args.watch_comm,
    });
    let mut runner = Runner::new(
        shared,
        fleet.agents,
        Duration::from_secs(args.progress_secs),
        Watch {
            pids: args.collector_pid.clone(),
            comm: args.watch_comm.clone(),
            parent: args.watch_parent,
        },
    );
    let warmup = Duration::from_secs(args.warmup_secs);
    let duration = Duration::from_secs(args.duration_secs);
    let ok = if let Some(ramp) = args.ramp {
        let mut steps = Vec::new();
        let mut held = None;
        let mut failed = None;
        for n in ramp.steps() {
            println!("=== ramp step: {n} agents");
            let step = runner.step(n, warmup, duration).await;
            step.print(&format!("step {n}"));
            let ok = step.held(args.p99_ms);
            steps.push(serde_json::to_value(&step)?);
            if !ok {
                println!(
                    "step {n} missed the bar (p99 <= {} ms, no errors, all connected)",
                    args.p99_ms
                );
                failed = Some(n);
                break;
            }
            held = Some(n);
            if runner.interrupted() {
                break;
            }
        }
        match held {
            Some(h) => println!("largest N that held: {h}"),
            None => println!("largest N that held: none (the first step missed)"),
        }
        merge(
            &mut result,
            json!({
                "mode": "ramp",
                "p99_bar_ms": args.p99_ms,
                "max_ok_agents": held,
                "first_failed_agents": failed,
                "steps": steps,
            }),
        );
        true
    } else if args.reconnect {
        let timeout = Duration::from_secs(args.reconnect_timeout_secs);
        match runner.reconnect(n, timeout).await {
            Ok((step, secs)) => {
                // The agent that completed it printed "reconnected N agents in X s".
                step.print("reconnect");
                merge(&mut result, serde_json::to_value(&step)?);
                merge(
                    &mut result,
                    json!({"mode": "reconnect", "reconnect_secs": secs}),
                );
                true
            }
            Err(e) => {
                println!("reconnect measurement failed: {e:#}");
                merge(
                    &mut result,
                    json!({"mode": "reconnect", "reconnect_secs": null, "error": format!("{e:#}")}),
                );
                false
            }
        }
    } else {
        let step = runner.step(n, warmup, duration).await;
        step.print("steady");
        merge(&mut result, serde_json::to_value(&step)?);
        merge(&mut result, json!({"mode": "steady"}));
        true
    };
    merge(&mut result, json!({"reconnects_secs": runner.reconnects()}));
    runner.shutdown().await;
    println!(
        "loadgen-result {}",
        serde_json::to_string(&result).context("result JSON")?
    );
    Ok(ok)
}

/// Adds `extra`'s keys to `into` (both objects).
fn merge(into: &mut Value, extra: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), extra) {
        a.extend(b);
    }
}
