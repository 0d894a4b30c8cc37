//! The collector's PostgreSQL goes away while it runs, then comes back.
//!
//! The test starts a private PostgreSQL server of its own (never the shared
//! one the other tests use, since it stops it mid-test), a collector on it
//! and a real agent with two disks on tmpfs. A CRIT opens a ticket; then
//! the server crashes (`pg_ctl stop -m immediate`). While it is down,
//! `/healthz` must answer 503 and the collector must acknowledge nothing,
//! while the agent keeps observing (the first disk recovers, the second
//! fills) and keeps those reports in its on-disk spool. The server starts
//! again on the same port and data dir with the agent frozen (SIGSTOP):
//! the collector must turn healthy by itself, not because a report
//! happened to commit. Then the agent resumes and every report must arrive
//! once: the store's delivery records against the agent's log of what it
//! spooled and had acknowledged, one ticket per problem, the first
//! resolved and the second open. It prints the figures (`--no-capture`).
//!
//! The server is `common::postgres_server::PostgresServer`; the delivery
//! records are read with `common::delivery::stored_in`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::delivery::{self, ReportId, count_lines, line_with, state_change_spooled};
use common::postgres_server::PostgresServer;
use common::{AgentHome, Collector, Proc, Store, Tmpfs, enroll_ok, eventually};
use serde_json::Value;
use sqlx::Connection as _;

// ---------------------------------------------------------------------------
// Reading the collector and its database
// ---------------------------------------------------------------------------

/// `GET /healthz`: status, JSON body and how long the answer took; `None`
/// if it did not answer.
async fn healthz(collector: &Collector) -> Option<(u16, Value, Duration)> {
    let asked = Instant::now();
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
        .get(format!("http://{}/healthz", collector.http))
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    Some((status, body, asked.elapsed()))
}

/// One ticket row as the database holds it.
#[derive(Debug, sqlx::FromRow)]
struct TicketRow {
    id: i64,
    check_kind: String,
    item: String,
    fingerprint: String,
    state: String,
}

async fn tickets(url: &str, agent_id: &str) -> Vec<TicketRow> {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let rows = sqlx::query_as(
        "SELECT id, check_kind, item, fingerprint, state FROM tickets \
         WHERE agent_id = $1 ORDER BY id",
    )
    .bind(agent_id)
    .fetch_all(&mut conn)
    .await
    .expect("read tickets");
    let _ = conn.close().await;
    rows
}

/// Event kinds of one ticket's timeline, in order.
async fn events(url: &str, ticket: i64) -> Vec<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let kinds =
        sqlx::query_scalar("SELECT kind FROM ticket_events WHERE ticket_id = $1 ORDER BY id")
            .bind(ticket)
            .fetch_all(&mut conn)
            .await
            .expect("read ticket_events");
    let _ = conn.close().await;
    kinds
}

/// Open tickets sharing a (tenant, fingerprint) with another open one.
async fn open_twins(url: &str) -> Vec<(String, String, i64)> {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let rows = sqlx::query_as(
        "SELECT tenant_id, fingerprint, COUNT(*) FROM tickets WHERE state = 'open' \
         GROUP BY tenant_id, fingerprint HAVING COUNT(*) > 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("read tickets");
    let _ = conn.close().await;
    rows
}

/// The disk ticket of `item` as the API lists it, if any.
async fn disk_ticket(collector: &Collector, agent_id: &str, item: &str) -> Option<Value> {
    let all = collector.get("/api/v1/tickets?state=all").await;
    all.as_array()?
        .iter()
        .find(|t| t["agent_id"] == agent_id && t["check"] == "disk" && t["item"] == item)
        .cloned()
}

// ---------------------------------------------------------------------------
// The agent
// ---------------------------------------------------------------------------

fn disk_config(mounts: &[&Path]) -> String {
    format!(
        "[checks.disk]\nmounts = {mounts:?}\nwarn_used_percent = 70.0\ncrit_used_percent = 90.0\n\
         poll_interval_ms = 200\ntrend_enabled = false\n\
         [checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n"
    )
}

/// Fills a 1 MiB tmpfs to ~95 % (CRIT at 90 %).
fn fill(mount: &Path) -> PathBuf {
    let path = mount.join("fill.bin");
    std::fs::write(&path, vec![0xA5u8; 1024 * 1024 - 48 * 1024]).expect("fill tmpfs");
    path
}

/// `kill -<sig>` to an agent process (STOP freezes it, CONT resumes it).
fn signal(agent: &Proc, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(agent.child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {}", agent.child.id());
}

/// Failed delivery attempts the agent logged: sessions lost and sessions
/// that could not open.
fn failed_attempts(log: &str) -> usize {
    count_lines(log, &["session lost"]) + count_lines(log, &["cannot open session"])
}

/// The `queued=` count of the agent's latest "session lost" line.
fn last_queued(log: &str) -> Option<String> {
    log.lines()
        .rfind(|l| l.contains("session lost"))
        .and_then(|l| delivery::field(l, "queued"))
        .map(str::to_string)
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

/// The collector's PostgreSQL pool waits this long for a connection before
/// a store call fails (`collector/src/store/postgres/mod.rs`).
const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_stops_acks_and_recovers_by_itself() {
    let started = Instant::now();
    // Declared first, dropped last: the server outlives the collector.
    let pg = PostgresServer::start();
    pg.create_db("forewarn").await;
    let url = pg.url("forewarn");
    println!("store outage: private PostgreSQL on {url}");
    let store = Store::Postgres(url.clone());

    // The outage silences the agent for a while; an "agent overdue" ticket
    // is not what this test is about.
    let kek_dir = tempfile::tempdir().expect("tempdir");
    let kek = kek_dir.path().join("kek");
    std::fs::write(&kek, "7".repeat(64)).expect("kek");
    let collector = Collector::start_with_config(&format!(
        "[store]\nurl = {url:?}\n[pki]\nkek_file = {kek:?}\n[tickets]\noverdue_after_intervals = 20\n"
    ));
    let (status, body, _) = healthz(&collector).await.expect("healthz answers");
    assert_eq!(status, 200, "healthy at the start: {body}");

    let mounts = [Tmpfs::mount("1m"), Tmpfs::mount("1m")];
    let paths: Vec<&Path> = mounts.iter().map(Tmpfs::path).collect();
    let items: Vec<String> = paths
        .iter()
        .map(|p| p.to_str().expect("utf-8 path").to_string())
        .collect();
    let (a, b) = (items[0].as_str(), items[1].as_str());
    let home = AgentHome::new(&disk_config(&paths));
    let agent_id = enroll_ok(&collector, &home, "default");
    let agent = home.run_with("agent.log", delivery::AGENT_LOG);
    eventually(
        Duration::from_secs(30),
        "agent online with both disks OK",
        || async {
            let detail = collector.agent(&agent_id).await?;
            let ok = |item: &str| {
                common::check_in(&detail, "disk", item).is_some_and(|c| c["state"] == "ok")
            };
            (ok(a) && ok(b)).then_some(())
        },
    )
    .await;

    // A problem before the outage: disk A CRIT, ticket open.
    let fill_a = fill(paths[0]);
    let ticket_a = eventually(Duration::from_secs(30), "ticket on disk A", || async {
        disk_ticket(&collector, &agent_id, a)
            .await
            .filter(|t| t["state"] == "open")
    })
    .await;
    // Start the outage with nothing in flight.
    eventually(
        Duration::from_secs(30),
        "everything spooled so far acknowledged",
        || async {
            let log = agent.log_text();
            delivery::spooled(&log)
                .is_subset(&delivery::acknowledged(&log))
                .then_some(())
        },
    )
    .await;

    // The database crashes.
    let before = agent.log_text();
    let spooled_before = delivery::spooled(&before);
    // Index of the agent's last log line before the outage.
    let last_before = before.lines().count().checked_sub(1);
    let failed_before = failed_attempts(&before);
    pg.stop("immediate");
    let down = Instant::now();
    let collector_lines_before = collector.proc.log_text().lines().count();

    let (status, health, took) = eventually(
        Duration::from_secs(60),
        "/healthz answers 503 with PostgreSQL down",
        || async { healthz(&collector).await.filter(|(s, ..)| *s == 503) },
    )
    .await;
    let to_503 = down.elapsed();
    assert!(
        health["status"].as_str().is_some_and(|s| s != "ok"),
        "503 with a JSON status: {health}"
    );
    let committed_at_503 = delivery::reports_counted(&collector, "committed").await;
    println!(
        "store outage: PostgreSQL stopped (immediate) -> /healthz {status} after {to_503:?} \
         (that request took {took:?}): {health}"
    );

    // The agent keeps observing: A recovers, B fills.
    std::fs::remove_file(&fill_a).expect("drain disk A");
    let spool_a = state_change_spooled(&agent, last_before, a, "ok").await;
    let _fill_b = fill(paths[1]);
    state_change_spooled(&agent, Some(spool_a), b, "crit").await;
    // It has tried to deliver them (and failed) more than once, and a
    // heartbeat was spooled during the outage too.
    eventually(
        Duration::from_secs(90),
        "two failed deliveries and a heartbeat spooled during the outage",
        || async {
            let log = agent.log_text();
            let heartbeat = line_with(&log, last_before, &["report spooled", "heartbeat"]);
            (failed_attempts(&log) >= failed_before + 2 && heartbeat.is_some()).then_some(())
        },
    )
    .await;

    // Nothing acknowledged while the database is down.
    let log = agent.log_text();
    let during: BTreeSet<ReportId> = delivery::spooled(&log)
        .difference(&spooled_before)
        .cloned()
        .collect();
    let acked = delivery::acknowledged(&log);
    let acked_during: Vec<&ReportId> = during.intersection(&acked).collect();
    assert!(
        acked_during.is_empty(),
        "acknowledged with PostgreSQL down: {acked_during:?}\ncollector log:\n{}",
        collector.proc.log_text()
    );
    let committed = delivery::reports_counted(&collector, "committed").await;
    assert_eq!(
        committed, committed_at_503,
        "the collector counted commits with PostgreSQL down"
    );
    let (status, health, took) = healthz(&collector).await.expect("healthz answers");
    assert_eq!(
        status, 503,
        "still unhealthy at the end of the outage: {health}"
    );
    assert_eq!(collector.metric("forewarn_store_writable").await, 0.0);
    let outage = down.elapsed();
    let queued = last_queued(&log).unwrap_or_else(|| "?".into());
    let attempts = failed_attempts(&log) - failed_before;
    let collector_log = collector.proc.log_text();
    let excerpt: Vec<&str> = collector_log
        .lines()
        .skip(collector_lines_before)
        .filter(|l| l.contains("forewarn_collector") && l.contains("error="))
        .take(5)
        .collect();
    println!(
        "store outage: {outage:?} down, {} reports spooled meanwhile, 0 acknowledged, \
         {attempts} failed deliveries (agent queue {queued}); /healthz then answers in \
         {took:?}: {health}; collector log:\n  {}",
        during.len(),
        excerpt.join("\n  ")
    );

    // Freeze the agent while the database returns: the collector must
    // turn healthy on its own, not because a report happened to commit.
    // A report already at the collector fails within the pool's acquire
    // timeout, so the freeze lasts that long first (a deliberate pacing
    // step; the commit count below proves nothing slipped through).
    signal(&agent, "STOP");
    tokio::time::sleep(POOL_ACQUIRE_TIMEOUT + Duration::from_secs(2)).await;
    let committed_frozen = delivery::reports_counted(&collector, "committed").await;

    // The database returns, on the same port and data dir.
    let restart = Instant::now();
    pg.restart();
    let up = Instant::now();
    let pg_start = up - restart;
    let healthy = eventually(
        Duration::from_secs(60),
        "/healthz answers 200 again, with the agent frozen",
        || async { healthz(&collector).await.filter(|(s, ..)| *s == 200) },
    )
    .await;
    let to_200 = up.elapsed();
    assert_eq!(
        delivery::reports_counted(&collector, "committed").await,
        committed_frozen,
        "a report committed while the agent was frozen: not a recovery by itself"
    );
    println!(
        "store outage: PostgreSQL back after {pg_start:?} (pg_ctl start) -> /healthz 200 after \
         {to_200:?} with no report committed: {}",
        healthy.1
    );

    // The agent resumes: everything it spooled arrives, once.
    signal(&agent, "CONT");
    let resumed = Instant::now();
    let rows = eventually(
        Duration::from_secs(90),
        "every spooled report acknowledged and stored",
        || async {
            let log = agent.log_text();
            let sent = delivery::spooled(&log);
            let rows = delivery::stored_in(&store, &agent_id).await;
            let have: BTreeSet<&ReportId> = rows.iter().collect();
            (sent.is_subset(&delivery::acknowledged(&log)) && sent.iter().all(|r| have.contains(r)))
                .then_some(rows)
        },
    )
    .await;
    let to_delivered = resumed.elapsed();
    let (ticket_a_now, ticket_b) = eventually(
        Duration::from_secs(30),
        "ticket A resolved and ticket B open",
        || async {
            let ta = disk_ticket(&collector, &agent_id, a)
                .await
                .filter(|t| t["state"] == "resolved")?;
            let tb = disk_ticket(&collector, &agent_id, b)
                .await
                .filter(|t| t["state"] == "open")?;
            Some((ta, tb))
        },
    )
    .await;
    let to_tickets = resumed.elapsed();
    assert_eq!(
        ticket_a_now["id"], ticket_a["id"],
        "the same ticket resolved"
    );

    // Exactly once, in the database itself.
    let log = agent.log_text();
    let sent = delivery::spooled(&log);
    let acked = delivery::acknowledged(&log);
    let twice = delivery::repeats(&rows);
    assert_eq!(twice, 0, "stored twice: {rows:?}");
    let phantom: Vec<&ReportId> = rows.iter().filter(|r| !sent.contains(r)).collect();
    assert!(phantom.is_empty(), "stored but never spooled: {phantom:?}");
    let all = tickets(&url, &agent_id).await;
    let of = |item: &str| -> Vec<&TicketRow> {
        all.iter()
            .filter(|t| t.check_kind == "disk" && t.item == item)
            .collect()
    };
    let (in_a, in_b) = (of(a), of(b));
    assert_eq!(in_a.len(), 1, "one ticket for disk A: {all:?}");
    assert_eq!(in_b.len(), 1, "one ticket for disk B: {all:?}");
    assert_eq!(in_a[0].state, "resolved", "{all:?}");
    assert_eq!(in_b[0].state, "open", "{all:?}");
    assert_eq!(ticket_b["id"], in_b[0].id, "the API and the database agree");
    let fingerprints: BTreeSet<&str> = all.iter().map(|t| t.fingerprint.as_str()).collect();
    assert_eq!(
        fingerprints.len(),
        all.len(),
        "one ticket per fingerprint: {all:?}"
    );
    let twins = open_twins(&url).await;
    assert!(twins.is_empty(), "open tickets twice: {twins:?}");
    let events_a = events(&url, in_a[0].id).await;
    let count = |kinds: &[String], k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count(&events_a, "opened"), 1, "{events_a:?}");
    assert_eq!(count(&events_a, "resolved"), 1, "{events_a:?}");
    let events_b = events(&url, in_b[0].id).await;
    assert_eq!(count(&events_b, "opened"), 1, "{events_b:?}");
    assert_eq!(collector.metric("forewarn_store_writable").await, 1.0);
    assert!(
        !collector.proc.log_text().contains("panicked"),
        "{}",
        collector.proc.log_text()
    );
    let deduplicated = delivery::reports_counted(&collector, "duplicate").await;
    let sessions = count_lines(&log, &["session open"]);

    println!(
        "store outage: agent resumed -> every report acknowledged and stored after \
         {to_delivered:?}, tickets right after {to_tickets:?}"
    );
    println!(
        "store outage: reports sent (spooled) {}, acknowledged {}, stored {}, stored twice \
         {twice}, sent during the outage {}, resends deduplicated {deduplicated}, agent \
         sessions {sessions}; tickets {} (disk A #{} {:?}, disk B #{} {:?}), duplicates 0; \
         total {:?}",
        sent.len(),
        acked.len(),
        rows.len(),
        during.len(),
        all.len(),
        in_a[0].id,
        events_a,
        in_b[0].id,
        events_b,
        started.elapsed()
    );
    drop(agent);
}
