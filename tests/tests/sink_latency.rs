//! Benchmark (ignored by default): delivery latency of every HTTP sink kind
//! to its local contract fake, from the ticket change (the outbox row's
//! `created_at`, written in the ticket's transaction) to the collector
//! recording the receiver's 2xx (`delivered_at`): an upper bound of "change
//! to request received". One simulated agent opens `FOREWARN_BENCH_TICKETS`
//! tickets (default 100) one report at a time, then resolves them; every
//! event goes to all seven sinks at once. Prints one line per sink.
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
    eprintln!("opening {tickets} tickets, then resolving them (7 sinks each)");
    for i in 0..tickets {
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
    let mut by_sink: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &rows {
        let delay = sim::ms(&r["delivered_at"]) - sim::ms(&r["created_at"]);
        by_sink
            .entry(r["sink"].as_str().unwrap_or("?").to_string())
            .or_default()
            .push(delay);
    }
    eprintln!(
        "machine: {} cores; SQLite store; debug build; {} events per sink",
        std::thread::available_parallelism().map_or(0, usize::from),
        tickets * 2
    );
    for (sink, mut d) in by_sink {
        d.sort_unstable();
        eprintln!(
            "LATENCY sink={sink} n={} p50_ms={} p99_ms={} max_ms={}",
            d.len(),
            percentile(&d, 0.50),
            percentile(&d, 0.99),
            d.last().copied().unwrap_or(0)
        );
        assert_eq!(d.len(), tickets * 2, "{sink}: one delivery per event");
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
