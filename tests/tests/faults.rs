//! Fault tests on real processes (issue 5): the collector `kill -9`ed and
//! restarted while a real agent keeps reporting (reports on the wire at the
//! kills), and network faults (latency, bandwidth limit, connection reset
//! with the report or its ack in flight, a flow that goes silent during
//! the handshake, a 45 s black hole) injected by a small TCP proxy on
//! loopback between a real agent and the collector.
//!
//! Disk checks flip on real tmpfs mounts. Tickets are asserted through the
//! collector's HTTP API; delivery against the store itself (its delivery
//! records) and the agent's own log of what it spooled and had
//! acknowledged. Everything is polled with a deadline; each test prints its
//! figures (`--nocapture`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::delivery::{self, ReportId, RssPeak, count_lines, line_with};
use common::{AgentHome, Backend, Collector, Proc, Tmpfs, enroll_ok, eventually, on_each_backend};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

// ---------------------------------------------------------------------------
// Fault-injecting TCP proxy
// ---------------------------------------------------------------------------

/// What the proxy does to bytes in flight.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Forward as received.
    Pass,
    /// Hold every chunk this long before forwarding it.
    Latency(Duration),
    /// Forward at most this many bytes per second (each direction).
    Bandwidth(u64),
    /// Accept, read, forward nothing (like a silently dropping network);
    /// held bytes flow again when the mode changes.
    BlackHole,
    /// Forward towards the collector, hold everything coming back (acks
    /// included) as a black hole does.
    HoldReplies,
    /// Connections accepted while in this mode are swallowed for good:
    /// read, discarded, never answered, also after the mode changes (a
    /// firewall that lost the flow's state); others pass.
    DeadFlow,
}

impl Mode {
    /// Whether bytes going this way are held.
    fn holds(self, reply: bool) -> bool {
        self == Mode::BlackHole || (reply && self == Mode::HoldReplies)
    }
}

/// A loopback TCP proxy in front of `upstream` with a switchable [`Mode`]
/// and a "reset every connection now" button.
struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    resets: watch::Sender<u64>,
    /// Connections swallowed in [`Mode::DeadFlow`].
    swallowed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (mode, _) = watch::channel(Mode::Pass);
        let (resets, _) = watch::channel(0u64);
        let (mode_rx, reset_rx) = (mode.subscribe(), resets.subscribe());
        let swallowed = Arc::new(AtomicUsize::new(0));
        let count = swallowed.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *mode_rx.borrow() == Mode::DeadFlow {
                    count.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(swallow(client));
                    continue;
                }
                tokio::spawn(connection(
                    client,
                    upstream,
                    mode_rx.clone(),
                    reset_rx.clone(),
                ));
            }
        });
        Self {
            addr,
            mode,
            resets,
            swallowed,
            task,
        }
    }

    fn swallowed(&self) -> usize {
        self.swallowed.load(Ordering::Relaxed)
    }

    fn set(&self, mode: Mode) {
        eprintln!("proxy: {mode:?}");
        self.mode.send_replace(mode);
    }

    /// Resets (RST) every connection open right now.
    fn reset_all(&self) {
        eprintln!("proxy: reset all connections");
        self.resets.send_modify(|g| *g += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    mut reset: watch::Receiver<u64>,
) {
    reset.mark_unchanged();
    let run = async {
        // A black hole accepts but does not even connect onwards.
        if mode.wait_for(|m| *m != Mode::BlackHole).await.is_err() {
            return;
        }
        let Ok(server) = TcpStream::connect(upstream).await else {
            return;
        };
        // Dropping a socket then sends RST, which is what a reset is.
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        tokio::join!(
            pump(cr, sw, false, mode.clone()),
            pump(sr, cw, true, mode.clone())
        );
    };
    // Reset first: a mode change right after the reset must not let held
    // bytes out before the connection is gone.
    tokio::select! {
        biased;
        _ = reset.changed() => {}
        () = run => {}
    }
}

/// Reads and discards until the peer goes away.
async fn swallow(mut client: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(1..) = client.read(&mut buf).await {}
}

/// Copies `from` to `to` as the mode says; `reply`: collector to agent.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    reply: bool,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let m = match mode.wait_for(|m| !m.holds(reply)).await {
            Ok(m) => *m,
            Err(_) => break,
        };
        match m {
            Mode::Latency(d) => tokio::time::sleep(d).await,
            Mode::Bandwidth(bps) => {
                tokio::time::sleep(Duration::from_secs_f64(n as f64 / bps.max(1) as f64)).await;
            }
            Mode::Pass | Mode::BlackHole | Mode::HoldReplies | Mode::DeadFlow => {}
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn disk_config(mounts: &[&Path]) -> String {
    format!(
        "[checks.disk]\nmounts = {mounts:?}\nwarn_used_percent = 70.0\ncrit_used_percent = 90.0\n\
         poll_interval_ms = 200\ntrend_enabled = false\n\
         [checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n"
    )
}

/// Points an enrolled agent at `proxy`: enrolled directly, from now on
/// every byte goes through the proxy.
fn via_proxy(home: &AgentHome, proxy: &Proxy) {
    let server_name = home.identity()["server_name"]
        .as_str()
        .unwrap_or("localhost")
        .to_string();
    let mut text = std::fs::read_to_string(&home.config).expect("agent config");
    text.push_str(&format!(
        "\n[collector]\nurl = \"https://{}\"\nserver_name = {server_name:?}\n",
        proxy.addr
    ));
    std::fs::write(&home.config, text).expect("agent config");
}

/// Waits until the agent has logged the disk on `item` changing to `state`.
async fn agent_saw(agent: &Proc, item: &str, state: &str) {
    eventually(
        Duration::from_secs(20),
        &format!("agent sees {item} {state}"),
        || async {
            line_with(
                &agent.log_text(),
                None,
                &["check state changed", item, state],
            )
            .map(|_| ())
        },
    )
    .await;
}

/// Fills a small tmpfs to ~94 % (CRIT at 90 %).
fn fill(mount: &Path, bytes: usize) -> PathBuf {
    let path = mount.join("fill.bin");
    std::fs::write(&path, vec![0xA5u8; bytes]).expect("fill tmpfs");
    path
}

fn disk_tickets<'a>(all: &'a Value, agent_id: &str) -> Vec<&'a Value> {
    all.as_array()
        .expect("ticket list")
        .iter()
        .filter(|t| t["agent_id"] == agent_id && t["check"] == "disk")
        .collect()
}

async fn event_kinds(collector: &Collector, id: i64) -> Vec<String> {
    let detail = collector.get(&format!("/api/v1/tickets/{id}")).await;
    detail["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_string))
        .collect()
}

/// Reports in `of` missing from `from`.
fn missing<'a>(of: &'a BTreeSet<ReportId>, from: &[ReportId]) -> Vec<&'a ReportId> {
    let from: BTreeSet<&ReportId> = from.iter().collect();
    of.iter().filter(|r| !from.contains(r)).collect()
}

/// Waits until every report in `sent` is acknowledged (per the agent's log)
/// and in the store; returns the store's rows.
async fn all_delivered(
    agent: &Proc,
    collector: &Collector,
    agent_id: &str,
    sent: &BTreeSet<ReportId>,
) -> Vec<ReportId> {
    eventually(
        Duration::from_secs(60),
        "every spooled report acknowledged and stored",
        || async {
            let acked = delivery::acknowledged(&agent.log_text());
            let rows = delivery::stored_in(&collector.store, agent_id).await;
            (sent.is_subset(&acked) && missing(sent, &rows).is_empty()).then_some(rows)
        },
    )
    .await
}

// ---------------------------------------------------------------------------
// 1. Collector kill -9 loop
// ---------------------------------------------------------------------------

const ITEMS: usize = 100;
const KILLS: usize = 5;

on_each_backend!(collector_kill_9_loop_loses_nothing_and_doubles_nothing);
async fn collector_kill_9_loop_loses_nothing_and_doubles_nothing(backend: Backend) {
    let started = Instant::now();
    let mut collector = Collector::start_on(backend, "");
    let mounts: Vec<Tmpfs> = (0..ITEMS).map(|_| Tmpfs::mount("128k")).collect();
    let paths: Vec<&Path> = mounts.iter().map(Tmpfs::path).collect();
    let items: Vec<String> = paths
        .iter()
        .map(|p| p.to_str().expect("utf-8 path").to_string())
        .collect();
    let home = AgentHome::new(&disk_config(&paths));
    let agent_id = enroll_ok(&collector, &home, "default");
    // Through a proxy that slows the round trip down at the kill points,
    // so that a kill lands while a report is on the wire.
    let proxy = Proxy::start(collector.grpc).await;
    via_proxy(&home, &proxy);
    let agent = home.run_with("agent.log", delivery::AGENT_LOG);

    // Every item reported OK first.
    eventually(
        Duration::from_secs(30),
        "agent online with every disk OK",
        || async {
            let (status, v) = collector
                .get_with(&collector.api_key, &format!("/api/v1/agents/{agent_id}"))
                .await;
            let ok = status == 200
                && v["checks"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .filter(|c| c["check"] == "disk" && c["state"] == "ok")
                        .filter(|c| items.iter().any(|i| c["item"] == i.as_str()))
                        .count()
                        == ITEMS
                });
            ok.then_some(())
        },
    )
    .await;

    // Kill points: distinct pseudo-random items (seed printed for replay).
    let seed = RandomState::new().hash_one(Instant::now());
    let mut kills = BTreeSet::new();
    let mut x = seed | 1;
    while kills.len() < KILLS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        kills.insert(5 + (x % (ITEMS as u64 - 10)) as usize);
    }
    eprintln!("kill -9 after the fills of items {kills:?} (seed {seed})");
    // Resends the collectors recognised as already committed.
    let mut deduplicated = 0;
    let mut in_flight = 0;
    let mut in_flight_committed = 0;

    for (i, mount) in paths.iter().enumerate() {
        if kills.contains(&i) {
            // 100 ms each way: the state change reaches the collector 100 ms
            // after it is sent and its ack is back 100 ms after the commit.
            // The kill lands at a random moment of that round trip: before
            // the collector has the report, after it committed it but before
            // the agent has the ack, or after.
            proxy.set(Mode::Latency(Duration::from_millis(100)));
            let changes = count_lines(&agent.log_text(), &["report spooled", "state_changes"]);
            fill(mount, 120 * 1024);
            eventually(Duration::from_secs(20), "the change spooled", || async {
                (count_lines(&agent.log_text(), &["report spooled", "state_changes"]) > changes)
                    .then_some(())
            })
            .await;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            tokio::time::sleep(Duration::from_millis(x % 250)).await;
            let before = count_lines(&agent.log_text(), &["session open"]);
            deduplicated += delivery::reports_counted(&collector, "duplicate").await;
            let killed = collector.kill9();
            // What the agent saw acknowledged is in the store right now,
            // with the collector dead (acknowledged only after commit).
            let log = agent.log_text();
            let acked = delivery::acknowledged(&log);
            let rows = delivery::stored_in(&killed.store, &agent_id).await;
            let lost = missing(&acked, &rows);
            assert!(
                lost.is_empty(),
                "acknowledged but not in the store after kill -9: {lost:?}"
            );
            // On the wire when the collector died: not yet received (to be
            // resent), or committed with the ack still on its way (it may
            // still arrive, or the report is resent and deduplicated).
            let pending: Vec<ReportId> = delivery::spooled(&log)
                .difference(&acked)
                .cloned()
                .collect();
            let committed = pending.iter().filter(|r| rows.contains(r)).count();
            in_flight += pending.len();
            in_flight_committed += committed;
            eprintln!(
                "kill -9 after item {i}: {} acknowledged, {} stored, {} unacknowledged \
                 ({committed} of them committed)",
                acked.len(),
                rows.len(),
                pending.len()
            );
            collector = killed.start();
            proxy.set(Mode::Pass);
            // The agent is back on the new process before the next kill,
            // so every kill hits a live session.
            eventually(
                Duration::from_secs(40),
                "the agent reconnected after kill -9",
                || async {
                    (count_lines(&agent.log_text(), &["session open"]) > before).then_some(())
                },
            )
            .await;
        } else {
            fill(mount, 120 * 1024);
        }
        // One state change per report: the next fill waits until the agent
        // has seen this one.
        agent_saw(&agent, &items[i], "crit").await;
    }

    // Nothing lost: one open ticket per item, eventually.
    let delivered = Instant::now();
    let all = eventually(
        Duration::from_secs(90),
        "a ticket for every item",
        || async {
            let all = collector.get("/api/v1/tickets").await;
            (disk_tickets(&all, &agent_id).len() >= ITEMS).then_some(all)
        },
    )
    .await;
    eprintln!(
        "last fill -> all {ITEMS} tickets visible: {:?}",
        delivered.elapsed()
    );

    // Nothing doubled: exactly one ticket per item, one `opened` each.
    let mine = disk_tickets(&all, &agent_id);
    let mut per_item: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for t in &mine {
        per_item
            .entry(t["item"].as_str().expect("item"))
            .or_default()
            .push(t["id"].as_i64().expect("id"));
    }
    assert_eq!(mine.len(), ITEMS, "one ticket per item: {all}");
    for item in &items {
        let ids = per_item.get(item.as_str()).cloned().unwrap_or_default();
        assert_eq!(ids.len(), 1, "{item}: tickets {ids:?}");
        let kinds = event_kinds(&collector, ids[0]).await;
        let opened = kinds.iter().filter(|k| *k == "opened").count();
        assert_eq!(opened, 1, "{item}: timeline {kinds:?}");
    }
    for t in &mine {
        assert_eq!(t["state"], "open", "{t}");
    }

    // Every report is acknowledged and stored exactly once: the store's
    // delivery records against the agent's own log of what it spooled.
    let sent = delivery::spooled(&agent.log_text());
    let rows = all_delivered(&agent, &collector, &agent_id, &sent).await;
    deduplicated += delivery::reports_counted(&collector, "duplicate").await;
    let log = agent.log_text();
    let acked = delivery::acknowledged(&log);
    let now_spooled = delivery::spooled(&log);
    let twice = delivery::repeats(&rows);
    assert_eq!(twice, 0, "stored twice: {rows:?}");
    let phantom: Vec<_> = rows.iter().filter(|r| !now_spooled.contains(r)).collect();
    assert!(phantom.is_empty(), "stored but never spooled: {phantom:?}");
    let changes = count_lines(&log, &["report spooled", "state_changes"]);
    let sessions = count_lines(&log, &["session open"]);
    println!(
        "collector kill -9 x{KILLS}: reports sent (spooled) {} ({changes} state changes), \
         acknowledged {}, stored {}, stored twice {twice}, unacknowledged at the kills \
         {in_flight} ({in_flight_committed} of them committed), resends deduplicated \
         {deduplicated}; \
         sessions {sessions}; tickets {} for {ITEMS} items, duplicate tickets 0; total {:?}",
        sent.len(),
        acked.len(),
        rows.len(),
        mine.len(),
        started.elapsed()
    );
    assert!(sent.len() > ITEMS, "{} reports", sent.len());
    assert!(changes >= ITEMS, "{changes} state-change reports");
    assert!(
        sessions > KILLS,
        "agent reconnected after each kill:\n{log}"
    );
}

// ---------------------------------------------------------------------------
// 2. Network faults through the proxy
// ---------------------------------------------------------------------------

/// Waits for one open disk ticket on `item`; returns its id.
async fn ticket_opens(collector: &Collector, agent_id: &str, item: &str, what: &str) -> i64 {
    let since = Instant::now();
    let id = eventually(Duration::from_secs(30), what, || async {
        let all = collector.get("/api/v1/tickets").await;
        disk_tickets(&all, agent_id)
            .into_iter()
            .find(|t| t["item"] == item)
            .and_then(|t| t["id"].as_i64())
    })
    .await;
    eprintln!("{what}: {:?}", since.elapsed());
    id
}

/// How long the black hole lasts: longer than HTTP/2 keepalive needs to
/// declare the link dead on both sides (ping after 30 s of silence, 10 s to
/// answer), so the agent must notice, reconnect and resend.
const HOLE: Duration = Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_faults_delay_but_never_lose_or_double_a_ticket() {
    let started = Instant::now();
    // The black hole silences the agent for 45 s: three 15 s intervals,
    // which would also open an "agent overdue" ticket (tested elsewhere).
    let collector = Collector::start_with_config("[tickets]\noverdue_after_intervals = 10\n");
    let proxy = Proxy::start(collector.grpc).await;
    let mounts: Vec<Tmpfs> = (0..6).map(|_| Tmpfs::mount("1m")).collect();
    let paths: Vec<&Path> = mounts.iter().map(Tmpfs::path).collect();
    let items: Vec<String> = paths
        .iter()
        .map(|p| p.to_str().expect("utf-8 path").to_string())
        .collect();
    let home = AgentHome::new(&disk_config(&paths));
    let agent_id = enroll_ok(&collector, &home, "default");
    via_proxy(&home, &proxy);
    let agent = home.run_with("agent.log", delivery::AGENT_LOG);
    let rss = RssPeak::start(agent.child.id());
    let mut peaks: Vec<(&str, u64)> = Vec::new();
    eventually(
        Duration::from_secs(30),
        "agent online via the proxy",
        || async {
            let (status, v) = collector
                .get_with(&collector.api_key, &format!("/api/v1/agents/{agent_id}"))
                .await;
            (status == 200
                && v["checks"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().filter(|c| c["check"] == "disk").count() == 6))
            .then_some(())
        },
    )
    .await;
    peaks.push(("none (start)", rss.take()));
    let fill_bytes = 1024 * 1024 - 48 * 1024;

    // Latency: 200 ms per chunk, each way.
    proxy.set(Mode::Latency(Duration::from_millis(200)));
    fill(paths[0], fill_bytes);
    ticket_opens(
        &collector,
        &agent_id,
        &items[0],
        "latency 200 ms/chunk -> ticket",
    )
    .await;
    peaks.push(("latency 200 ms", rss.take()));

    // Bandwidth: 32 KiB/s.
    proxy.set(Mode::Bandwidth(32 * 1024));
    fill(paths[1], fill_bytes);
    ticket_opens(&collector, &agent_id, &items[1], "32 KiB/s -> ticket").await;
    peaks.push(("bandwidth 32 KiB/s", rss.take()));

    // Reset mid-stream: the state change is in flight (held by the proxy,
    // not acknowledged) when every connection is reset; the agent must
    // notice, reconnect and send it again.
    let sessions_before = count_lines(&agent.log_text(), &["session open"]);
    proxy.set(Mode::BlackHole);
    fill(paths[2], fill_bytes);
    agent_saw(&agent, &items[2], "crit").await;
    eventually(Duration::from_secs(10), "the change spooled", || async {
        let log = agent.log_text();
        let seen = line_with(&log, None, &["check state changed", &items[2], "crit"])?;
        line_with(&log, Some(seen), &["report spooled", "state_changes"]).map(|_| ())
    })
    .await;
    proxy.reset_all();
    proxy.set(Mode::Pass);
    let reset_at = Instant::now();
    ticket_opens(&collector, &agent_id, &items[2], "reset -> ticket").await;
    eventually(
        Duration::from_secs(30),
        "a new session after the reset",
        || async {
            (count_lines(&agent.log_text(), &["session open"]) > sessions_before).then_some(())
        },
    )
    .await;
    assert!(
        agent.log_text().contains("session lost"),
        "the reset went unnoticed:\n{}",
        agent.log_text()
    );
    eprintln!(
        "reset -> reconnected and delivered: {:?}",
        reset_at.elapsed()
    );
    peaks.push(("connection reset", rss.take()));

    // Reset after the report reached the collector but before its ack came
    // back: the agent resends it on the next session and the collector
    // recognises it as already committed.
    let duplicates_before = delivery::reports_counted(&collector, "duplicate").await;
    let sessions_before = count_lines(&agent.log_text(), &["session open"]);
    proxy.set(Mode::HoldReplies);
    fill(paths[3], fill_bytes);
    ticket_opens(&collector, &agent_id, &items[3], "acks held -> ticket").await;
    let acked_before = delivery::acknowledged(&agent.log_text());
    proxy.reset_all();
    proxy.set(Mode::Pass);
    eventually(
        Duration::from_secs(30),
        "the resend recognised as already committed",
        || async {
            (delivery::reports_counted(&collector, "duplicate").await > duplicates_before)
                .then_some(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the resent report acknowledged",
        || async {
            (delivery::acknowledged(&agent.log_text()).len() > acked_before.len()).then_some(())
        },
    )
    .await;
    assert!(count_lines(&agent.log_text(), &["session open"]) > sessions_before);
    peaks.push(("reset, acks lost", rss.take()));

    // The agent reconnects into a dead flow: TCP accepted, then silence
    // for good. It must give the handshake up and connect again.
    let sessions_before = count_lines(&agent.log_text(), &["session open"]);
    proxy.set(Mode::DeadFlow);
    proxy.reset_all();
    fill(paths[4], fill_bytes);
    eventually(
        Duration::from_secs(20),
        "the agent connecting into a dead flow",
        || async { (proxy.swallowed() > 0).then_some(()) },
    )
    .await;
    proxy.set(Mode::Pass);
    let stuck = Instant::now();
    ticket_opens(&collector, &agent_id, &items[4], "dead flow -> ticket").await;
    assert!(count_lines(&agent.log_text(), &["session open"]) > sessions_before);
    eprintln!(
        "dead flow: handshake given up, reconnected and delivered after {:?}",
        stuck.elapsed()
    );
    peaks.push(("dead flow", rss.take()));

    // Black hole: the disk fills and drains meanwhile.
    let log = agent.log_text();
    let lost_before = count_lines(&log, &["session lost"]);
    let opened_before = count_lines(&log, &["session open"]);
    proxy.set(Mode::BlackHole);
    let hole = Instant::now();
    let big = fill(paths[5], fill_bytes);
    agent_saw(&agent, &items[5], "crit").await;
    std::fs::remove_file(&big).expect("drain");
    eventually(Duration::from_secs(20), "agent sees the drain", || async {
        let log = agent.log_text();
        let crit = line_with(&log, None, &["check state changed", &items[5], "crit"])?;
        line_with(&log, Some(crit), &["check state changed", &items[5], "ok"]).map(|_| ())
    })
    .await;
    // The link is dead, not closed: only keepalive can tell. Within the
    // hole the agent gives the session up (at most 30 s + 10 s after it
    // last heard from the collector).
    let lost = eventually(HOLE, "the agent notices the dead link", || async {
        let log = agent.log_text();
        (count_lines(&log, &["session lost"]) > lost_before)
            .then(|| {
                log.lines()
                    .rfind(|l| l.contains("session lost"))
                    .map(str::to_owned)
            })
            .flatten()
    })
    .await;
    eprintln!(
        "black hole: session given up after {:?}: {lost}",
        hole.elapsed()
    );
    // The fault lasts its full time, whatever the agent does meanwhile.
    tokio::time::sleep_until((hole + HOLE).into()).await;
    let all = collector.get("/api/v1/tickets").await;
    assert!(
        !disk_tickets(&all, &agent_id)
            .iter()
            .any(|t| t["item"] == items[5].as_str()),
        "delivered through a black hole? {all}"
    );
    proxy.set(Mode::Pass);
    let cleared = Instant::now();
    let id = eventually(
        Duration::from_secs(60),
        "the black-holed episode, opened and resolved",
        || async {
            let all = collector.get("/api/v1/tickets").await;
            disk_tickets(&all, &agent_id)
                .into_iter()
                .find(|t| t["item"] == items[5].as_str() && t["state"] == "resolved")
                .and_then(|t| t["id"].as_i64())
        },
    )
    .await;
    eprintln!(
        "black hole {HOLE:?} cleared -> ticket opened+resolved: {:?}",
        cleared.elapsed()
    );
    assert!(
        count_lines(&agent.log_text(), &["session open"]) > opened_before,
        "no new session after the black hole"
    );
    peaks.push(("black hole 45 s", rss.take()));

    // Exactly once: one ticket per item, one `opened`, one `resolved`...
    let all = collector.get("/api/v1/tickets").await;
    let mine = disk_tickets(&all, &agent_id);
    assert_eq!(mine.len(), 6, "{all}");
    for item in &items {
        assert_eq!(
            mine.iter().filter(|t| t["item"] == item.as_str()).count(),
            1,
            "{item}: {all}"
        );
    }
    let kinds = event_kinds(&collector, id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "opened").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "resolved").count(),
        1,
        "{kinds:?}"
    );
    // ...and every report spooled is acknowledged and stored, once.
    let sent = delivery::spooled(&agent.log_text());
    let rows = all_delivered(&agent, &collector, &agent_id, &sent).await;
    let twice = delivery::repeats(&rows);
    assert_eq!(twice, 0, "stored twice: {rows:?}");
    let deduplicated = delivery::reports_counted(&collector, "duplicate").await;

    let peak = peaks.iter().map(|(_, kib)| *kib).max().unwrap_or(0);
    let per_fault: Vec<String> = peaks
        .iter()
        .map(|(fault, kib)| format!("{fault} {kib} KiB"))
        .collect();
    println!(
        "network faults: reports sent (spooled) {}, stored {}, stored twice {twice}, \
         resends deduplicated {deduplicated}; agent peak VmRSS per fault: {}; total {:?}",
        sent.len(),
        rows.len(),
        per_fault.join(", "),
        started.elapsed()
    );
    assert!(peak < 32 * 1024, "agent RSS {peak} KiB: {per_fault:?}");
}
