//! Tenant isolation end to end, systematically: two tenants (acme and
//! globex), each with a tenant-scoped admin API key, a simulated agent
//! speaking the real protocol over real mTLS, an open ticket, an enrollment
//! token, a maintenance window and a silence — and a webhook sink whose
//! receiver is down, so each tenant has outbox rows too.
//!
//! Then each tenant attacks the other, in both directions:
//! - over gRPC with its agent's certificate: a hello naming the other
//!   tenant's agent, reports (state changes and heartbeats) whose
//!   `agent_id` names it, a renewal CSR and an enrollment CSR whose subject
//!   and SAN name it — every one refused or ignored, nothing applied;
//! - over the HTTP API with its key: every id-taking endpoint on the other
//!   tenant's ids (404, nothing changed), every list (nothing of the other
//!   tenant in any element nor anywhere in the response text), and
//!   maintenance windows and silences aimed at the other tenant, its site
//!   or its host (404).
//!
//! The victim's agent, tickets (with their timelines), tokens, windows and
//! audit log are read through the MSP-wide key before and after each round
//! and must be identical; at the end each tenant's own key still finds its
//! ticket open and unacknowledged, its agent and token unrevoked, its
//! window and silence in place. Last, names that are only unique within a
//! tenant (a site `hq`, a host `srv-01` in both): one tenant's silence by
//! name never mutes the other's host.

mod common;

use std::time::Duration;

use common::sim::{self, SimAgent, State, facts, now_ms, timestamp};
use common::{Backend, Collector, on_each_backend};
use forewarn_proto::v1 as pb;
use forewarn_proto::v1::enrollment_client::EnrollmentClient;
use forewarn_proto::v1::ingest_client::IngestClient;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Identity};

/// Longest any one protocol exchange may take.
const STEP: Duration = Duration::from_secs(15);

/// A check item no legitimate report uses: whatever carries it was forged.
const FORGED_ITEM: &str = "tenancy-forged";

// === fixture ===

/// One tenant and everything it owns.
struct Tenant {
    name: &'static str,
    /// Tenant-scoped admin key (the most a tenant's key can be).
    key: String,
    agent: SimAgent,
    /// Multi-use enrollment token (the agent enrolled with it).
    token: String,
    token_id: String,
    ticket_id: i64,
    window_id: i64,
    silence_id: i64,
}

impl Tenant {
    fn site(&self) -> String {
        format!("{}-hq", self.name)
    }

    /// Strings that name this tenant or something of it: none may appear
    /// in anything the other tenant's key can read.
    fn marks(&self) -> Vec<String> {
        vec![
            self.name.to_string(),
            self.agent.tenant_id.clone(),
            self.agent.agent_id.clone(),
            self.agent.hostname.clone(),
            self.site(),
            self.token_id.clone(),
        ]
    }
}

struct Fixture {
    c: Collector,
    acme: Tenant,
    globex: Tenant,
    /// The webhook secret (kept for the collector's lifetime).
    _secret: tempfile::NamedTempFile,
}

/// A loopback port nothing listens on: the webhook receiver is "down".
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

async fn send(
    c: &Collector,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{}{path}", c.http))
        .bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("http request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("response body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json, text)
}

/// GET with `key`, asserting 200.
async fn get(c: &Collector, key: &str, path: &str) -> Value {
    let (status, body, text) = send(c, key, Method::GET, path, None).await;
    assert_eq!(status, 200, "GET {path}: {text}");
    body
}

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}"))
}

impl Fixture {
    async fn new(backend: Backend) -> Self {
        let secret = tempfile::NamedTempFile::new().expect("secret file");
        std::fs::write(secret.path(), "tenancy-webhook-secret-0123456789\n").expect("secret");
        // One attempt, then a retry an hour later: the rows stay pending.
        let c = Collector::start_on(
            backend,
            &format!(
                "[[sinks.webhook]]\nname = \"down\"\nurl = \"http://127.0.0.1:{}/hook\"\n\
             secret_file = {:?}\nretry_initial_ms = 3600000\nretry_max_ms = 3600000\n",
                closed_port(),
                secret.path()
            ),
        );
        let acme = Self::tenant(&c, "acme").await;
        let globex = Self::tenant(&c, "globex").await;
        // Each ticket reached the (failing) sink: an outbox row per tenant.
        // (Delivery attempts touch only the row, never the ticket or the
        // audit log, so they cannot disturb the snapshots below.)
        for t in [&acme, &globex] {
            common::eventually(STEP, "an outbox row per tenant", || async {
                let rows = get(&c, &t.key, "/api/v1/outbox").await;
                arr(&rows)
                    .iter()
                    .any(|r| r["ticket_id"] == t.ticket_id)
                    .then_some(())
            })
            .await;
        }
        Self {
            c,
            acme,
            globex,
            _secret: secret,
        }
    }

    async fn tenant(c: &Collector, name: &'static str) -> Tenant {
        let out = c.cli(&["tenant", "add", name]);
        assert!(
            out.status.success(),
            "tenant add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = c.cli_json(&[
            "api-key",
            "create",
            "--name",
            &format!("{name}-admin"),
            "--tenant",
            name,
            "--role",
            "admin",
            "--json",
        ]);
        let key = key["key"].as_str().expect("key").to_string();
        let site = format!("{name}-hq");
        let (token, _) = c.token(name, &["--site", &site, "--max-uses", "5"]);
        let mut agent = SimAgent::enroll(c, &token, &format!("{name}-host")).await;
        assert_eq!(agent.site, site);
        // A long interval: nothing goes overdue while the test runs.
        agent.connect(3600).await;
        agent
            .change("service", "cron", State::Crit, "cron stopped")
            .await;

        let tokens = get(c, &key, "/api/v1/tokens").await;
        let tokens = arr(&tokens);
        assert_eq!(tokens.len(), 1, "{tokens:?}");
        let token_id = tokens[0]["id"].as_str().expect("token id").to_string();
        let tickets = get(c, &key, "/api/v1/tickets?state=open").await;
        let tickets = arr(&tickets);
        assert_eq!(tickets.len(), 1, "one open ticket for {name}: {tickets:?}");
        assert_eq!(tickets[0]["agent_id"], agent.agent_id.as_str());
        let ticket_id = tickets[0]["id"].as_i64().expect("ticket id");

        let (status, w, text) = send(
            c,
            &key,
            Method::POST,
            "/api/v1/maintenance",
            Some(json!({
                "host": agent.hostname, "check": "backup",
                "start": "2031-01-01T00:00:00Z", "end": "2031-01-02T00:00:00Z",
                "reason": format!("{name} backup migration"),
            })),
        )
        .await;
        assert_eq!(status, 201, "{name} window: {text}");
        assert_eq!(w["agent_id"], agent.agent_id.as_str());
        let window_id = w["id"].as_i64().expect("window id");
        let (status, s, text) = send(
            c,
            &key,
            Method::POST,
            "/api/v1/silences",
            Some(json!({
                "site": site, "check": "backup", "duration": "2h",
                "reason": format!("{name} backup server swap"),
            })),
        )
        .await;
        assert_eq!(status, 201, "{name} silence: {text}");
        assert_eq!(s["tenant_id"], agent.tenant_id.as_str());
        let silence_id = s["id"].as_i64().expect("silence id");

        Tenant {
            name,
            key,
            agent,
            token,
            token_id,
            ticket_id,
            window_id,
            silence_id,
        }
    }

    /// Everything the collector holds about `t`, read with the MSP-wide
    /// key (outbox rows excluded: their attempt counters move on their own).
    async fn snapshot(&self, t: &Tenant) -> Value {
        let c = &self.c;
        let key = &c.api_key;
        let tenant = t.agent.tenant_id.as_str();
        let of_tenant = |v: Value| -> Vec<Value> {
            arr(&v)
                .iter()
                .filter(|e| e["tenant_id"] == tenant)
                .cloned()
                .collect()
        };
        let agents = of_tenant(get(c, key, "/api/v1/agents").await);
        let mut agent_details = Vec::new();
        for a in &agents {
            let id = a["id"].as_str().expect("agent id");
            agent_details.push(get(c, key, &format!("/api/v1/agents/{id}")).await);
        }
        let tickets = of_tenant(get(c, key, "/api/v1/tickets?state=all").await);
        let mut ticket_details = Vec::new();
        for x in &tickets {
            let id = x["id"].as_i64().expect("ticket id");
            ticket_details.push(get(c, key, &format!("/api/v1/tickets/{id}")).await);
        }
        json!({
            "agents": agent_details,
            "tickets": ticket_details,
            "audit": of_tenant(get(c, key, "/api/v1/audit?limit=1000").await),
            "tokens": of_tenant(get(c, key, "/api/v1/tokens").await),
            "maintenance": of_tenant(get(c, key, "/api/v1/maintenance?include_ended=true").await),
            "silences": of_tenant(get(c, key, "/api/v1/silences?include_ended=true").await),
            "kpis": of_tenant(get(c, key, "/api/v1/kpis?from=2020-01-01T00:00:00Z&to=2099-01-01T00:00:00Z").await),
        })
    }

    /// The two directions: (attacker, victim).
    fn rounds(&self) -> [(&Tenant, &Tenant); 2] {
        [(&self.acme, &self.globex), (&self.globex, &self.acme)]
    }
}

/// Asserts two snapshots of `victim` are identical, naming what differs.
fn assert_unchanged(victim: &Tenant, before: &Value, after: &Value) {
    for part in [
        "agents",
        "tickets",
        "audit",
        "tokens",
        "maintenance",
        "silences",
        "kpis",
    ] {
        assert_eq!(
            before[part], after[part],
            "{}'s {part} changed under the other tenant's attempts",
            victim.name
        );
    }
    assert!(
        !after.to_string().contains(FORGED_ITEM),
        "a forged result reached {}: {after}",
        victim.name
    );
}

// === gRPC ===

fn hello(agent_id: &str, hostname: &str, boot_id: &str) -> pb::AgentMessage {
    pb::AgentMessage {
        body: Some(pb::agent_message::Body::Hello(pb::Hello {
            agent_id: agent_id.to_string(),
            boot_id: boot_id.to_string(),
            host: Some(facts(hostname)),
            interval_secs: 3600,
            sent_at: Some(timestamp(now_ms())),
        })),
    }
}

fn forged_result(state: State) -> pb::CheckResult {
    pb::CheckResult {
        check: "service".into(),
        item: FORGED_ITEM.into(),
        state: state as i32,
        message: "written by another tenant's agent".into(),
        metrics: Vec::new(),
        since: Some(timestamp(now_ms())),
    }
}

fn report(
    agent_id: &str,
    boot_id: &str,
    seq: u64,
    payload: pb::report::Payload,
) -> pb::AgentMessage {
    pb::AgentMessage {
        body: Some(pb::agent_message::Body::Report(pb::Report {
            agent_id: agent_id.to_string(),
            boot_id: boot_id.to_string(),
            seq,
            observed_at: Some(timestamp(now_ms())),
            payload: Some(payload),
        })),
    }
}

fn state_changes(state: State) -> pb::report::Payload {
    pb::report::Payload::StateChanges(pb::StateChanges {
        results: vec![forged_result(state)],
    })
}

fn heartbeat(checks: Vec<pb::CheckResult>) -> pb::report::Payload {
    pb::report::Payload::Heartbeat(pb::Heartbeat {
        snapshot: Some(pb::HostSnapshot {
            uptime_secs: 60,
            cpu_percent: 99.0,
            memory_used_bytes: 1 << 30,
            memory_total_bytes: 4 << 30,
            ..Default::default()
        }),
        checks,
        spool: None,
    })
}

/// Opens a session on `ch`, sends `msgs` and returns the collector's first
/// answer: the acknowledged seq, or the status that ended the session.
async fn session_answer(ch: Channel, msgs: Vec<pb::AgentMessage>) -> Result<u64, tonic::Status> {
    let (tx, rx) = mpsc::channel(16);
    for m in msgs {
        tx.send(m).await.expect("queue message");
    }
    let exchange = async {
        let mut inbound = IngestClient::new(ch)
            .session(ReceiverStream::new(rx))
            .await?
            .into_inner();
        loop {
            match inbound.message().await? {
                Some(pb::CollectorMessage {
                    body: Some(pb::collector_message::Body::Ack(a)),
                }) => return Ok(a.seq),
                Some(_) => {}
                None => {
                    return Err(tonic::Status::unknown(
                        "the collector ended the session without an answer",
                    ));
                }
            }
        }
    };
    let answer = tokio::time::timeout(STEP, exchange)
        .await
        .expect("the collector answers within the step timeout");
    // Ends the session (the stream closes) once answered.
    drop(tx);
    answer
}

/// A CSR for a fresh key whose subject and SAN name `victim`'s agent and
/// tenant (what a forger would ask for); returns (key, CSR PEM).
fn csr_naming(victim: &Tenant) -> (rcgen::KeyPair, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, victim.agent.agent_id.as_str());
    p.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        victim.agent.tenant_id.as_str(),
    );
    p.distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, "forewarn-agent");
    p.subject_alt_names = vec![rcgen::SanType::URI(
        format!("urn:forewarn:agent:{}", victim.agent.agent_id)
            .as_str()
            .try_into()
            .expect("uri"),
    )];
    let pem = p
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("csr pem");
    (key, pem)
}

/// A TLS channel to the collector, with `identity` as client certificate.
async fn channel(c: &Collector, identity: Option<Identity>) -> Channel {
    sim::channel(&c.url(), &c.ca_pem(), identity).await
}

fn assert_denied(what: &str, answer: Result<u64, tonic::Status>) {
    match answer {
        Err(s) => assert_eq!(
            s.code(),
            tonic::Code::PermissionDenied,
            "{what}: refused, but with {:?} {}",
            s.code(),
            s.message()
        ),
        Ok(seq) => panic!("{what}: the collector acknowledged report {seq}"),
    }
}

/// Every way the protocol lets `attacker`'s agent name `victim`'s; returns
/// how many attempts were made (each one refused or ignored, or it panics).
async fn grpc_attacks(f: &Fixture, attacker: &Tenant, victim: &Tenant) -> usize {
    let a = &attacker.agent;
    let v = &victim.agent;
    let mut attempts = 0;
    let boot = |n: u32| format!("forge-{}-{n}-{}", attacker.name, now_ms());

    // (a) A hello naming the victim's agent (with its hostname).
    let answer = session_answer(
        a.mtls_channel().await,
        vec![
            hello(&v.agent_id, &v.hostname, &boot(1)),
            report(&v.agent_id, &boot(1), 1, state_changes(State::Crit)),
        ],
    )
    .await;
    assert_denied("hello naming the other tenant's agent", answer);
    attempts += 1;

    // (b) A correct hello, then reports whose agent_id names the victim:
    // a state change and a heartbeat carrying a CRIT result.
    for (what, payload) in [
        ("state change", state_changes(State::Crit)),
        ("heartbeat", heartbeat(vec![forged_result(State::Crit)])),
    ] {
        let b = boot(2);
        let answer = session_answer(
            a.mtls_channel().await,
            vec![
                hello(&a.agent_id, &a.hostname, &b),
                report(&v.agent_id, &b, 1, payload),
            ],
        )
        .await;
        assert_denied(&format!("{what} naming the other tenant's agent"), answer);
        attempts += 1;
    }

    // (c) A renewal whose CSR names the victim in subject and SAN: the
    // collector ignores the names and issues for the calling certificate.
    let (key, csr_pem) = csr_naming(victim);
    let renewed = IngestClient::new(a.mtls_channel().await)
        .renew(pb::RenewRequest { csr_pem })
        .await
        .unwrap_or_else(|s| panic!("renewal refused: {:?} {}", s.code(), s.message()))
        .into_inner();
    attempts += 1;
    let renewed = Identity::from_pem(renewed.certificate_chain_pem, key.serialize_pem());
    // The new certificate is not the victim's: it cannot open the victim's
    // session...
    let b = boot(3);
    let answer = session_answer(
        channel(&f.c, Some(renewed.clone())).await,
        vec![
            hello(&v.agent_id, &v.hostname, &b),
            report(&v.agent_id, &b, 1, state_changes(State::Crit)),
        ],
    )
    .await;
    assert_denied(
        "renewed certificate claiming the other tenant's agent",
        answer,
    );
    attempts += 1;
    // ...but it is the attacker's own, valid in the attacker's tenant (the
    // collector checks the certificate's tenant against the agent's).
    let b = boot(4);
    let seq = session_answer(
        channel(&f.c, Some(renewed)).await,
        vec![
            hello(&a.agent_id, &a.hostname, &b),
            report(&a.agent_id, &b, 1, heartbeat(Vec::new())),
        ],
    )
    .await
    .unwrap_or_else(|s| panic!("the renewed certificate works for its own agent: {s}"));
    assert_eq!(seq, 1);

    // (d) An enrollment with the attacker's token whose CSR names the
    // victim: a new agent of the attacker's tenant, not the victim.
    let (key, csr_pem) = csr_naming(victim);
    let enrolled = EnrollmentClient::new(channel(&f.c, None).await)
        .enroll(pb::EnrollRequest {
            token: attacker.token.clone(),
            csr_pem,
            host: Some(facts(&format!("{}-clone", attacker.name))),
        })
        .await
        .unwrap_or_else(|s| panic!("enrollment refused: {:?} {}", s.code(), s.message()))
        .into_inner();
    attempts += 1;
    assert_ne!(enrolled.agent_id, v.agent_id);
    assert_eq!(enrolled.tenant_id, a.tenant_id);
    let b = boot(5);
    let answer = session_answer(
        channel(
            &f.c,
            Some(Identity::from_pem(
                enrolled.certificate_chain_pem,
                key.serialize_pem(),
            )),
        )
        .await,
        vec![
            hello(&v.agent_id, &v.hostname, &b),
            report(&v.agent_id, &b, 1, state_changes(State::Crit)),
        ],
    )
    .await;
    assert_denied(
        "enrolled-with-a-forged-CSR certificate claiming the other tenant's agent",
        answer,
    );
    attempts += 1;
    attempts
}

on_each_backend!(agents_cannot_write_into_another_tenant_over_grpc);
async fn agents_cannot_write_into_another_tenant_over_grpc(backend: Backend) {
    let mut f = Fixture::new(backend).await;
    let mut attempts = 0;
    for (attacker, victim) in f.rounds() {
        let before = f.snapshot(victim).await;
        attempts += grpc_attacks(&f, attacker, victim).await;
        let after = f.snapshot(victim).await;
        assert_unchanged(victim, &before, &after);
    }
    // Both real agents still report over their own sessions.
    f.acme.agent.heartbeat().await;
    f.globex.agent.heartbeat().await;
    // Nothing forged landed anywhere, in either tenant.
    let everything = format!(
        "{}{}",
        f.c.get("/api/v1/tickets?state=all").await,
        f.c.get("/api/v1/audit?limit=1000").await
    );
    assert!(!everything.contains(FORGED_ITEM), "{everything}");
    for t in [&f.acme, &f.globex] {
        let d =
            f.c.get(&format!("/api/v1/agents/{}", t.agent.agent_id))
                .await;
        assert!(!d.to_string().contains(FORGED_ITEM), "{d}");
    }
    // Every audit entry naming an agent (the renewals, the enrollments, the
    // sessions) is filed under that agent's own tenant.
    let agents = f.c.get("/api/v1/agents").await;
    let audit = f.c.get("/api/v1/audit?limit=1000").await;
    let mut renewals = 0;
    for e in arr(&audit) {
        let text = e.to_string();
        for a in arr(&agents) {
            let id = a["id"].as_str().expect("agent id");
            if text.contains(id) {
                assert_eq!(
                    e["tenant_id"], a["tenant_id"],
                    "audit entry {e} names agent {a}"
                );
            }
        }
        renewals += usize::from(e["action"] == "agent.renewed");
    }
    // One renewal per direction happened (the forged CSRs were honoured,
    // for the caller's identity).
    assert_eq!(renewals, 2, "{audit}");
    eprintln!(
        "tenancy/grpc: {attempts} cross-tenant attempts (acme→globex and globex→acme), {attempts} refused or ignored, 0 leaks"
    );
}

// === HTTP API ===

/// Every id-taking endpoint of the API on `victim`'s ids with `attacker`'s
/// key: each must answer 404. Returns how many attempts were made.
async fn id_attacks(f: &Fixture, attacker: &Tenant, victim: &Tenant) -> usize {
    let agent = &victim.agent.agent_id;
    let ticket = victim.ticket_id;
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/agents/{agent}"), None),
        (Method::POST, format!("/api/v1/agents/{agent}/revoke"), None),
        (Method::GET, format!("/api/v1/tickets/{ticket}"), None),
        (
            Method::POST,
            format!("/api/v1/tickets/{ticket}/acknowledge"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{ticket}/assign"),
            Some(json!({"assignee": "mallory"})),
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{ticket}/escalate"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{ticket}/notes"),
            Some(json!({"text": "written by another tenant"})),
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{ticket}/resolve"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/tokens/{}/revoke", victim.token_id),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/maintenance/{}", victim.window_id),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/silences/{}", victim.silence_id),
            None,
        ),
    ];
    let n = attempts.len();
    for (method, path, body) in attempts {
        let (status, _, text) = send(&f.c, &attacker.key, method.clone(), &path, body).await;
        assert_eq!(
            status, 404,
            "{} key: {method} {path} must be 404, got {status}: {text}",
            attacker.name
        );
    }
    n
}

/// Windows and silences aimed at `victim` (by tenant name or id, its site,
/// its host by id or name) with `attacker`'s key: each must be refused.
async fn create_attacks(f: &Fixture, attacker: &Tenant, victim: &Tenant) -> usize {
    let v = &victim.agent;
    let targets = [
        json!({"tenant": victim.name}),
        json!({"tenant": v.tenant_id}),
        json!({"tenant": victim.name, "site": victim.site()}),
        json!({"tenant": v.tenant_id, "host": v.agent_id}),
        json!({"host": v.agent_id}),
        json!({"host": v.hostname}),
    ];
    let mut n = 0;
    for target in targets {
        for (path, extra) in [
            (
                "/api/v1/maintenance",
                json!({"start": "2031-02-01T00:00:00Z", "end": "2031-02-02T00:00:00Z", "reason": "hostile"}),
            ),
            (
                "/api/v1/silences",
                json!({"duration": "1h", "reason": "hostile"}),
            ),
        ] {
            let mut body = target.clone();
            body.as_object_mut()
                .expect("object")
                .extend(extra.as_object().expect("object").clone());
            let (status, _, text) =
                send(&f.c, &attacker.key, Method::POST, path, Some(body.clone())).await;
            assert_eq!(
                status, 404,
                "{} key: POST {path} {body} must be 404, got {status}: {text}",
                attacker.name
            );
            n += 1;
        }
    }
    n
}

/// Every list with `attacker`'s key: no element of the victim's tenant or
/// agent, and none of the victim's names anywhere in the text. Returns how
/// many lists were read.
async fn list_attacks(f: &Fixture, attacker: &Tenant, victim: &Tenant) -> usize {
    let lists = [
        "/api/v1/tenants",
        "/api/v1/agents",
        "/api/v1/tickets?state=all",
        "/api/v1/audit?limit=1000",
        "/api/v1/kpis",
        "/api/v1/tokens",
        "/api/v1/outbox?state=all&limit=1000",
        "/api/v1/maintenance?include_ended=true",
        "/api/v1/silences?include_ended=true",
    ];
    let own = attacker.agent.tenant_id.as_str();
    for path in lists {
        let (status, body, text) = send(&f.c, &attacker.key, Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {text}");
        let items = arr(&body);
        // The attacker sees its own objects (so the check can fail).
        assert!(!items.is_empty(), "{} key: {path} is empty", attacker.name);
        for e in items {
            let tenant = if path == "/api/v1/tenants" {
                &e["id"]
            } else {
                &e["tenant_id"]
            };
            assert_eq!(tenant, own, "{} key: {path} holds {e}", attacker.name);
            assert_ne!(e["agent_id"], victim.agent.agent_id.as_str(), "{path}: {e}");
        }
        for mark in victim.marks() {
            assert!(
                !text.contains(&mark),
                "{} key: {path} mentions {mark:?} of {}: {text}",
                attacker.name,
                victim.name
            );
        }
    }
    lists.len()
}

on_each_backend!(api_keys_cannot_read_or_change_another_tenants_objects);
async fn api_keys_cannot_read_or_change_another_tenants_objects(backend: Backend) {
    let f = Fixture::new(backend).await;
    let (mut ids, mut creates, mut lists) = (0, 0, 0);
    for (attacker, victim) in f.rounds() {
        let before = f.snapshot(victim).await;
        ids += id_attacks(&f, attacker, victim).await;
        creates += create_attacks(&f, attacker, victim).await;
        lists += list_attacks(&f, attacker, victim).await;
        let after = f.snapshot(victim).await;
        assert_unchanged(victim, &before, &after);
    }

    // What needs no key (/metrics, /healthz) names no tenant, host or id.
    for path in ["/metrics", "/healthz"] {
        let resp = reqwest::get(format!("http://{}{path}", f.c.http))
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let text = resp.text().await.expect("body");
        for mark in f.acme.marks().into_iter().chain(f.globex.marks()) {
            assert!(!text.contains(&mark), "{path} mentions {mark:?}: {text}");
        }
        lists += 1;
    }

    // Each tenant's own key still finds everything as it was.
    for t in [&f.acme, &f.globex] {
        let ticket = get(&f.c, &t.key, &format!("/api/v1/tickets/{}", t.ticket_id)).await;
        assert_eq!(ticket["state"], "open", "{ticket}");
        assert_eq!(ticket["acknowledged_at"], Value::Null, "{ticket}");
        assert_eq!(ticket["assignee"], Value::Null, "{ticket}");
        assert_eq!(ticket["escalations"], 0, "{ticket}");
        assert!(
            !ticket.to_string().contains("another tenant"),
            "a note from the other tenant: {ticket}"
        );
        let agent = get(
            &f.c,
            &t.key,
            &format!("/api/v1/agents/{}", t.agent.agent_id),
        )
        .await;
        assert_eq!(agent["revoked"], false, "{agent}");
        let tokens = get(&f.c, &t.key, "/api/v1/tokens").await;
        let token = arr(&tokens)
            .iter()
            .find(|x| x["id"] == t.token_id.as_str())
            .unwrap_or_else(|| panic!("{}'s token is gone: {tokens}", t.name));
        assert_eq!(token["revoked_at"], Value::Null, "{token}");
        let windows = get(&f.c, &t.key, "/api/v1/maintenance").await;
        assert!(
            arr(&windows).iter().any(|w| w["id"] == t.window_id),
            "{}'s window is gone: {windows}",
            t.name
        );
        let silences = get(&f.c, &t.key, "/api/v1/silences").await;
        assert!(
            arr(&silences)
                .iter()
                .any(|s| s["id"] == t.silence_id && s["active"] == true),
            "{}'s silence is gone: {silences}",
            t.name
        );
    }
    let total = ids + creates + lists;
    eprintln!(
        "tenancy/api: {total} cross-tenant attempts (acme→globex and globex→acme): \
         {ids} id-taking calls all 404, {creates} window/silence creations all 404, \
         {lists} reads (every list, /metrics, /healthz) with nothing of the other tenant; 0 leaks"
    );
}

// === same names, different tenants ===

on_each_backend!(a_silence_by_name_never_reaches_another_tenant_with_the_same_names);
/// Site names and hostnames are only unique within a tenant: acme and
/// globex both have a site `hq` with a host `srv-01`. acme silences (its)
/// site `hq` and (its) host `srv-01` by name — acme's CRIT opens no ticket
/// (the silence works), globex's CRIT on the same check opens one at once.
async fn a_silence_by_name_never_reaches_another_tenant_with_the_same_names(backend: Backend) {
    let c = Collector::start_on(backend, "");
    let mut agents = Vec::new();
    let mut keys = Vec::new();
    for name in ["acme", "globex"] {
        let out = c.cli(&["tenant", "add", name]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = c.cli_json(&[
            "api-key", "create", "--name", name, "--tenant", name, "--role", "admin", "--json",
        ]);
        keys.push(key["key"].as_str().expect("key").to_string());
        let (token, _) = c.token(name, &["--site", "hq"]);
        let mut a = SimAgent::enroll(&c, &token, "srv-01").await;
        a.connect(3600).await;
        agents.push(a);
    }
    for body in [
        json!({"site": "hq", "check": "service", "duration": "1h", "reason": "hq rack move"}),
        json!({"host": "srv-01", "duration": "1h", "reason": "srv-01 reinstall"}),
    ] {
        let (status, w, text) =
            send(&c, &keys[0], Method::POST, "/api/v1/silences", Some(body)).await;
        assert_eq!(status, 201, "{text}");
        assert_eq!(w["tenant_id"], agents[0].tenant_id.as_str(), "{w}");
    }
    for a in &mut agents {
        a.change("service", "nginx", State::Crit, "nginx stopped")
            .await;
    }
    // Each change was committed (acknowledged) with its ticket decision.
    let tickets = c.get("/api/v1/tickets?state=all").await;
    let of = |a: &SimAgent| -> usize {
        arr(&tickets)
            .iter()
            .filter(|t| t["agent_id"] == a.agent_id.as_str())
            .count()
    };
    assert_eq!(of(&agents[0]), 0, "acme's own silence holds: {tickets}");
    assert_eq!(
        of(&agents[1]),
        1,
        "acme's silence of `hq`/`srv-01` muted globex's host: {tickets}"
    );
    let globex = get(&c, &keys[1], "/api/v1/silences").await;
    assert_eq!(arr(&globex).len(), 0, "{globex}");
    eprintln!("tenancy/names: 2 same-named silences of acme did not reach globex");
}
