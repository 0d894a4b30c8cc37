//! `[limits]` end to end: series caps and clock skew, with simulated agents
//! (real enrollment, real mTLS, the real session protocol) against a real
//! collector, observed through the HTTP API, `/metrics` and the audit log.
//!
//! Every report a [`SimAgent`] sends must be acknowledged before the next
//! step (it panics otherwise), so "every report acknowledged" is asserted
//! by the scripts themselves.

mod common;

use std::time::Duration;

use common::sim::{SimAgent, State, ms, now_ms};
use common::{AgentHome, Collector, enroll_ok, eventually};
use serde_json::Value;

/// Generous: two cores run several collectors at once.
const WAIT: Duration = Duration::from_secs(30);

/// Open tickets of one host for `item`.
async fn open_tickets(c: &Collector, a: &SimAgent, item: &str) -> Vec<Value> {
    c.get("/api/v1/tickets?state=open")
        .await
        .as_array()
        .expect("ticket list")
        .iter()
        .filter(|t| t["agent_id"] == a.agent_id.as_str() && t["item"] == item)
        .cloned()
        .collect()
}

fn mount(i: usize) -> String {
    format!("/mnt/{i:02}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_over_its_series_cap_is_acknowledged_and_its_known_series_keep_working() {
    let c = Collector::start_with_config("[limits]\nmax_series_per_agent = 20\n");
    let (token, _) = c.token("default", &[]);
    let mut a = SimAgent::enroll(&c, &token, "many-mounts").await;
    a.connect(60).await;
    assert_eq!(c.rejected("series_cap").await, 0.0);

    // 50 distinct items in 5 reports of 10: each report is acknowledged;
    // the first 20 items are stored, the other 30 dropped.
    for batch in 0..5 {
        let items: Vec<String> = (batch * 10..batch * 10 + 10).map(mount).collect();
        let results: Vec<_> = items
            .iter()
            .map(|m| ("disk", m.as_str(), State::Ok, "fine"))
            .collect();
        a.changes(&results).await;
    }
    let detail = c.get(&format!("/api/v1/agents/{}", a.agent_id)).await;
    let stored: Vec<&str> = detail["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|ch| ch["item"].as_str().expect("item"))
        .collect();
    let first_20: Vec<String> = (0..20).map(mount).collect();
    assert_eq!(stored, first_20, "{detail}");
    assert_eq!(c.rejected("series_cap").await, 30.0);

    // A heartbeat carries all 50: 20 applied, 30 dropped again.
    a.heartbeat().await;
    assert_eq!(c.rejected("series_cap").await, 60.0);

    // A dropped item failing opens nothing; a stored one opens a ticket.
    a.change("disk", &mount(42), State::Crit, "/mnt/42 full")
        .await;
    a.change("disk", &mount(3), State::Crit, "/mnt/03 full")
        .await;
    let t = eventually(WAIT, "a ticket for /mnt/03", || async {
        open_tickets(&c, &a, &mount(3)).await.pop()
    })
    .await;
    assert_eq!(t["severity"], "crit", "{t}");
    assert!(open_tickets(&c, &a, &mount(42)).await.is_empty());
    assert_eq!(c.rejected("series_cap").await, 61.0);
    let detail = c.get(&format!("/api/v1/agents/{}", a.agent_id)).await;
    assert_eq!(detail["checks"].as_array().expect("checks").len(), 20);

    // Audited once (per agent per hour), logged at warn once a minute at
    // most — not once per report.
    let audit = c.get("/api/v1/audit").await;
    let entries: Vec<&Value> = audit
        .as_array()
        .expect("audit list")
        .iter()
        .filter(|e| e["action"] == "agent.series_cap")
        .collect();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["target"], format!("agent/{}", a.agent_id));
    let warns = c
        .proc
        .log_text()
        .lines()
        .filter(|l| l.contains("agent over its series cap"))
        .count();
    assert!((1..=2).contains(&warns), "{warns} warn lines for 7 reports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_clock_is_flagged_and_decides_nothing() {
    // Tickets wait 2 s of confirmation: in collector time, whatever the
    // agent's clock says.
    let c = Collector::start_with_config("[tickets.rules.service]\nconfirm_secs = 2\n");
    let (token, _) = c.token("default", &["--max-uses", "2"]);
    let mut ahead = SimAgent::enroll(&c, &token, "ahead").await;
    let mut normal = SimAgent::enroll(&c, &token, "normal").await;
    ahead.set_clock_offset(600_000);
    ahead.connect(60).await;
    normal.connect(60).await;

    let agents = c.get("/api/v1/agents").await;
    let of = |id: &str| -> Value {
        agents
            .as_array()
            .expect("agent list")
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {agents}"))
    };
    let (a, n) = (of(&ahead.agent_id), of(&normal.agent_id));
    let offset = a["clock_offset_ms"].as_i64().expect("offset");
    assert!((-600_000..-595_000).contains(&offset), "{a}");
    assert_eq!(a["clock_skewed"], true, "{a}");
    let offset = n["clock_offset_ms"].as_i64().expect("offset");
    assert!(offset.abs() < 5_000, "{n}");
    assert_eq!(n["clock_skewed"], false, "{n}");
    let detail = c.get(&format!("/api/v1/agents/{}", ahead.agent_id)).await;
    assert_eq!(detail["clock_skewed"], true, "{detail}");
    assert_eq!(detail["clock_offset_ms"], a["clock_offset_ms"]);
    // Warned at session start, for the skewed agent only.
    let log = c.proc.log_text();
    let warns: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("agent clock is skewed"))
        .collect();
    assert_eq!(warns.len(), 1, "{log}");
    assert!(warns[0].contains(&ahead.agent_id), "{}", warns[0]);

    // Its failure, stamped 10 minutes ahead, is confirmed and dated in
    // collector time: no sooner than 2 s after it was sent, not 10 minutes
    // later, and detected when it happened.
    let sent = now_ms();
    ahead
        .change("service", "sshd", State::Crit, "sshd stopped")
        .await;
    let t = eventually(WAIT, "the skewed agent's ticket", || async {
        open_tickets(&c, &ahead, "sshd").await.pop()
    })
    .await;
    let opened = ms(&t["opened_at"]);
    let detected = ms(&t["detected_at"]);
    assert!(
        opened >= sent + 2_000,
        "opened {opened} before confirmation (sent {sent})"
    );
    assert!(
        (sent - 1_000..sent + 5_000).contains(&detected),
        "detected {detected}, sent {sent}: {t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_agent_reports_its_clock_at_hello() {
    let c = Collector::start();
    let home = AgentHome::new("[checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n");
    let agent_id = enroll_ok(&c, &home, "default");
    let _agent = home.run();
    let a = eventually(WAIT, "the agent online with a clock offset", || async {
        let (status, v) = c
            .get_with(&c.api_key, &format!("/api/v1/agents/{agent_id}"))
            .await;
        (status == 200 && v["status"] == "online" && v["clock_offset_ms"].is_i64()).then_some(v)
    })
    .await;
    // Same machine, same clock: off by the time a hello takes to arrive.
    let offset = a["clock_offset_ms"].as_i64().expect("offset");
    assert!(offset.abs() < 5_000, "{a}");
    assert_eq!(a["clock_skewed"], false, "{a}");
}
