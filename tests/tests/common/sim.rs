//! A simulated agent: speaks the real wire protocol over real TLS, so
//! scenario tests can drive many "hosts" through exact fault scripts
//! without running one agent process per host.
//!
//! It enrolls through the real `Enrollment/Enroll` RPC with a token from the
//! collector CLI (its own key and CSR, made with rcgen), then opens the real
//! `Ingest/Session` stream over mTLS with the certificate it was given.
//! Every report waits for its `Ack`, so when a script step returns, the
//! collector has committed it (and made every ticket decision that follows
//! from it). A session ends with `Goodbye` (clean shutdown) or by dropping
//! the stream and the connection (crash, network loss).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use forewarn_proto::v1 as pb;
use forewarn_proto::v1::enrollment_client::EnrollmentClient;
use forewarn_proto::v1::ingest_client::IngestClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use super::Collector;

/// Longest a script step waits for the collector (connect, ack, hang-up).
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// Check states as the wire spells them.
pub use pb::CheckState as State;

/// One agent as the collector knows it, plus what its checks currently say.
pub struct SimAgent {
    pub agent_id: String,
    pub tenant_id: String,
    pub site: String,
    pub hostname: String,
    url: String,
    ca_pem: String,
    identity: Identity,
    /// Current result per (check, item): reported in every heartbeat.
    checks: BTreeMap<(String, String), pb::CheckResult>,
    session: Option<Session>,
    /// Last `observed_at` sent (ms), so reports never go back in time.
    last_observed: i64,
    /// How far this host's clock is off (ms, + = ahead): added to every
    /// timestamp it sends (hello `sent_at`, `observed_at`, `since`).
    clock_offset_ms: i64,
}

/// An open `Ingest/Session` stream.
struct Session {
    /// Keeps the HTTP/2 connection; dropped with the session (a crash).
    _channel: Channel,
    tx: mpsc::Sender<pb::AgentMessage>,
    inbound: Streaming<pb::CollectorMessage>,
    boot_id: String,
    seq: u64,
}

/// The wall clock in Unix ms.
pub fn now_ms() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(d.as_millis()).expect("millis fit i64")
}

/// Unix ms of an RFC 3339 timestamp from the API.
pub fn ms(v: &serde_json::Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s}: {e}"));
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).expect("millis")
}

pub fn timestamp(ms: i64) -> forewarn_proto::Timestamp {
    forewarn_proto::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).expect("nanos"),
    }
}

pub fn facts(hostname: &str) -> pb::HostFacts {
    pb::HostFacts {
        hostname: hostname.to_string(),
        os_name: "SimOS".into(),
        os_version: "1".into(),
        kernel_version: "sim".into(),
        arch: "x86_64".into(),
        agent_version: "sim".into(),
        cpu_count: 2,
        memory_total_bytes: 4 << 30,
        target: String::new(),
    }
}

pub async fn channel(url: &str, ca_pem: &str, identity: Option<Identity>) -> Channel {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    Channel::from_shared(url.to_string())
        .expect("collector url")
        .tls_config(tls)
        .expect("tls config")
        .connect_timeout(STEP_TIMEOUT)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

// === impl SimAgent ===

impl SimAgent {
    /// Enrolls a new simulated host with `token` (from [`Collector::token`]).
    pub async fn enroll(collector: &Collector, token: &str, hostname: &str) -> Self {
        let ca_pem = collector.ca_pem();
        let key = rcgen::KeyPair::generate().expect("agent key");
        let csr_pem = rcgen::CertificateParams::default()
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("csr pem");
        let url = collector.url();
        let ch = channel(&url, &ca_pem, None).await;
        let resp = EnrollmentClient::new(ch)
            .enroll(pb::EnrollRequest {
                token: token.to_string(),
                csr_pem,
                host: Some(facts(hostname)),
            })
            .await
            .unwrap_or_else(|s| panic!("enroll {hostname}: {:?} {}", s.code(), s.message()))
            .into_inner();
        Self {
            identity: Identity::from_pem(resp.certificate_chain_pem, key.serialize_pem()),
            agent_id: resp.agent_id,
            tenant_id: resp.tenant_id,
            site: resp.site,
            hostname: hostname.to_string(),
            url,
            ca_pem,
            checks: BTreeMap::new(),
            session: None,
            last_observed: 0,
            clock_offset_ms: 0,
        }
    }

    /// Enrolls `n` hosts named `<prefix>-00`… with one multi-use token.
    pub async fn enroll_many(
        collector: &Collector,
        token: &str,
        prefix: &str,
        n: usize,
    ) -> Vec<Self> {
        let mut agents = Vec::with_capacity(n);
        for i in 0..n {
            agents.push(Self::enroll(collector, token, &format!("{prefix}-{i:02}")).await);
        }
        agents
    }

    /// Opens a session with a new boot id (a process start): `Hello`, then
    /// a heartbeat with the current check states; returns once that
    /// heartbeat is acknowledged (the session is recorded).
    pub async fn connect(&mut self, interval_secs: u32) {
        static BOOTS: AtomicU64 = AtomicU64::new(1);
        assert!(
            self.session.is_none(),
            "{} is already connected",
            self.hostname
        );
        let ch = channel(&self.url, &self.ca_pem, Some(self.identity.clone())).await;
        let (tx, rx) = mpsc::channel(16);
        let boot_id = format!("sim-{}-{}", BOOTS.fetch_add(1, Ordering::Relaxed), now_ms());
        tx.send(pb::AgentMessage {
            body: Some(pb::agent_message::Body::Hello(pb::Hello {
                agent_id: self.agent_id.clone(),
                boot_id: boot_id.clone(),
                host: Some(facts(&self.hostname)),
                interval_secs,
                sent_at: Some(timestamp(now_ms() + self.clock_offset_ms)),
            })),
        })
        .await
        .expect("queue hello");
        let inbound = tokio::time::timeout(
            STEP_TIMEOUT,
            IngestClient::new(ch.clone()).session(ReceiverStream::new(rx)),
        )
        .await
        .unwrap_or_else(|_| panic!("{}: session not answered", self.hostname))
        .unwrap_or_else(|s| {
            panic!(
                "{}: session refused: {:?} {}",
                self.hostname,
                s.code(),
                s.message()
            )
        })
        .into_inner();
        self.session = Some(Session {
            _channel: ch,
            tx,
            inbound,
            boot_id,
            seq: 0,
        });
        self.heartbeat().await;
    }

    /// Is a session open?
    pub fn connected(&self) -> bool {
        self.session.is_some()
    }

    /// Sets one check's result without sending it (the next heartbeat or
    /// [`Self::changes`] carries it). `since` moves only on a state change.
    pub fn set(&mut self, check: &str, item: &str, state: State, message: &str) -> pb::CheckResult {
        let at = self.next_observed();
        let key = (check.to_string(), item.to_string());
        let since = match self.checks.get(&key) {
            Some(prev) if prev.state == state as i32 => prev.since,
            _ => Some(timestamp(at)),
        };
        let r = pb::CheckResult {
            check: check.to_string(),
            item: item.to_string(),
            state: state as i32,
            message: message.to_string(),
            metrics: Vec::new(),
            since,
        };
        self.checks.insert(key, r.clone());
        r
    }

    /// A state change the moment the agent sees it: one `StateChanges`
    /// report with this single result, acknowledged before returning.
    pub async fn change(&mut self, check: &str, item: &str, state: State, message: &str) {
        let r = self.set(check, item, state, message);
        self.send(pb::report::Payload::StateChanges(pb::StateChanges {
            results: vec![r],
        }))
        .await;
    }

    /// Several results in one `StateChanges` report (one transaction).
    pub async fn changes(&mut self, results: &[(&str, &str, State, &str)]) {
        let rs = results
            .iter()
            .map(|&(c, i, s, m)| self.set(c, i, s, m))
            .collect();
        self.send(pb::report::Payload::StateChanges(pb::StateChanges {
            results: rs,
        }))
        .await;
    }

    /// A periodic heartbeat carrying every check's current result.
    pub async fn heartbeat(&mut self) {
        let checks = self.checks.values().cloned().collect();
        self.send(pb::report::Payload::Heartbeat(pb::Heartbeat {
            snapshot: Some(pb::HostSnapshot {
                uptime_secs: 3600,
                cpu_percent: 3.0,
                memory_used_bytes: 1 << 30,
                memory_total_bytes: 4 << 30,
                ..Default::default()
            }),
            checks,
            spool: None,
        }))
        .await;
    }

    /// Clean shutdown: `Goodbye`, then waits until the collector has
    /// recorded the session's end and hung up.
    pub async fn goodbye(&mut self) {
        let mut s = self.session.take().expect("goodbye needs a session");
        s.tx.send(pb::AgentMessage {
            body: Some(pb::agent_message::Body::Goodbye(pb::Goodbye {
                reason: "shutdown".into(),
            })),
        })
        .await
        .expect("send goodbye");
        // The collector ends its side after recording the end of session.
        let end = tokio::time::timeout(STEP_TIMEOUT, async {
            while let Ok(Some(_)) = s.inbound.message().await {}
        })
        .await;
        assert!(
            end.is_ok(),
            "{}: collector kept the session open after goodbye",
            self.hostname
        );
    }

    /// A crash or a cut cable: the stream and its connection just vanish.
    pub fn crash(&mut self) {
        self.session = None;
    }

    /// Sets this host's clock `ms` off (+ = ahead) from now on: a skewed
    /// clock, as the collector sees it in every timestamp.
    pub fn set_clock_offset(&mut self, ms: i64) {
        self.clock_offset_ms = ms;
    }

    fn next_observed(&mut self) -> i64 {
        self.last_observed = (now_ms() + self.clock_offset_ms).max(self.last_observed + 1);
        self.last_observed
    }

    async fn send(&mut self, payload: pb::report::Payload) {
        let observed_at = self.next_observed();
        let host = self.hostname.clone();
        let agent_id = self.agent_id.clone();
        let s = self
            .session
            .as_mut()
            .unwrap_or_else(|| panic!("{host}: not connected"));
        s.seq += 1;
        let seq = s.seq;
        s.tx.send(pb::AgentMessage {
            body: Some(pb::agent_message::Body::Report(pb::Report {
                agent_id,
                boot_id: s.boot_id.clone(),
                seq,
                observed_at: Some(timestamp(observed_at)),
                payload: Some(payload),
            })),
        })
        .await
        .unwrap_or_else(|_| panic!("{host}: session closed before report {seq}"));
        let acked = tokio::time::timeout(STEP_TIMEOUT, async {
            loop {
                match s.inbound.message().await {
                    Ok(Some(pb::CollectorMessage {
                        body: Some(pb::collector_message::Body::Ack(a)),
                    })) if a.seq == seq => return Ok(()),
                    Ok(Some(_)) => {}
                    Ok(None) => return Err("stream ended".to_string()),
                    Err(s) => return Err(format!("{:?} {}", s.code(), s.message())),
                }
            }
        })
        .await;
        match acked {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{host}: report {seq} not acknowledged: {e}"),
            Err(_) => panic!("{host}: no ack for report {seq} within {STEP_TIMEOUT:?}"),
        }
    }
}

impl SimAgent {
    /// A second process with this agent's identity (a cloned machine or a
    /// copied state dir): same certificate, its own session and boot id.
    pub fn twin(&self) -> SimAgent {
        SimAgent {
            agent_id: self.agent_id.clone(),
            tenant_id: self.tenant_id.clone(),
            site: self.site.clone(),
            hostname: self.hostname.clone(),
            url: self.url.clone(),
            ca_pem: self.ca_pem.clone(),
            identity: self.identity.clone(),
            checks: BTreeMap::new(),
            session: None,
            last_observed: 0,
            clock_offset_ms: self.clock_offset_ms,
        }
    }

    /// A fresh mTLS connection on this agent's certificate, for tests that
    /// write protocol messages by hand (forged hellos, reports, renewals)
    /// and need to see exactly how the collector answers.
    pub async fn mtls_channel(&self) -> Channel {
        channel(&self.url, &self.ca_pem, Some(self.identity.clone())).await
    }
}
