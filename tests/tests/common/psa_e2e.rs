//! One end-to-end scenario for a two-way PSA sink against its contract
//! fake: a real collector and a real agent whose disk check fails on a
//! filling tmpfs.
//!
//! 1. The PSA is down (503) for 30 s while the fault opens the ticket: the
//!    create waits, then arrives once.
//! 2. The ticket in the tenant's company, queue/team and mapped priority.
//! 3. Acknowledge through the API → a note.
//! 4. A technician closes the PSA ticket → `closed_remotely` naming them on
//!    the Forewarn ticket; the disk still fails → a new PSA ticket naming
//!    the closed one, which is not touched again.
//! 5. Recovery → a note and the closed status on the new PSA ticket.
//! 6. Wrong credentials (401) → the delivery parks, with its reason in
//!    `GET /api/v1/outbox`.
//!
//! No secret appears in the collector's log or in an API answer; the fake
//! saw no contract violation; LATENCY is printed.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::fake::{Fake, Request, Vendor};
use super::{Backend, Collector, eventually};

/// A PSA ticket as a fake holds it.
#[derive(Debug, Clone)]
pub struct PsaTicket {
    pub id: i64,
    /// Company (Autotask) or client (Halo) id.
    pub company: i64,
    pub title: String,
    pub body: String,
    /// The PSA's priority value, as JSON text.
    pub priority: String,
    /// Queue id (Autotask) or team name (Halo), as text.
    pub queue: String,
    pub closed: bool,
    /// Note (action) texts, oldest first.
    pub notes: Vec<String>,
}

/// What the scenario needs of a vendor's fake.
pub trait PsaFake: Vendor {
    fn tickets(&self) -> Vec<PsaTicket>;
    /// Closes `id` as a technician would, in the PSA's UI; their name.
    fn close_as_technician(&self, id: i64) -> String;
    /// Bodies the fake refused as the vendor would (must stay empty).
    fn refused(&self) -> Vec<String>;
    /// Whether `req` creates, notes or changes a ticket (for LATENCY).
    fn is_ticket_write(req: &Request) -> bool
    where
        Self: Sized;
}

/// What the PSA ticket must look like.
pub struct Expect {
    pub company: i64,
    pub queue: String,
    /// Forewarn priority (`P1`…) → the PSA's value as JSON text.
    pub priority: fn(&str) -> String,
    /// Every configured secret value.
    pub secrets: Vec<String>,
}

fn collector_config(data: &Path, sink: &str) -> String {
    format!(
        "data_dir = {data:?}\n[grpc]\nlisten_addr = \"127.0.0.1:0\"\n[http]\nlisten_addr = \"127.0.0.1:0\"\n\
         [tickets]\nstill_failing_after_mins = 0.05\n\
         {sink}name = \"psa\"\npoll_secs = 0.5\ntimeout_ms = 2000\nretry_initial_ms = 200\nretry_max_ms = 1000\n"
    )
}

fn ms(rfc3339: &Value) -> i64 {
    let s = rfc3339.as_str().unwrap_or_default();
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s:?}: {e}"));
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).expect("ms")
}

/// The sink's outbox rows (all states).
async fn outbox(c: &Collector, answers: &Mutex<String>) -> Vec<Value> {
    let v = c.get("/api/v1/outbox?state=all&limit=1000").await;
    answers.lock().expect("lock").push_str(&v.to_string());
    v.as_array()
        .expect("outbox list")
        .iter()
        .filter(|r| r["sink"] == "psa")
        .cloned()
        .collect()
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// Runs the scenario; `sink` is the sink's table header and vendor keys
/// (`[[sinks.autotask]]\n…`), `before_ack` runs just before the acknowledge
/// (Halo expires its tokens there).
pub async fn run<V: PsaFake>(
    backend: Backend,
    fake: &Fake<V>,
    sink: &str,
    expect: Expect,
    before_ack: impl Fn(&V),
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, collector_config(&dir.path().join("data"), sink)).expect("config");
    let collector = Collector::start_with_on(backend, dir, config);
    let answers = Mutex::new(String::new());

    let host = super::disk_host::DiskHost::start(&collector, "default").await;
    // The agent only has to exist: the fake sees the ticket it makes.
    let fill = || host.fill();
    let drain = || host.drain();

    // --- 1. Down for 30 s while the fault opens the ticket. ---
    fake.set_down(true);
    let down_at = Instant::now();
    fill();
    let opened = eventually(
        Duration::from_secs(25),
        "the create retried while down",
        || async {
            let rows = outbox(&collector, &Mutex::default()).await;
            rows.into_iter().find(|r| {
                r["event"] == "opened"
                    && r["state"] == "pending"
                    && r["attempts"].as_u64() >= Some(1)
                    && r["last_error"].as_str().is_some_and(|e| e.contains("503"))
            })
        },
    )
    .await;
    let ticket_id = opened["ticket_id"].as_i64().expect("ticket_id");
    // The outage itself lasts 30 s: a duration under test, not a wait for a result.
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down_at.elapsed())).await;
    fake.set_down(false);
    eventually(Duration::from_secs(20), "the create delivered", || async {
        let rows = outbox(&collector, &answers).await;
        rows.iter()
            .any(|r| r["id"] == opened["id"] && r["state"] == "delivered")
            .then_some(())
    })
    .await;

    // --- 2. One ticket, mapped. ---
    let tickets = fake.vendor().tickets();
    assert_eq!(
        tickets.len(),
        1,
        "one PSA ticket after the outage: {tickets:?}"
    );
    let a = tickets[0].clone();
    let fw = collector.get(&format!("/api/v1/tickets/{ticket_id}")).await;
    let priority = fw["priority"].as_str().expect("priority").to_string();
    assert_eq!(a.company, expect.company, "{a:?}");
    assert_eq!(a.queue, expect.queue, "{a:?}");
    assert_eq!(
        a.priority,
        (expect.priority)(&priority),
        "{priority} → {a:?}"
    );
    assert!(
        a.title.contains("disk") && a.title.contains("[fw-"),
        "{a:?}"
    );
    assert!(a.body.contains(&format!("/tickets/{ticket_id}")), "{a:?}");
    assert!(!a.closed);

    // --- 3. Acknowledged through the API → a note. ---
    before_ack(fake.vendor());
    let (status, _) = collector
        .post(
            &format!("/api/v1/tickets/{ticket_id}/acknowledge"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let find = |id: i64| fake.vendor().tickets().into_iter().find(|t| t.id == id);
    eventually(Duration::from_secs(15), "the acknowledge note", || async {
        find(a.id)
            .filter(|t| t.notes.iter().any(|n| n.contains("acknowledged")))
            .map(|_| ())
    })
    .await;

    // --- 4. Closed by a technician while the disk still fails. ---
    let who = fake.vendor().close_as_technician(a.id);
    let notes_at_close = find(a.id).expect("a").notes.len();
    eventually(
        Duration::from_secs(15),
        "closed_remotely naming the technician",
        || async {
            let v = collector.get(&format!("/api/v1/tickets/{ticket_id}")).await;
            v["events"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| {
                    e["kind"] == "closed_remotely"
                        && e["detail"].as_str().is_some_and(|d| d.contains(&who))
                })
                .then_some(())
        },
    )
    .await;
    let b = eventually(
        Duration::from_secs(20),
        "a new PSA ticket naming the closed one",
        || async { fake.vendor().tickets().into_iter().find(|t| t.id != a.id) },
    )
    .await;
    assert!(
        b.body
            .contains(&format!("ticket {} was closed by {who}", a.id))
            && b.body.contains("not reopened"),
        "{b:?}"
    );
    assert_eq!((b.company, &b.queue), (expect.company, &expect.queue));

    // --- 5. Recovery → a note and the closed status on the new ticket. ---
    drain();
    eventually(
        Duration::from_secs(20),
        "the new PSA ticket closed",
        || async {
            find(b.id)
                .filter(|t| t.closed && t.notes.iter().any(|n| n.contains("resolved")))
                .map(|_| ())
        },
    )
    .await;
    let a_now = find(a.id).expect("a");
    assert!(a_now.closed, "the technician's close stands: {a_now:?}");
    assert_eq!(
        a_now.notes.len(),
        notes_at_close,
        "nothing written to the closed ticket: {a_now:?}"
    );
    assert_eq!(fake.vendor().tickets().len(), 2, "no duplicate creates");

    // --- 6. Wrong credentials park with the reason. ---
    fake.set_status(Some(401));
    fill();
    let parked = eventually(Duration::from_secs(30), "a parked delivery", || async {
        outbox(&collector, &answers)
            .await
            .into_iter()
            .find(|r| r["state"] == "failed")
    })
    .await;
    let reason = parked["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("401") && reason.contains("credentials"),
        "{parked}"
    );
    fake.set_status(None);

    // --- Secrets, contract, latency. ---
    let detail = collector.get(&format!("/api/v1/tickets/{ticket_id}")).await;
    answers.lock().expect("lock").push_str(&detail.to_string());
    let answers = answers.lock().expect("lock").clone();
    let log = collector.proc.log_text();
    for s in &expect.secrets {
        assert!(
            !log.contains(s.as_str()),
            "a secret is in the collector log"
        );
        assert!(
            !answers.contains(s.as_str()),
            "a secret is in an API answer"
        );
    }
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    assert!(
        fake.vendor().refused().is_empty(),
        "{:?}",
        fake.vendor().refused()
    );

    let rows = outbox(&collector, &Mutex::default()).await;
    let writes: Vec<Request> = fake
        .requests()
        .into_iter()
        .filter(|r| V::is_ticket_write(r) && (200..300).contains(&r.status))
        .collect();
    let mut delays: Vec<i64> = rows
        .iter()
        .filter(|r| r["state"] == "delivered" && r["id"] != opened["id"])
        .filter_map(|r| {
            let at = ms(&r["created_at"]);
            writes.iter().find(|w| w.at_ms >= at).map(|w| w.at_ms - at)
        })
        .collect();
    delays.sort_unstable();
    let name = std::any::type_name::<V>()
        .rsplit("::")
        .next()
        .unwrap_or("psa")
        .to_ascii_lowercase();
    eprintln!(
        "LATENCY sink={name} p50_ms={} p99_ms={} n={}",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.len()
    );
}

// === the connector alone, against its fake ===

/// The one sink of `sink_toml` (a `[[sinks.<kind>]]` table without its
/// name), built as the collector builds it.
pub fn build(sink_toml: &str) -> std::sync::Arc<dyn forewarn_collector::sinks::Sink> {
    let cfg = forewarn_collector::Config::parse(&format!("{sink_toml}name = \"psa\"\n"))
        .expect("sink config parses");
    let ctx = forewarn_collector::sinks::SinkContext {
        public_url: "http://fw.example".into(),
    };
    let mut built = forewarn_collector::sinks::build_all(&cfg.sinks, &ctx).expect("builds");
    assert_eq!(built.len(), 1);
    built.remove(0).sink
}

/// A just-opened CRIT disk ticket of tenant `default`.
pub fn notification(priority: &str) -> forewarn_collector::sinks::Notification {
    use forewarn_collector::domain::{CheckState, TicketState};
    forewarn_collector::sinks::Notification {
        status: forewarn_collector::sinks::Status::Firing,
        event: "opened".into(),
        event_id: 1,
        detail: "opened".into(),
        actor: "engine".into(),
        at: 1_800_000_000_000,
        ticket_id: 42,
        tenant_id: "t-default".into(),
        tenant_name: "default".into(),
        site: String::new(),
        host: "db1".into(),
        agent_id: "a-1".into(),
        check: "disk".into(),
        item: "/data".into(),
        severity: CheckState::Crit,
        priority: priority.into(),
        tier: 1,
        flapping: false,
        state: TicketState::Open,
        summary: "CRIT disk /data on db1".into(),
        opened_at: 1_800_000_000_000,
        acknowledged_at: None,
        acknowledged_by: None,
        assignee: None,
        resolved_at: None,
        resolved_by: None,
    }
}

/// Delivers `n` as attempt number `attempts + 1` of delivery `key`.
pub async fn deliver(
    sink: &dyn forewarn_collector::sinks::Sink,
    n: &forewarn_collector::sinks::Notification,
    key: &str,
    attempts: u32,
) -> forewarn_collector::sinks::Outcome {
    sink.deliver(&forewarn_collector::sinks::Delivery {
        notification: n,
        key,
        attempts,
        link: None,
    })
    .await
}
