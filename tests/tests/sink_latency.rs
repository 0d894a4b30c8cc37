//! Benchmark (ignored by default): delivery latency of every HTTP sink kind
//! to its local contract fake, from the ticket change (the outbox row's
//! `created_at`, written in the ticket's transaction) to the collector
//! recording the receiver's 2xx (`delivered_at`): an upper bound of "change
//! to request received". One simulated agent opens `FOREWARN_BENCH_TICKETS`
//! tickets (default 100), one every 100 ms (latency of single events),
//! then resolves them all back to back (a burst: latency under a backlog,
//! and throughput); every event goes to all seven sinks at once. Prints one
//! line per sink and phase.
//!
//! ```sh
//! cargo build --workspace --bins
//! cargo nextest run -p forewarn-tests -E 'binary(sink_latency)' --run-ignored only --no-capture
//! ```
//!
//! Email is measured by its own end-to-end test (`tests/tests/email.rs`,
//! through a real SMTP server), not here.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::fake::{Answer, Fake, Request, Vendor};
use common::sim::{self, SimAgent, State};
use common::vendors::autotask::{Autotask, COMPANIES as AT_COMPANIES};
use common::vendors::connectwise::ConnectWise;
use common::vendors::halopsa::{CLIENTS, HaloPsa, TEAMS};
use common::vendors::pagerduty::PagerDuty;
use common::vendors::slack::Slack;
use common::vendors::teams::Teams;
use common::{Collector, eventually};

const PD_KEY: &str = "benchPdRoutingKey0123456789abcdX";
const SLACK_PATH: &str = "/services/T0BENCH/B0BENCH/benchSlackSecret";
const TEAMS_FLOW: &str = "/workflows/benchflow/triggers/manual/paths/invoke";
const TEAMS_SIG: &str = "benchTeamsSig";

/// A webhook receiver that accepts everything posted to `/hook`.
struct Hook;

impl Vendor for Hook {
    fn answer(&self, req: &Request) -> Result<Answer, String> {
        if req.path == "/hook" {
            Ok(Answer::text(200, "ok"))
        } else {
            Err(format!("unexpected path {}", req.path))
        }
    }
}

fn sinks_config(
    pd: &str,
    slack: &str,
    teams: &str,
    cw: &str,
    at: &str,
    halo: &str,
    hook: &str,
) -> String {
    let fast = "timeout_ms = 5000\nretry_initial_ms = 100\nretry_max_ms = 1000\n";
    format!(
        "[[sinks.webhook]]\nname = \"webhook\"\nurl = \"{hook}/hook\"\nsecret = \"k\"\n{fast}\
         [[sinks.pagerduty]]\nname = \"pagerduty\"\nrouting_key = \"{PD_KEY}\"\nurl = \"{pd}/v2/enqueue\"\n{fast}\
         [[sinks.slack]]\nname = \"slack\"\nwebhook_url = \"{slack}{SLACK_PATH}\"\n{fast}\
         [[sinks.teams]]\nname = \"teams\"\nwebhook_url = \"{teams}{TEAMS_FLOW}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={TEAMS_SIG}\"\n{fast}\
         [[sinks.connectwise]]\nname = \"connectwise\"\nurl = \"{cw}\"\ncompany_id = \"msp\"\npublic_key = \"pub\"\n\
         private_key = \"priv\"\nclient_id = \"client\"\nboard = \"Help Desk\"\nclosed_status = \"Closed (resolved)\"\n\
         companies.default = \"AcmeCorp\"\n{fast}\
         [[sinks.autotask]]\nname = \"autotask\"\nusername = \"api@msp.example\"\nsecret = \"at-secret\"\n\
         integration_code = \"AT-CODE\"\nzone_lookup_url = \"{at}/atservicesrest\"\nqueue = \"Monitoring Alert\"\n\
         companies.default = {}\n{fast}\
         [[sinks.halopsa]]\nname = \"halopsa\"\nurl = \"{halo}\"\nclient_id = \"app\"\nclient_secret = \"halo-secret\"\n\
         ticket_type_id = 31\nteam = {:?}\nclients.default = {}\n{fast}",
        AT_COMPANIES[0].0, TEAMS[1].1, CLIENTS[0].0
    )
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --run-ignored only"]
async fn sink_delivery_latency_to_the_local_fakes() {
    let tickets: usize = std::env::var("FOREWARN_BENCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let pd = Fake::start(PagerDuty::new(PD_KEY)).await;
    let slack = Fake::start(Slack::new(SLACK_PATH)).await;
    let teams = Fake::start(Teams::new(TEAMS_FLOW, TEAMS_SIG)).await;
    let cw = Fake::start(ConnectWise::new("msp", "pub", "priv", "client")).await;
    let at = Fake::start(Autotask::new("api@msp.example", "at-secret", "AT-CODE")).await;
    let halo = Fake::start(HaloPsa::new("app", "halo-secret", 3600)).await;
    let hook = Fake::start(Hook).await;
    let c = Collector::start_on(
        common::Backend::Sqlite,
        &sinks_config(
            &pd.url(),
            &slack.url(),
            &teams.url(),
            &cw.url(),
            &at.url(),
            &halo.url(),
            &hook.url(),
        ),
    );
    let (token, _) = c.token("default", &["--role", "server"]);
    let mut a = SimAgent::enroll(&c, &token, "bench01").await;
    a.connect(15).await;
    eprintln!(
        "opening {tickets} tickets one per 100 ms, then resolving them at once (7 sinks each)"
    );
    // Load pacing, not waiting for a result.
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    for i in 0..tickets {
        pace.tick().await;
        a.change("service", &format!("svc{i:04}"), State::Crit, "stopped")
            .await;
    }
    for i in 0..tickets {
        a.change("service", &format!("svc{i:04}"), State::Ok, "running")
            .await;
    }
    let want = tickets * 2 * 7;
    let rows = eventually(Duration::from_secs(300), "every delivery made", || {
        let c = &c;
        async move {
            let v = c.get("/api/v1/outbox?limit=1000&state=all").await;
            let mut rows = v.as_array().cloned().unwrap_or_default();
            let mut offset = rows.len();
            while offset < want {
                let more = c
                    .get(&format!(
                        "/api/v1/outbox?limit=1000&offset={offset}&state=all"
                    ))
                    .await;
                let more = more.as_array().cloned().unwrap_or_default();
                if more.is_empty() {
                    break;
                }
                offset += more.len();
                rows.extend(more);
            }
            let done = rows.iter().filter(|r| r["state"] == "delivered").count();
            (rows.len() >= want && done == rows.len()).then_some(rows)
        }
    })
    .await;
    // (sink, event) → (delays, first created, last delivered)
    let mut by: BTreeMap<(String, String), (Vec<i64>, i64, i64)> = BTreeMap::new();
    for r in &rows {
        let (created, delivered) = (sim::ms(&r["created_at"]), sim::ms(&r["delivered_at"]));
        let e = by
            .entry((
                r["sink"].as_str().unwrap_or("?").to_string(),
                r["event"].as_str().unwrap_or("?").to_string(),
            ))
            .or_insert((Vec::new(), i64::MAX, i64::MIN));
        e.0.push(delivered - created);
        e.1 = e.1.min(created);
        e.2 = e.2.max(delivered);
    }
    eprintln!(
        "machine: {} cores; SQLite store; debug build; {tickets} paced opens + {tickets} burst resolves per sink",
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    for ((sink, event), (mut d, first, last)) in by {
        d.sort_unstable();
        let phase = if event == "opened" { "paced" } else { "burst" };
        let rate = d.len() as f64 * 1000.0 / ((last - first).max(1) as f64);
        eprintln!(
            "LATENCY sink={sink} phase={phase} n={} p50_ms={} p99_ms={} max_ms={} rate_per_s={rate:.0}",
            d.len(),
            percentile(&d, 0.50),
            percentile(&d, 0.99),
            d.last().copied().unwrap_or(0)
        );
        assert_eq!(d.len(), tickets, "{sink} {event}: one delivery per event");
    }
    for (name, v) in [
        ("pagerduty", pd.violations()),
        ("slack", slack.violations()),
        ("teams", teams.violations()),
        ("connectwise", cw.violations()),
        ("autotask", at.violations()),
        ("halopsa", halo.violations()),
        ("webhook", hook.violations()),
    ] {
        assert!(v.is_empty(), "{name}: {v:?}");
    }
}
