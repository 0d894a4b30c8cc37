//! Hostile or broken input on the gRPC port of a real collector: an
//! oversized message, garbage bytes (plain and inside TLS), 10,000 streams
//! from one client, a session-open loop, a report flood, deeply nested
//! protobuf and a report over the result limit each get a clean refusal (or,
//! for reports, a slowdown that loses nothing); every refusal is counted in
//! `forewarn_rejected_total{reason}`; the collector stays healthy, its
//! memory bounded, and other agents' reports go through.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic_prost::prost::Message as _;

use common::sim::{self, SimAgent, State, now_ms, timestamp};
use common::{Collector, eventually};
use forewarn_proto::v1 as pb;
use forewarn_proto::v1::enrollment_client::EnrollmentClient;
use forewarn_proto::v1::ingest_client::IngestClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Identity};
use tonic::{Code, Status, Streaming};

/// Longest any step waits for the collector.
const WAIT: Duration = Duration::from_secs(15);

// === helpers ===

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
    sim::channel(&c.url(), &c.ca_pem(), identity).await
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
            sent_at: None,
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

/// Starts a collector with `grpc` (TOML keys) added to its `[grpc]` table.
fn start_with_grpc(grpc: &str) -> Collector {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[grpc]\nlisten_addr = \"127.0.0.1:0\"\n{grpc}\n[http]\nlisten_addr = \"127.0.0.1:0\"\n",
            dir.path().join("data")
        ),
    )
    .expect("write config");
    Collector::start_with(dir, config)
}

/// Peak resident memory (VmHWM) of the collector process, KiB.
fn peak_rss_kib(c: &Collector) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", c.proc.child.id()))
        .expect("/proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}

/// A codec that sends hand-encoded message bytes as they are (one gRPC
/// frame each) and decodes the collector's replies as usual.
struct RawCodec;

struct RawEncoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Status> {
        use tonic_prost::prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = pb::CollectorMessage;
    type Encoder = RawEncoder;
    type Decoder = tonic_prost::ProstDecoder<pb::CollectorMessage>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

/// Opens `Ingest/Session` sending `frames` (raw message bytes) first; the
/// sender stays open for more.
async fn raw_session(
    ch: Channel,
    frames: Vec<Vec<u8>>,
) -> Result<(mpsc::Sender<Vec<u8>>, Streaming<pb::CollectorMessage>), Status> {
    let (tx, rx) = mpsc::channel(frames.len() + 4);
    for f in frames {
        tx.send(f).await.expect("queue frame");
    }
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("channel not ready: {e}")))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/forewarn.v1.Ingest/Session");
    let inbound = grpc
        .streaming(tonic::Request::new(ReceiverStream::new(rx)), path, RawCodec)
        .await?
        .into_inner();
    Ok((tx, inbound))
}

/// Waits for the status a stream ends with; panics if it ends cleanly.
async fn end_status(inbound: &mut Streaming<pb::CollectorMessage>) -> Status {
    tokio::time::timeout(WAIT, async {
        loop {
            match inbound.message().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("stream ended without an error"),
                Err(status) => return status,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("stream not ended within {WAIT:?}"))
}

fn hello_bytes(agent_id: &str, boot_id: &str) -> Vec<u8> {
    pb::AgentMessage {
        body: Some(pb::agent_message::Body::Hello(pb::Hello {
            agent_id: agent_id.into(),
            boot_id: boot_id.into(),
            host: Some(pb::HostFacts {
                hostname: "nester".into(),
                ..Default::default()
            }),
            interval_secs: 60,
            sent_at: None,
        })),
    }
    .encode_to_vec()
}

fn report_message(boot_id: &str, agent_id: &str, seq: u64, r: pb::CheckResult) -> pb::AgentMessage {
    pb::AgentMessage {
        body: Some(pb::agent_message::Body::Report(pb::Report {
            agent_id: agent_id.into(),
            boot_id: boot_id.into(),
            seq,
            observed_at: Some(timestamp(now_ms())),
            payload: Some(pb::report::Payload::StateChanges(pb::StateChanges {
                results: vec![r],
            })),
        })),
    }
}

/// Appends a protobuf varint.
fn varint(mut v: usize, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(u8::try_from(v & 0x7f).expect("7 bits") | 0x80);
        v >>= 7;
    }
    out.push(u8::try_from(v).expect("7 bits"));
}

/// Field 15 (unknown to every message) as `depth` nested groups:
/// start-group keys, then as many end-group keys.
fn nested_groups(depth: usize) -> Vec<u8> {
    const START: u8 = (15 << 3) | 3;
    const END: u8 = (15 << 3) | 4;
    let mut bytes = vec![START; depth];
    bytes.extend(std::iter::repeat_n(END, depth));
    bytes
}

/// Field 15 as `depth` nested length-delimited fields (each holding the
/// next), the innermost empty.
fn nested_length_delimited(depth: usize) -> Vec<u8> {
    const KEY: u8 = (15 << 3) | 2;
    // Lengths from the innermost out; then headers from the outermost in.
    let mut lens = vec![0usize];
    for i in 0..depth {
        let mut header = vec![KEY];
        varint(lens[i], &mut header);
        lens.push(header.len() + lens[i]);
    }
    let mut bytes = Vec::with_capacity(lens[depth]);
    for i in (0..depth).rev() {
        bytes.push(KEY);
        varint(lens[i], &mut bytes);
    }
    assert_eq!(bytes.len(), lens[depth]);
    bytes
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

/// 10,000 `Session` calls from one client with one agent's certificate,
/// over 4 connections (256 in flight): each connection carries at most 16
/// streams at once (`[grpc] max_concurrent_streams`; the server refuses
/// extras with REFUSED_STREAM, the client queues the rest), the agent
/// holds at most 4 sessions, and all the others are refused with
/// RESOURCE_EXHAUSTED, almost all by the session rate before any store
/// access. The collector stays healthy, its memory bounded; the 4 sessions
/// work and another agent's ticket opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_streams_from_one_client_are_refused_cleanly() {
    const FLOOD: usize = 10_000;
    const CONNECTIONS: usize = 4;
    const IN_FLIGHT: usize = 256;
    let c = Collector::start();
    let (agent_id, identity) = enroll(&c, "flooder").await;
    let (token, _) = c.token("default", &[]);
    let mut bystander = SimAgent::enroll(&c, &token, "bystander").await;
    let before = rss_kib(&c);
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(channel(&c, Some(identity.clone())).await);
    }

    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let calls: Vec<_> = (0..FLOOD)
        .map(|i| {
            let ch = channels[i % CONNECTIONS].clone();
            let agent_id = agent_id.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("gate");
                tokio::time::timeout(WAIT, open(ch, &agent_id, "boot-flood"))
                    .await
                    .unwrap_or_else(|_| panic!("session call {i} not answered within {WAIT:?}"))
            })
        })
        .collect();
    let mut open_sessions = Vec::new();
    // Refused by the session rate / the per-agent session cap / the
    // per-connection stream cap (streams opened before the client saw the
    // server's SETTINGS).
    let (mut rate, mut agent_cap, mut stream_cap) = (0, 0, 0);
    for call in calls {
        match call.await.expect("session task") {
            Ok(s) => open_sessions.push(s),
            Err(status)
                if status.code() == Code::ResourceExhausted
                    && status.message().contains("back off") =>
            {
                rate += 1;
            }
            Err(status) if status.code() == Code::ResourceExhausted => agent_cap += 1,
            Err(status) if format!("{status:?}").contains("REFUSED_STREAM") => stream_cap += 1,
            Err(status) => panic!("unexpected refusal: {status:?}"),
        }
    }
    let elapsed = started.elapsed();
    let after = rss_kib(&c);
    let peak = peak_rss_kib(&c);
    let counted = c.rejected("session_rate").await;
    println!(
        "{FLOOD} session calls over {CONNECTIONS} connections in {elapsed:.1?}: {} open, \
         {rate} refused by the session rate (counter: {counted}), {agent_cap} by the \
         4-per-agent cap, {stream_cap} REFUSED_STREAM; collector RSS {before} KiB before, \
         {after} KiB after, peak {peak} KiB",
        open_sessions.len()
    );
    assert_eq!(open_sessions.len(), 4, "sessions per agent are capped at 4");
    assert_eq!(rate + agent_cap + stream_cap, FLOOD - 4);
    assert!(
        rate >= FLOOD - 100,
        "the session rate refused only {rate} of {FLOOD}"
    );
    assert!(
        counted >= rate as f64,
        "forewarn_rejected_total{{reason=\"session_rate\"}} is {counted}, clients saw {rate}"
    );
    assert!(
        after < 200 * 1024 && peak < 200 * 1024,
        "collector RSS {after} KiB (peak {peak} KiB) over 200 MiB"
    );
    assert_healthy(&c).await;

    // The sessions that got in work, and so does another agent.
    for (i, s) in open_sessions.iter_mut().enumerate() {
        let seq = u64::try_from(i).expect("seq") + 1;
        s.report(seq, vec![result("service", "flood", "up".into())])
            .await
            .expect("an admitted session reports");
    }
    bystander.connect(60).await;
    bystander
        .change("service", "nginx", State::Crit, "nginx down")
        .await;
    let bystander_id = bystander.agent_id.clone();
    eventually(WAIT, "the bystander's ticket", || {
        let c = &c;
        let id = bystander_id.clone();
        async move { ticket_of(c, &id).await }
    })
    .await;
}

/// A client opening sessions in a tight loop with a valid identity (each
/// closed again at once) is refused with RESOURCE_EXHAUSTED ("back off")
/// after the burst of 10, counted as `session_rate`; another agent still
/// opens, and the looping agent gets in again once its bucket refills
/// (one open per 6 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_open_loop_is_refused_after_the_burst() {
    let c = Collector::start();
    let (agent_id, identity) = enroll(&c, "reconnect-loop").await;
    let ch = channel(&c, Some(identity)).await;
    let mut attempts = 0;
    let (mut opened, mut capped) = (0, 0);
    let refusal = loop {
        assert!(attempts < 100, "no rate refusal after {attempts} opens");
        attempts += 1;
        match open(ch.clone(), &agent_id, "boot-loop").await {
            Ok(s) => {
                opened += 1;
                drop(s);
            }
            Err(status)
                if status.code() == Code::ResourceExhausted
                    && status.message().contains("back off") =>
            {
                break status;
            }
            // Closed sessions the collector has not reaped yet.
            Err(status) if status.code() == Code::ResourceExhausted => capped += 1,
            Err(status) => panic!("unexpected refusal: {status:?}"),
        }
    };
    let counted = c.rejected("session_rate").await;
    println!(
        "open loop: refused at attempt {attempts} ({opened} opened, {capped} over the \
         session cap): {:?} {:?}; session_rate counter {counted}",
        refusal.code(),
        refusal.message()
    );
    // The 10-open burst (plus at most one refill) passes, then a refusal.
    assert!(
        (11..=12).contains(&attempts),
        "refused at attempt {attempts}"
    );
    assert!(refusal.message().contains("retry in"), "{refusal:?}");
    assert!(counted >= 1.0, "session_rate not counted");
    // Still refused right away, and counted again.
    let again = open(ch.clone(), &agent_id, "boot-loop")
        .await
        .err()
        .expect("refused again");
    assert_eq!(again.code(), Code::ResourceExhausted, "{again:?}");
    assert!(c.rejected("session_rate").await > counted);

    // Another agent is not affected.
    let (token, _) = c.token("default", &[]);
    let mut other = SimAgent::enroll(&c, &token, "patient").await;
    other.connect(60).await;
    other.change("service", "nginx", State::Crit, "down").await;

    // The looping agent gets in again after the refill; polling refused
    // opens does not push the refill back.
    let started = Instant::now();
    let mut s = eventually(Duration::from_secs(10), "an open after the refill", || {
        let ch = ch.clone();
        let agent_id = agent_id.clone();
        async move { open(ch, &agent_id, "boot-after").await.ok() }
    })
    .await;
    println!("open loop: admitted again after {:.1?}", started.elapsed());
    s.report(1, vec![result("service", "loop", "up".into())])
        .await
        .expect("the readmitted session reports");
}

/// One agent sends 100 reports back to back, far faster than its rate
/// (25/s after a burst of 10): the collector slows it down (flow control)
/// but acknowledges every report exactly once and stores each once; the
/// throttling is counted as `report_throttled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_flood_is_slowed_not_lost() {
    const REPORTS: u64 = 100;
    const RATE: u64 = 25;
    const BURST: u64 = 10;
    let c = start_with_grpc(&format!(
        "report_rate_per_sec = {RATE}\nreport_rate_burst = {BURST}\n"
    ));
    let (agent_id, identity) = enroll(&c, "replayer").await;
    let s = open(channel(&c, Some(identity)).await, &agent_id, "boot-replay")
        .await
        .expect("session accepted");
    let Session {
        tx,
        mut inbound,
        agent_id,
        boot_id,
    } = s;

    let started = Instant::now();
    // A spool replay: every report queued as fast as the stream takes them.
    let sender = {
        let (agent_id, boot_id) = (agent_id.clone(), boot_id.clone());
        tokio::spawn(async move {
            for seq in 1..=REPORTS {
                let r = pb::CheckResult {
                    check: "service".into(),
                    item: format!("replay-{seq}"),
                    state: State::Ok as i32,
                    message: "up".into(),
                    metrics: Vec::new(),
                    since: Some(timestamp(now_ms())),
                };
                tx.send(report_message(&boot_id, &agent_id, seq, r))
                    .await
                    .expect("stream open");
            }
            tx
        })
    };
    let mut acks = std::collections::BTreeMap::<u64, u32>::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while acks.len() < usize::try_from(REPORTS).expect("count") {
            match inbound.message().await {
                Ok(Some(pb::CollectorMessage {
                    body: Some(pb::collector_message::Body::Ack(a)),
                })) => *acks.entry(a.seq).or_default() += 1,
                Ok(Some(_)) => {}
                Ok(None) => panic!("stream ended after {} acks", acks.len()),
                Err(status) => panic!("stream failed after {} acks: {status:?}", acks.len()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {REPORTS} acks within 60 s", acks.len()));
    let elapsed = started.elapsed();
    let _tx = sender.await.expect("sender");

    let throttled = c.rejected("report_throttled").await;
    let committed = c
        .metric("forewarn_reports_total{result=\"committed\"}")
        .await;
    let duplicate = c
        .metric("forewarn_reports_total{result=\"duplicate\"}")
        .await;
    let agent = c.get(&format!("/api/v1/agents/{agent_id}")).await;
    let stored = agent["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|r| r["item"].as_str().is_some_and(|i| i.starts_with("replay-")))
        .count();
    println!(
        "report flood: {REPORTS} reports at {RATE}/s (burst {BURST}) acknowledged in \
         {elapsed:.1?}; {} distinct acks, {throttled} throttled, {committed} committed, \
         {duplicate} duplicate, {stored} stored",
        acks.len()
    );
    assert!(acks.values().all(|&n| n == 1), "an ack repeated: {acks:?}");
    assert_eq!(
        acks.keys().copied().collect::<Vec<_>>(),
        (1..=REPORTS).collect::<Vec<_>>()
    );
    assert_eq!(committed, REPORTS as f64, "each report committed once");
    assert_eq!(duplicate, 0.0);
    assert_eq!(stored, usize::try_from(REPORTS).expect("count"), "{agent}");
    assert!(
        throttled >= (REPORTS - BURST) as f64 / 2.0,
        "only {throttled} reports throttled"
    );
    // The rate guarantees a minimum duration (a lower bound, not a timing
    // benchmark): (REPORTS - BURST) / RATE seconds.
    let floor = Duration::from_millis((REPORTS - BURST) * 1000 / RATE);
    assert!(
        elapsed >= floor.mul_f64(0.9),
        "{REPORTS} reports took {elapsed:?}: not throttled to {RATE}/s"
    );
}

/// Protobuf nested 10,000 levels deep: as groups it gets a clean
/// INVALID_ARGUMENT (prost stops at its recursion limit), before and after
/// hello; as nested length-delimited unknown data it is skipped in one step
/// (no recursion) and the session goes on. Refusals are counted as
/// `undecodable`; the collector stays healthy and another agent reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting_gets_a_clean_decode_error() {
    const DEPTH: usize = 10_000;
    let c = Collector::start();
    let (agent_id, identity) = enroll(&c, "nester").await;
    let ch = channel(&c, Some(identity)).await;
    let groups = nested_groups(DEPTH);

    // After a valid hello.
    let (_tx, mut inbound) = raw_session(
        ch.clone(),
        vec![hello_bytes(&agent_id, "boot-nest-1"), groups.clone()],
    )
    .await
    .expect("session accepted");
    let after_hello = end_status(&mut inbound).await;
    // As the first message.
    let (_tx, mut inbound) = raw_session(ch.clone(), vec![groups.clone()])
        .await
        .expect("session accepted");
    let first = end_status(&mut inbound).await;
    let counted = c.rejected("undecodable").await;
    println!(
        "{DEPTH} nested groups ({} bytes): after hello {:?} {:?}; as first message {:?} {:?}; \
         undecodable counter {counted}",
        groups.len(),
        after_hello.code(),
        after_hello.message(),
        first.code(),
        first.message()
    );
    for status in [&after_hello, &first] {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("recursion limit"), "{status:?}");
    }
    assert!(counted >= 2.0, "undecodable refusals not counted");

    // Nested length-delimited unknown data inside a hello: skipped whole.
    let mut hello = hello_bytes(&agent_id, "boot-nest-3");
    let nested = nested_length_delimited(DEPTH);
    hello.extend_from_slice(&nested);
    let (tx, mut inbound) = raw_session(ch.clone(), vec![hello])
        .await
        .expect("session accepted");
    let r = result("service", "nest", "down".into());
    tx.send(report_message("boot-nest-3", &agent_id, 1, r).encode_to_vec())
        .await
        .expect("send report");
    let ack = tokio::time::timeout(WAIT, inbound.message())
        .await
        .expect("an answer")
        .expect("no error")
        .expect("a message");
    println!(
        "{DEPTH} nested length-delimited fields ({} bytes) in a hello: session works, {ack:?}",
        nested.len()
    );
    assert!(
        matches!(ack.body, Some(pb::collector_message::Body::Ack(ref a)) if a.seq == 1),
        "{ack:?}"
    );

    assert_healthy(&c).await;
    let (token, _) = c.token("default", &[]);
    let mut other = SimAgent::enroll(&c, &token, "after-nesting").await;
    other.connect(60).await;
    other.change("service", "nginx", State::Crit, "down").await;
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
