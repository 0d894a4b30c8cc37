//! Benchmark: failure → ticket latency through the whole collector, with
//! confirmation off (default rules), over many events.
//!
//! A simulated agent (real enrollment, real mTLS `Ingest/Session`, see
//! `tests/tests/common/sim.rs`) reports a check turning CRIT; we time
//! - the acknowledgement (the report is committed and the ticket decided),
//! - the ticket being visible in `GET /api/v1/tickets?state=open`,
//! - the webhook receiver getting the `firing` notification,
//!
//! then the check turns OK again and we wait for the resolution before the
//! next event. Prints median / p90 / p99 / max. Not part of the test suite:
//!
//!     cargo build --release --bins
//!     cargo bench -p forewarn-tests --bench ticket_latency -- [EVENTS]
//!
//! On PostgreSQL: `source tests/postgres.sh` (a private server), then the
//! same with `FOREWARN_BENCH_BACKEND=postgres`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use common::Collector;
use common::sim::{SimAgent, State as Check};

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn hook(State(arrivals): State<Arrivals>, body: Bytes) -> StatusCode {
    let now = Instant::now();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && v["status"] == "firing"
        && let Some(item) = v["item"].as_str()
    {
        arrivals
            .lock()
            .expect("lock")
            .entry(item.to_string())
            .or_insert(now);
    }
    StatusCode::NO_CONTENT
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{name:<34} n={:>4}  median {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
        samples.len(),
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(pct(0.99)),
        ms(*samples.last().expect("samples"))
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let arrivals: Arrivals = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let hook_addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let backend = common::Backend::for_bench();
    println!("store: {backend:?}");
    let collector = Collector::start_on(
        backend,
        &format!(
            "[[sinks.webhook]]\nname = \"bench\"\nurl = \"http://{hook_addr}/hook\"\nsecret = \"bench-secret\"\n"
        ),
    );
    let (token, _) = collector.token("default", &["--role", "server"]);
    let mut agent = SimAgent::enroll(&collector, &token, "bench-host").await;
    agent.connect(15).await;
    let http = reqwest::Client::new();
    let open_url = format!("http://{}/api/v1/tickets?state=open", collector.http);

    let (mut acked, mut visible, mut hooked) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..events {
        let item = format!("/bench/{i}");
        let t0 = Instant::now();
        agent
            .change("disk", &item, Check::Crit, "bench: 99% used")
            .await;
        acked.push(t0.elapsed());
        loop {
            let open: serde_json::Value = http
                .get(&open_url)
                .bearer_auth(&collector.api_key)
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            if open
                .as_array()
                .is_some_and(|a| a.iter().any(|t| t["item"] == item.as_str()))
            {
                visible.push(t0.elapsed());
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "ticket {item} never visible"
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(at) = arrivals.lock().expect("lock").get(&item) {
                hooked.push(at.duration_since(t0));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "webhook for {item} never arrived"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        agent
            .change("disk", &item, Check::Ok, "bench: 10% used")
            .await;
    }
    println!(
        "failure -> ticket over {events} events (loopback, release binaries, {backend:?}, confirmation off)"
    );
    report("report committed (ack)", acked);
    report("ticket visible in the API", visible);
    report("webhook received (firing)", hooked);
}
