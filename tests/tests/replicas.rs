//! Several collectors (replicas) on one PostgreSQL, each on a "host" of its
//! own (a network namespace, `common/netns.rs`), with real agents in the
//! root namespace that know every replica's address (issue 10).
//!
//! The agents' plugin checks fail (a control file), so tickets open and
//! escalate with a webhook sink pointing at a receiver in the test. Then
//! the replica running the engine's clock (`forewarn_sweeper_leader`) is
//! `kill -9`ed while tickets escalate and deliveries are in flight (the
//! receiver answers slowly), an agent is killed to go overdue, and another
//! replica loses the database for 30 s while it keeps its agents.
//!
//! Asserted: the agents spread over the replicas; one ticket per problem;
//! every notifying timeline event reaches the webhook, each exactly once
//! (counted by idempotency key); overdue detection goes on after the
//! leader's death; the dead replica's agents move to a live one and their
//! reports are acknowledged there; the partitioned replica's agents'
//! reports are acknowledged after it heals. Needs root, `ip` (iproute2) and
//! PostgreSQL's server binaries, as `tests/run-all.sh` provides.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use common::delivery::{AGENT_LOG, count_lines, field, line_with};
use common::netns::Lab;
use common::postgres_server::PostgresServer;
use common::replica::Replica;
use common::{AgentHome, Proc, bin, eventually};
use serde_json::Value;

const REPLICAS: usize = 3;
const AGENTS: usize = 8;
/// The one TLS name every replica's certificate carries.
const SERVER_NAME: &str = "forewarn.test";
const SECRET: &str = "replica-webhook-secret";
const WAIT: Duration = Duration::from_secs(60);
/// How long one replica is cut off from the database.
const PARTITION: Duration = Duration::from_secs(30);
/// Timeline events that notify the sinks.
const NOTIFYING: &[&str] = &[
    "opened",
    "reopened",
    "updated",
    "escalated",
    "acknowledged",
    "resolved",
];

// === the webhook receiver ===

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    key: String,
    body: Value,
    /// The replica's address the request came from.
    from: IpAddr,
}

/// Records every request, answering each after a short delay so that
/// deliveries are in flight whenever a replica dies.
#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    in_flight: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start(ip: IpAddr) -> (Self, SocketAddr) {
        let r = Receiver::default();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        (r, addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("lock").clone()
    }

    fn in_flight(&self) -> usize {
        *self.in_flight.lock().expect("lock")
    }
}

async fn hook(
    State(r): State<Receiver>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    *r.in_flight.lock().expect("lock") += 1;
    tokio::time::sleep(Duration::from_millis(300)).await;
    *r.in_flight.lock().expect("lock") -= 1;
    r.hits.lock().expect("lock").push(Hit {
        key,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        from: peer.ip(),
    });
    StatusCode::NO_CONTENT
}

// === replicas ===

/// The API of one replica with an MSP-wide key.
struct Api {
    http: SocketAddr,
    key: String,
}

impl Api {
    async fn get(&self, path: &str) -> Option<Value> {
        let resp = reqwest::Client::new()
            .get(format!("http://{}{path}", self.http))
            .bearer_auth(&self.key)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        if resp.status() != 200 {
            return None;
        }
        resp.json().await.ok()
    }

    async fn tickets(&self) -> Vec<Value> {
        eventually(WAIT, "the ticket list", || async {
            self.get("/api/v1/tickets?state=all&limit=1000")
                .await?
                .as_array()
                .cloned()
        })
        .await
    }
}

fn replica_config(
    lab: &Lab,
    i: usize,
    data: &Path,
    store: &str,
    hook: SocketAddr,
    key: &Path,
    kek: &Path,
) -> String {
    let ip = lab.host_ip(i);
    format!(
        "data_dir = {data:?}\n\
         [grpc]\nlisten_addr = \"{ip}:7443\"\nserver_names = [\"{SERVER_NAME}\"]\n\
         [http]\nlisten_addr = \"{ip}:8080\"\n\
         [store]\nurl = \"{store}\"\n\
         [pki]\nkek_file = {kek:?}\n\
         [tickets]\noverdue_after_intervals = 2\n\
         [tickets.rules.agent]\nconfirm_secs = 0\n\
         [tickets.sla.P1]\nack_mins = 0.1\nresolve_mins = 10\n\
         [[sinks.webhook]]\nname = \"receiver\"\nurl = \"http://{hook}/hook\"\n\
         secret_file = {key:?}\ntimeout_ms = 2000\nretry_initial_ms = 100\nretry_max_ms = 400\n"
    )
}

// === agents ===

struct Agent {
    /// Kept for its temp dir (config, state, log).
    _home: AgentHome,
    id: String,
    proc: Option<Proc>,
}

impl Agent {
    fn log(&self) -> String {
        self.proc.as_ref().map(Proc::log_text).unwrap_or_default()
    }

    /// The replica of the latest session this agent opened (after log line
    /// `after`, if given).
    fn replica(&self, replicas: &[Replica], after: Option<usize>) -> Option<usize> {
        let log = self.log();
        let line = log
            .lines()
            .enumerate()
            .skip(after.map_or(0, |a| a + 1))
            .filter(|(_, l)| l.contains("session open"))
            .last()?
            .1;
        let url = field(line, "collector")?;
        replicas.iter().position(|r| r.url() == url)
    }

    fn acks(&self) -> usize {
        count_lines(&self.log(), &["report acknowledged"])
    }

    fn lines(&self) -> usize {
        self.log().lines().count()
    }
}

fn agent_home(plugin: &Path) -> AgentHome {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\ninterval_secs = 2\n\
             [checks.disk]\nenabled = false\n[checks.cpu]\nenabled = false\n\
             [checks.memory]\nenabled = false\n[checks.load]\nenabled = false\n\
             [checks.reboot_required]\nenabled = false\n\
             [[checks.plugin]]\nname = \"svc\"\ncommand = [{plugin:?}]\ninterval_secs = 1\n",
            dir.path().join("state")
        ),
    )
    .expect("agent config");
    AgentHome { dir, config }
}

/// The plugin: CRIT while the control file says `crit`.
fn plugin(dir: &Path) -> (PathBuf, PathBuf) {
    let control = dir.join("control");
    std::fs::write(&control, "ok").expect("control");
    let script = dir.join("check_svc");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$(cat {c})\" = crit ]; then echo 'SVC CRITICAL'; exit 2; fi\necho 'SVC OK'; exit 0\n",
            c = control.display()
        ),
    )
    .expect("plugin");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (script, control)
}

// === the test ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_survive_a_dead_leader_and_a_database_partition() {
    let lab = Lab::new(REPLICAS);
    let (db_ip, hook_ip) = (lab.service_ip(0), lab.service_ip(1));
    let pg = PostgresServer::start_listening(&[db_ip], &[&lab.cidr()]);
    pg.create_db("forewarn").await;
    let store = pg.url_at(db_ip, "forewarn");
    let (receiver, hook) = Receiver::start(hook_ip).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("hook.key");
    std::fs::write(&key, SECRET).expect("key");

    // One CA for all, kept in the database: every replica reads the same
    // key-encryption key file.
    let kek = dir.path().join("kek");
    let out = Command::new(bin("forewarn-collector"))
        .args(["ca", "kek-create"])
        .arg(&kek)
        .output()
        .expect("ca kek-create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut replicas: Vec<Replica> = Vec::new();
    for i in 0..REPLICAS {
        let rdir = dir.path().join(format!("r{i}"));
        std::fs::create_dir_all(&rdir).expect("replica dir");
        let config = rdir.join("collector.toml");
        std::fs::write(
            &config,
            replica_config(&lab, i, &rdir.join("data"), &store, hook, &key, &kek),
        )
        .expect("config");
        // The first one migrates the schema before the others start.
        replicas.push(Replica::start(&lab, i, config));
    }
    let api_key = replicas[0].cli_json(&["api-key", "create", "--name", "e2e", "--json"])["key"]
        .as_str()
        .expect("key")
        .to_string();
    let https: Vec<SocketAddr> = replicas.iter().map(|r| r.http).collect();
    let api = |i: usize| Api {
        http: https[i],
        key: api_key.clone(),
    };
    let token = replicas[0].cli_json(&[
        "token",
        "create",
        "--tenant",
        "default",
        "--role",
        "server",
        "--max-uses",
        "20",
        "--json",
    ]);
    let (token, fp) = (
        token["token"].as_str().expect("token").to_string(),
        token["ca_fingerprint"].as_str().expect("fp").to_string(),
    );

    // --- Agents enroll with every address and spread over the replicas. ---
    let (script, control) = plugin(dir.path());
    let urls: Vec<String> = replicas.iter().map(Replica::url).collect();
    let mut agents = Vec::new();
    for _ in 0..AGENTS {
        let home = agent_home(&script);
        let out = home
            .command()
            .args(["enroll", "--collector", &urls.join(",")])
            .args([
                "--server-name",
                SERVER_NAME,
                "--token",
                &token,
                "--ca-fingerprint",
                &fp,
            ])
            .output()
            .expect("enroll");
        assert!(
            out.status.success(),
            "enroll: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = home.identity()["agent_id"]
            .as_str()
            .expect("id")
            .to_string();
        let proc = home.run_with("agent.log", AGENT_LOG);
        agents.push(Agent {
            _home: home,
            id,
            proc: Some(proc),
        });
    }
    let on = eventually(WAIT, "every agent in a session", || async {
        agents
            .iter()
            .map(|a| a.replica(&replicas, None))
            .collect::<Option<Vec<_>>>()
    })
    .await;
    let spread: BTreeSet<usize> = on.iter().copied().collect();
    eprintln!("agents per replica: {on:?}");
    assert!(
        spread.len() >= 2,
        "all {AGENTS} agents on one replica: {on:?}"
    );

    // --- Every check fails: one ticket each, escalating. ---
    std::fs::write(&control, "crit").expect("control");
    eventually(WAIT, "a ticket per agent, one at L2", || async {
        let open = api(0).get("/api/v1/tickets?state=open").await?;
        let open = open.as_array()?;
        let all = agents.iter().all(|a| {
            open.iter()
                .any(|t| t["agent_id"] == a.id.as_str() && t["check"] == "plugin")
        });
        let escalating = open.iter().any(|t| t["tier"].as_i64() == Some(2));
        (all && escalating).then_some(())
    })
    .await;

    // --- Kill the leader mid-escalation, mid-delivery. ---
    let leaders = eventually(WAIT, "a sweeper leader", || async {
        let mut leaders = Vec::new();
        for r in &replicas {
            if r.metric("forewarn_sweeper_leader").await == Some(1.0) {
                leaders.push(r.i);
            }
        }
        (!leaders.is_empty()).then_some(leaders)
    })
    .await;
    let leader = *leaders
        .iter()
        .max_by_key(|l| on.iter().filter(|r| *r == *l).count())
        .expect("a leader");
    let orphans: Vec<(usize, usize)> = (0..AGENTS)
        .filter(|a| agents[*a].replica(&replicas, None) == Some(leader))
        .map(|a| (a, agents[a].lines()))
        .collect();
    eprintln!(
        "killing leader replica {leader} (leaders {leaders:?}) with {} agents, {} deliveries in flight",
        orphans.len(),
        receiver.in_flight()
    );
    replicas[leader].kill9();
    let partitioned = (leader + 1) % REPLICAS;
    let observer = (leader + 2) % REPLICAS;

    for &(a, after) in &orphans {
        let agent = &agents[a];
        eventually(
            WAIT,
            "the dead replica's agent in a new session, acknowledged",
            || async {
                let log = agent.log();
                let open = line_with(&log, Some(after), &["session open"])?;
                let now = agent.replica(&replicas, Some(after))?;
                assert_ne!(now, leader, "agent {a} reconnected to the dead replica");
                line_with(&log, Some(open), &["report acknowledged"]).map(|_| ())
            },
        )
        .await;
    }

    // --- Overdue detection goes on without the old leader. ---
    let victim = (0..AGENTS)
        .find(|a| agents[*a].replica(&replicas, None) == Some(observer))
        .unwrap_or(0);
    let victim_id = agents[victim].id.clone();
    if let Some(mut p) = agents[victim].proc.take() {
        p.child.kill().expect("kill -9 agent");
        p.child.wait().expect("reap agent");
    }
    eventually(WAIT, "the killed agent's overdue ticket", || async {
        let open = api(observer).get("/api/v1/tickets?state=open").await?;
        open.as_array()?
            .iter()
            .any(|t| t["agent_id"] == victim_id.as_str() && t["kind"] == "agent")
            .then_some(())
    })
    .await;

    // --- One replica loses the database for 30 s; the checks recover. ---
    let live: Vec<usize> = (0..AGENTS).filter(|a| *a != victim).collect();
    eprintln!("partitioning replica {partitioned} from the database for {PARTITION:?}");
    lab.partition(partitioned, db_ip);
    std::fs::write(&control, "ok").expect("control");
    tokio::time::sleep(PARTITION).await; // a deliberate hold, not a wait for a result
    lab.heal(partitioned, db_ip);
    let acks_at_heal: Vec<usize> = agents.iter().map(Agent::acks).collect();
    for &a in &live {
        eventually(WAIT, "reports acknowledged after the partition", || async {
            (agents[a].acks() > acks_at_heal[a]).then_some(())
        })
        .await;
    }
    let victim_plugin = |t: &Value| t["agent_id"] == victim_id.as_str();
    eventually(
        WAIT,
        "every live agent's plugin ticket resolved",
        || async {
            let all = api(observer).get("/api/v1/tickets?state=all").await?;
            all.as_array()?
                .iter()
                .filter(|t| t["check"] == "plugin" && !victim_plugin(t))
                .all(|t| t["state"] == "resolved")
                .then_some(())
        },
    )
    .await;

    // --- One ticket per problem. ---
    let tickets = api(observer).tickets().await;
    let mut per_problem: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for t in &tickets {
        let k = |f: &str| t[f].as_str().unwrap_or_default().to_string();
        *per_problem
            .entry((k("agent_id"), k("check"), k("item")))
            .or_default() += 1;
    }
    let doubled: Vec<_> = per_problem.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "problems with more than one ticket: {doubled:?}"
    );

    // --- Every notifying event delivered, each exactly once. ---
    let mut expected: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for t in &tickets {
        let id = t["id"].as_i64().expect("ticket id");
        let detail = eventually(WAIT, "a ticket's timeline", || async {
            api(observer).get(&format!("/api/v1/tickets/{id}")).await
        })
        .await;
        let mut kinds: Vec<String> = detail["events"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .filter(|k| NOTIFYING.contains(k))
            .map(str::to_string)
            .collect();
        kinds.sort();
        expected.insert(id, kinds);
    }
    let delivered = |hits: &[Hit]| {
        let mut by_ticket: BTreeMap<i64, BTreeMap<String, String>> = BTreeMap::new();
        for h in hits {
            if let Some(id) = h.body["ticket_id"].as_i64() {
                let event = h.body["event"].as_str().unwrap_or_default().to_string();
                by_ticket
                    .entry(id)
                    .or_default()
                    .insert(h.key.clone(), event);
            }
        }
        by_ticket
            .into_iter()
            .map(|(id, keys)| {
                let mut events: Vec<String> = keys.into_values().collect();
                events.sort();
                (id, events)
            })
            .collect::<BTreeMap<_, _>>()
    };
    let covered = |got: &BTreeMap<i64, Vec<String>>| {
        expected
            .iter()
            .all(|(id, kinds)| covers(got.get(id).map_or(&[][..], Vec::as_slice), kinds))
    };
    let lost = tokio::time::timeout(WAIT, async {
        while !covered(&delivered(&receiver.hits())) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .is_err();
    let hits = receiver.hits();
    let got = delivered(&hits);
    let missing: Vec<_> = expected
        .iter()
        .filter(|(id, kinds)| !covers(got.get(id).map_or(&[][..], Vec::as_slice), kinds))
        .collect();
    assert!(
        !lost,
        "events never delivered (ticket, expected events): {missing:?}; delivered: {got:?}"
    );
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for h in &hits {
        *per_key.entry(&h.key).or_default() += 1;
    }
    // A key may come twice only when a replica that sent it could not
    // record the answer: the killed leader (mid-delivery) or the replica cut
    // off from the database. The receiver drops such a repeat by its key;
    // any other repeat is a notification sent twice.
    let excused = [lab.host_ip(leader), lab.host_ip(partitioned)];
    let repeated: Vec<_> = per_key.iter().filter(|(_, n)| **n > 1).collect();
    let doubled: Vec<_> = repeated
        .iter()
        .filter(|(key, _)| {
            let first = hits.iter().find(|h| h.key == ***key).expect("a hit");
            !excused.contains(&first.from)
        })
        .collect();
    eprintln!(
        "{} keys repeated after a replica died or lost its database mid-delivery: {repeated:?}",
        repeated.len()
    );
    assert!(
        doubled.is_empty(),
        "{} of {} deliveries repeated an idempotency key that a healthy replica had sent (a notification sent twice): {doubled:?}",
        doubled.len(),
        per_key.len()
    );
    assert_eq!(got, expected, "one delivery per notifying timeline event");
    eprintln!(
        "{} tickets, {} deliveries, leader {leader} killed, replica {partitioned} partitioned",
        tickets.len(),
        hits.len()
    );
}

/// Whether `have` holds every event of `want`, as often as `want` does.
fn covers(have: &[String], want: &[String]) -> bool {
    want.iter()
        .all(|k| have.iter().filter(|h| *h == k).count() >= want.iter().filter(|w| *w == k).count())
}
