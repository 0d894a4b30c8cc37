//! Hostile or broken input on the gRPC port of a real collector: an
//! oversized message, garbage bytes (plain and inside TLS), a flood of
//! streams from one client and a report over the result limit each get a
//! clean refusal; the collector stays healthy, its memory bounded, and
//! other agents' reports go through.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::sim::{SimAgent, State};
use common::{Collector, eventually};
use forewarn_proto::v1 as pb;
use forewarn_proto::v1::enrollment_client::EnrollmentClient;
use forewarn_proto::v1::ingest_client::IngestClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Status, Streaming};

/// Longest any step waits for the collector.
const WAIT: Duration = Duration::from_secs(15);

// === helpers ===

fn now_ms() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(d.as_millis()).expect("millis")
}

fn timestamp(ms: i64) -> forewarn_proto::Timestamp {
    forewarn_proto::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).expect("nanos"),
    }
}

/// Deterministic filler bytes (xorshift): garbage, but reproducible.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()[0]
        })
        .collect()
}

async fn channel(c: &Collector, identity: Option<Identity>) -> Channel {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(c.ca_pem()))
        .domain_name("localhost");
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    Channel::from_shared(c.url())
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .connect_timeout(WAIT)
        .connect()
        .await
        .expect("connect to the collector")
}

/// Enrolls a host through the real RPC; returns its id and mTLS identity.
async fn enroll(c: &Collector, hostname: &str) -> (String, Identity) {
    let (token, _) = c.token("default", &[]);
    let key = rcgen::KeyPair::generate().expect("key");
    let csr_pem = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("csr pem");
    let resp = EnrollmentClient::new(channel(c, None).await)
        .enroll(pb::EnrollRequest {
            token,
            csr_pem,
            host: Some(pb::HostFacts {
                hostname: hostname.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("enroll")
        .into_inner();
    (
        resp.agent_id,
        Identity::from_pem(resp.certificate_chain_pem, key.serialize_pem()),
    )
}

/// An open `Ingest/Session` stream driven by hand.
struct Session {
    tx: mpsc::Sender<pb::AgentMessage>,
    inbound: Streaming<pb::CollectorMessage>,
    agent_id: String,
    boot_id: String,
}

/// Opens a session on `ch` and sends its hello.
async fn open(ch: Channel, agent_id: &str, boot_id: &str) -> Result<Session, Status> {
    let (tx, rx) = mpsc::channel(4);
    tx.send(pb::AgentMessage {
        body: Some(pb::agent_message::Body::Hello(pb::Hello {
            agent_id: agent_id.into(),
            boot_id: boot_id.into(),
            host: Some(pb::HostFacts {
                hostname: "hostile".into(),
                ..Default::default()
            }),
            interval_secs: 60,
        })),
    })
    .await
    .expect("queue hello");
    let inbound = IngestClient::new(ch)
        .max_decoding_message_size(64 << 20)
        .session(ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok(Session {
        tx,
        inbound,
        agent_id: agent_id.into(),
        boot_id: boot_id.into(),
    })
}

fn result(check: &str, item: &str, message: String) -> pb::CheckResult {
    pb::CheckResult {
        check: check.into(),
        item: item.into(),
        state: State::Crit as i32,
        message,
        metrics: Vec::new(),
        since: Some(timestamp(now_ms())),
    }
}

impl Session {
    /// Sends one `StateChanges` report; waits for its ack (`Ok`) or the
    /// status the collector ended the stream with (`Err`).
    async fn report(&mut self, seq: u64, results: Vec<pb::CheckResult>) -> Result<(), Status> {
        let msg = pb::AgentMessage {
            body: Some(pb::agent_message::Body::Report(pb::Report {
                agent_id: self.agent_id.clone(),
                boot_id: self.boot_id.clone(),
                seq,
                observed_at: Some(timestamp(now_ms())),
                payload: Some(pb::report::Payload::StateChanges(pb::StateChanges {
                    results,
                })),
            })),
        };
        // A collector that already hung up makes this fail; the status
        // still arrives on the inbound stream.
        let _ = self.tx.send(msg).await;
        let reply = tokio::time::timeout(WAIT, async {
            loop {
                match self.inbound.message().await? {
                    Some(pb::CollectorMessage {
                        body: Some(pb::collector_message::Body::Ack(a)),
                    }) if a.seq == seq => return Ok(()),
                    Some(_) => {}
                    None => return Err(Status::unknown("stream ended without a status")),
                }
            }
        })
        .await;
        reply.unwrap_or_else(|_| panic!("no answer to report {seq} within {WAIT:?}"))
    }
}

async fn assert_healthy(c: &Collector) {
    let resp = reqwest::get(format!("http://{}/healthz", c.http))
        .await
        .expect("healthz");
    assert_eq!(resp.status().as_u16(), 200, "collector unhealthy");
}

/// Resident memory of the collector process, KiB.
fn rss_kib(c: &Collector) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", c.proc.child.id()))
        .expect("/proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// Waits until the peer closes `stream` (EOF or reset); panics after WAIT.
fn assert_closed<S: Read>(stream: &mut S, what: &str) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => {
                eprintln!("{what}: connection ended with {e}");
                return;
            }
        }
        assert!(Instant::now() < deadline, "{what}: connection still open");
    }
}

async fn ticket_of(c: &Collector, agent_id: &str) -> Option<serde_json::Value> {
    c.get("/api/v1/tickets")
        .await
        .as_array()
        .expect("ticket list")
        .iter()
        .find(|t| t["agent_id"] == agent_id)
        .cloned()
}

// === tests ===

/// A 2 MiB report (the limit is 1 MiB) ends that stream with
/// RESOURCE_EXHAUSTED/OUT_OF_RANGE; another agent reporting at the same
/// time gets its ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_refused_and_others_are_unaffected() {
    let c = Collector::start();
    let (agent_id, identity) = enroll(&c, "big-mouth").await;
    let (token, _) = c.token("default", &[]);
    let mut bystander = SimAgent::enroll(&c, &token, "bystander").await;
    bystander.connect(60).await;

    let mut s = open(channel(&c, Some(identity)).await, &agent_id, "boot-big")
        .await
        .expect("session accepted");
    // The stream works for a normal report first (the test can fail).
    s.report(1, vec![result("service", "small", "ok".into())])
        .await
        .expect("a normal report is acknowledged");

    let huge = result("service", "huge", "x".repeat(2 << 20));
    let (refused, ()) = tokio::join!(
        s.report(2, vec![huge]),
        bystander.change("service", "nginx", State::Crit, "nginx down"),
    );
    let status = refused.expect_err("a 2 MiB report must be refused");
    eprintln!(
        "oversized report refused: {:?} {}",
        status.code(),
        status.message()
    );
    assert!(
        matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{status:?}"
    );

    assert_healthy(&c).await;
    let bystander_id = bystander.agent_id.clone();
    eventually(WAIT, "the bystander's ticket", || {
        let c = &c;
        let id = bystander_id.clone();
        async move { ticket_of(c, &id).await }
    })
    .await;
    // Nothing of the oversized report was stored.
    let agent = c.get(&format!("/api/v1/agents/{agent_id}")).await;
    let checks = agent["checks"].as_array().expect("checks");
    assert!(checks.iter().all(|r| r["item"] != "huge"), "{agent}");
}

/// Random bytes on the gRPC port, raw and inside a TLS session, get the
/// connection closed; the collector serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_get_the_connection_closed() {
    let c = Collector::start();
    let addr = c.grpc;
    let ca_pem = c.ca_pem();
    tokio::task::spawn_blocking(move || {
        // Raw TCP: not even a TLS ClientHello.
        let mut tcp = TcpStream::connect(addr).expect("tcp connect");
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        // The server may hang up while we write; that is the point.
        let _ = tcp.write_all(&garbage(64 * 1024, 0x9e37_79b9_7f4a_7c15));
        assert_closed(&mut tcp, "raw garbage");

        // A real TLS session (no client certificate), then no HTTP/2.
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("ca"))
            .expect("add ca");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("tls client");
        let tcp = TcpStream::connect(addr).expect("tcp connect");
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        bytes.extend(garbage(16 * 1024, 42));
        tls.write_all(&bytes).expect("the TLS handshake succeeds");
        let _ = tls.flush();
        assert_closed(&mut tls, "garbage inside TLS");
    })
    .await
    .expect("garbage client");

    assert_healthy(&c).await;
    // A real agent still gets through.
    let (token, _) = c.token("default", &[]);
    let mut a = SimAgent::enroll(&c, &token, "after-garbage").await;
    a.connect(60).await;
    a.change("service", "nginx", State::Crit, "down").await;
}

/// 200 concurrent sessions on one connection with one agent's certificate:
/// the connection carries at most 16 streams at once (the server refuses
/// extra streams with REFUSED_STREAM; the client queues the rest), the agent
/// holds at most 4 sessions, every other one is refused with
/// RESOURCE_EXHAUSTED; memory stays bounded, the 4 sessions work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_flood_from_one_client_is_capped() {
    const FLOOD: usize = 200;
    let c = Collector::start();
    let (agent_id, identity) = enroll(&c, "flooder").await;
    let before = rss_kib(&c);
    let ch = channel(&c, Some(identity)).await;

    let calls = (0..FLOOD).map(|i| {
        let ch = ch.clone();
        let agent_id = agent_id.clone();
        tokio::spawn(async move {
            tokio::time::timeout(WAIT, open(ch, &agent_id, "boot-flood"))
                .await
                .unwrap_or_else(|_| panic!("session call {i} not answered within {WAIT:?}"))
        })
    });
    let mut open_sessions = Vec::new();
    // Refused by the per-agent session cap / by the per-connection stream
    // cap (streams opened before the client saw the server's SETTINGS).
    let (mut agent_cap, mut stream_cap) = (0, 0);
    for call in calls.collect::<Vec<_>>() {
        match call.await.expect("session task") {
            Ok(s) => open_sessions.push(s),
            Err(status) if status.code() == Code::ResourceExhausted => agent_cap += 1,
            Err(status) if format!("{status:?}").contains("REFUSED_STREAM") => stream_cap += 1,
            Err(status) => panic!("unexpected refusal: {status:?}"),
        }
    }
    let after = rss_kib(&c);
    eprintln!(
        "{FLOOD} session calls: {} open, {agent_cap} refused RESOURCE_EXHAUSTED (4 per agent), \
         {stream_cap} refused REFUSED_STREAM (16 per connection); \
         collector RSS {before} KiB before, {after} KiB after",
        open_sessions.len()
    );
    assert_eq!(open_sessions.len(), 4, "sessions per agent are capped at 4");
    assert_eq!(agent_cap + stream_cap, FLOOD - 4);
    assert!(agent_cap > 0, "the per-agent cap refused nothing");
    assert!(
        after < before + 64 * 1024,
        "collector RSS grew from {before} KiB to {after} KiB"
    );
    assert_healthy(&c).await;

    // The sessions that got in work.
    for (i, s) in open_sessions.iter_mut().enumerate() {
        let seq = u64::try_from(i).expect("seq") + 1;
        s.report(seq, vec![result("service", "flood", "up".into())])
            .await
            .expect("an admitted session reports");
    }
}

/// 5000 results in one report (limit 1000): INVALID_ARGUMENT, nothing of
/// it stored, no ticket opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_over_the_result_limit_is_refused_whole() {
    let c = Collector::start();
    let (agent_id, identity) = enroll(&c, "chatty").await;
    let mut s = open(
        channel(&c, Some(identity.clone())).await,
        &agent_id,
        "boot-chatty",
    )
    .await
    .expect("session accepted");
    let results = (0..5000)
        .map(|i| result("service", &format!("svc-{i}"), "down".into()))
        .collect();
    let status = s
        .report(1, results)
        .await
        .expect_err("5000 results must be refused");
    eprintln!(
        "5000-result report refused: {:?} {}",
        status.code(),
        status.message()
    );
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("limit 1000"), "{status:?}");

    assert_healthy(&c).await;
    let agent = c.get(&format!("/api/v1/agents/{agent_id}")).await;
    assert_eq!(agent["checks"], serde_json::json!([]), "{agent}");
    assert!(ticket_of(&c, &agent_id).await.is_none());

    // The same agent's valid report afterwards is stored (the test can fail).
    let mut s = open(
        channel(&c, Some(identity)).await,
        &agent_id,
        "boot-chatty-2",
    )
    .await
    .expect("session accepted");
    s.report(1, vec![result("service", "svc-0", "down".into())])
        .await
        .expect("a valid report is acknowledged");
    let agent = c.get(&format!("/api/v1/agents/{agent_id}")).await;
    assert_eq!(
        agent["checks"].as_array().expect("checks").len(),
        1,
        "{agent}"
    );
}
