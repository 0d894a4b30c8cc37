//! Benchmark: time from a disk crossing its critical threshold on the agent's
//! machine to the ticket being visible in the collector's HTTP API.
//!
//! Real release binaries, real mTLS, real SQLite, a real tmpfs (needs root).
//! Each round waits a random 0–1000 ms (so the fill lands at a random point
//! of the agent's 1 s disk poll), fills the tmpfs, polls the API every 5 ms
//! until the ticket is open, drains it and waits for the resolution. Two
//! figures per round: fill → ticket visible in the API (includes the wait
//! for the next disk poll), and check turned CRIT on the agent → ticket
//! opened in the collector (the agent's `since` vs the ticket's
//! `opened_at`: report, mTLS, commit). Prints every round and the
//! median / p90 / max. Not part of the test suite: run it with
//!
//!     cargo build --release --bins
//!     cargo bench -p forewarn-tests --bench detect_latency -- [ROUNDS]
//!
//! On PostgreSQL: `source tests/postgres.sh` (a private server), then the
//! same with `FOREWARN_BENCH_BACKEND=postgres`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{AgentHome, Collector, Tmpfs, enroll_ok};

async fn open_ticket(c: &Collector, agent_id: &str) -> Option<i64> {
    let open = c.get("/api/v1/tickets?state=open").await;
    open.as_array()?
        .iter()
        .find(|t| t["agent_id"] == agent_id && t["check"] == "disk")
        .and_then(|t| t["id"].as_i64())
}

fn parse_ts(v: &serde_json::Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        v.as_str().expect("timestamp"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("rfc3339")
}

/// CRIT seen on the agent → ticket opened at the collector, for ticket `id`.
async fn pipeline(c: &Collector, agent_id: &str, id: i64) -> Duration {
    let ticket = c.get(&format!("/api/v1/tickets/{id}")).await;
    let agent = c.get(&format!("/api/v1/agents/{agent_id}")).await;
    let check = agent["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|k| k["item"] == ticket["item"]))
        .expect("check state")
        .clone();
    let d = parse_ts(&ticket["opened_at"]) - parse_ts(&check["since"]);
    Duration::try_from(d).unwrap_or_default()
}

fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(u64::from(nanos % 1000))
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{name} over {} rounds: median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        samples.len(),
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(*samples.last().expect("samples"))
    );
}

async fn wait_for<F, Fut>(what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    // Filling and draining the same disk every round would (rightly) be seen
    // as flapping after a few rounds; the bench measures detection, so
    // flapping detection is off for it.
    let backend = common::Backend::for_bench();
    println!("store: {backend:?}");
    let collector = Collector::start_on(
        backend,
        "[tickets.rules.disk]\nflap_start_percent = 100.0\nflap_stop_percent = 99.0\n",
    );
    let mnt = Tmpfs::mount("8m");
    let home = AgentHome::new(&format!(
        "[checks.disk]\nmounts = [{:?}]\ncrit_used_percent = 90.0\nwarn_used_percent = 80.0\n\
         [checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n",
        mnt.path()
    ));
    let agent_id = enroll_ok(&collector, &home, "default");
    let _agent = home.run();
    wait_for("agent online", || async {
        collector.get(&format!("/api/v1/agents/{agent_id}")).await["status"] == "online"
    })
    .await;

    let mut visible = Vec::new();
    let mut piped = Vec::new();
    let fill = mnt.path().join("fill.bin");
    for round in 1..=rounds {
        tokio::time::sleep(jitter()).await;
        std::fs::write(&fill, vec![7u8; 7 * 1024 * 1024 + 512 * 1024]).expect("fill");
        let d = wait_for("ticket open", || async {
            open_ticket(&collector, &agent_id).await.is_some()
        })
        .await;
        let id = open_ticket(&collector, &agent_id)
            .await
            .expect("open ticket");
        let p = pipeline(&collector, &agent_id, id).await;
        println!(
            "round {round:>2}: fill -> ticket visible {:>7.1} ms; agent CRIT -> ticket opened {:>6.1} ms",
            d.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3
        );
        visible.push(d);
        piped.push(p);
        std::fs::remove_file(&fill).expect("drain");
        wait_for("ticket resolved", || async {
            open_ticket(&collector, &agent_id).await.is_none()
        })
        .await;
    }
    summary(
        "fill -> ticket visible in the API (disk poll_interval_ms = 1000)",
        visible,
    );
    summary("agent CRIT -> ticket opened at the collector", piped);
}
