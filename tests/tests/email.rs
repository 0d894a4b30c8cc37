//! The email sink end to end, through a real SMTP server: aiosmtpd
//! (`tests/smtp/server.py`, installed by `tests/smtp.sh`) requiring
//! STARTTLS with a certificate from a private CA made here, and a login.
//! A real collector with two `[[sinks.email]]` (one with the right
//! password, trusting the CA through `ca_file`; one with a wrong password)
//! and two real agents on filling tmpfs mounts, in two tenants, produce
//! the events. The test reads the messages the server wrote: each event
//! once, text + HTML, threaded on the ticket's root id, to the tenant's
//! recipients; the wrong password parks its deliveries with the reason;
//! the server stopped for a while delays delivery and loses and
//! duplicates nothing; no password shows in the log or the API.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Collector, Proc, eventually};
use serde_json::Value;

const USER: &str = "forewarn";
const PASSWORD: &str = "e2e-smtp-pass-7f3a";
const WRONG_PASSWORD: &str = "e2e-wrong-pass-91c2";
const FROM_DOMAIN: &str = "msp.forewarn.test";
const ACME_TO: [&str; 2] = ["ops@acme.forewarn.test", "boss@acme.forewarn.test"];
const DEFAULT_TO: &str = "noc@msp.forewarn.test";

// === the SMTP server ===

/// A private CA and a server certificate for 127.0.0.1 signed by it
/// (PEM files in `dir`): (ca, cert, key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca = rcgen::CertificateParams::default();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "forewarn e2e mail CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let mut p = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "smtp.forewarn.test");
    let cert = p.signed_by(&key, &issuer).expect("sign");
    let files = (
        dir.join("ca.pem"),
        dir.join("smtp.pem"),
        dir.join("smtp.key"),
    );
    std::fs::write(&files.0, ca_cert.pem()).expect("ca.pem");
    std::fs::write(&files.1, cert.pem()).expect("smtp.pem");
    std::fs::write(&files.2, key.serialize_pem()).expect("smtp.key");
    (files.0, files.1, files.2)
}

/// aiosmtpd on a fixed port (so it can stop and come back where the
/// collector expects it), writing what it accepts into `out`.
struct Smtp {
    python: String,
    port: u16,
    cert: PathBuf,
    key: PathBuf,
    out: PathBuf,
}

impl Smtp {
    fn start(&self) -> Proc {
        let log = self.out.with_extension("log");
        let mut child = Command::new(&self.python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp/server.py"))
            .args(["--port", &self.port.to_string(), "--user", USER])
            .args(["--password", PASSWORD, "--out"])
            .arg(&self.out)
            .arg("--cert")
            .arg(&self.cert)
            .arg("--key")
            .arg(&self.key)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start server.py");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read");
        let proc = Proc { child, log };
        assert_eq!(line.trim(), "READY", "smtp server:\n{}", proc.log_text());
        proc
    }

    /// Every message received so far, in arrival order.
    fn received(&self) -> Vec<Mail> {
        let mut names: Vec<_> = std::fs::read_dir(&self.out)
            .expect("out dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|n| {
                let meta: Value =
                    serde_json::from_slice(&std::fs::read(self.out.join(n)).expect("json"))
                        .expect("envelope json");
                let eml = std::fs::read_to_string(self.out.join(n.replace(".json", ".eml")))
                    .expect("eml");
                Mail::new(&eml, &meta)
            })
            .collect()
    }
}

/// The python that runs aiosmtpd, from `tests/smtp.sh` (which installs
/// it when missing).
fn smtp_python() -> String {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/smtp.sh");
    assert!(out.status.success(), "tests/smtp.sh failed");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

// === received messages ===

/// One message as the server got it.
#[derive(Debug, Clone)]
struct Mail {
    /// Header name (lower case) → values, unfolded.
    headers: BTreeMap<String, Vec<String>>,
    raw: String,
    rcpt: BTreeSet<String>,
    at_ms: i64,
}

impl Mail {
    fn new(eml: &str, meta: &Value) -> Self {
        let head = eml.split("\r\n\r\n").next().unwrap_or_default();
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut last: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = last
                    .as_ref()
                    .and_then(|k| headers.get_mut(k))
                    .and_then(|vs| vs.last_mut())
                {
                    v.push(' ');
                    v.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                let k = k.to_ascii_lowercase();
                headers
                    .entry(k.clone())
                    .or_default()
                    .push(v.trim().to_string());
                last = Some(k);
            }
        }
        Self {
            headers,
            raw: eml.to_string(),
            rcpt: meta["rcpt_tos"]
                .as_array()
                .expect("rcpt_tos")
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            at_ms: meta["at_ms"].as_i64().expect("at_ms"),
        }
    }

    /// The one value of a header (panics on two).
    fn header(&self, name: &str) -> Option<&str> {
        let vs = self.headers.get(&name.to_ascii_lowercase())?;
        assert_eq!(vs.len(), 1, "{name} twice in:\n{}", self.raw);
        Some(&vs[0])
    }

    fn ticket(&self) -> Option<i64> {
        self.header("X-Forewarn-Ticket")?.parse().ok()
    }

    fn event(&self) -> &str {
        self.header("X-Forewarn-Event").unwrap_or_default()
    }
}

// === the test ===

fn collector_config(data: &Path, port: u16, ca: &Path, pw_file: &Path) -> String {
    let sink = |name: &str, password: &str| {
        format!(
            "[[sinks.email]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"starttls\"\n\
             username = \"{USER}\"\npassword = {password}\n\
             from = \"Forewarn <alerts@{FROM_DOMAIN}>\"\nca_file = {ca:?}\ntimeout_ms = 3000\n\
             retry_initial_ms = 100\nretry_max_ms = 500\nhello_name = \"collector.forewarn.test\"\n"
        )
    };
    format!(
        "data_dir = {data:?}\n[grpc]\nlisten_addr = \"127.0.0.1:0\"\n[http]\nlisten_addr = \"127.0.0.1:0\"\n\
         {}to = [\"{DEFAULT_TO}\"]\nto_tenants = {{ acme = [\"{}\", \"Boss <{}>\"] }}\n\
         {}to = [\"wrong@{FROM_DOMAIN}\"]\n",
        sink("mail", &format!("{{ file = {pw_file:?} }}")),
        ACME_TO[0],
        ACME_TO[1],
        sink("badpass", &format!("\"{WRONG_PASSWORD}\"")),
    )
}

/// An enrolled, running agent watching its own tmpfs.
struct Host(common::disk_host::DiskHost);

impl Host {
    async fn start(collector: &Collector, tenant: &str) -> Self {
        Host(common::disk_host::DiskHost::start(collector, tenant).await)
    }

    fn fill(&self) {
        self.0.fill();
    }

    fn drain(&self) {
        self.0.drain();
    }

    async fn ticket(&self, collector: &Collector) -> i64 {
        eventually(Duration::from_secs(15), "a ticket", || async {
            let v = collector.get("/api/v1/tickets?state=open").await;
            v.as_array()?
                .iter()
                .find(|t| t["agent_id"] == self.0.agent_id.as_str() && t["check"] == "disk")
                .and_then(|t| t["id"].as_i64())
        })
        .await
    }
}

/// The outbox rows of one sink, every state.
async fn outbox(c: &Collector, sink: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    for state in ["pending", "delivered", "failed"] {
        let v = c.get(&format!("/api/v1/outbox?state={state}")).await;
        rows.extend(
            v.as_array()
                .expect("list")
                .iter()
                .filter(|r| r["sink"] == sink)
                .cloned(),
        );
    }
    rows
}

#[tokio::test]
async fn email_threads_every_ticket_event_through_a_real_smtp_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = certificates(dir.path());
    let smtp = Smtp {
        python: smtp_python(),
        port: free_port(),
        cert,
        key,
        out: dir.path().join("mail"),
    };
    let mut server = smtp.start();
    let pw_file = dir.path().join("smtp-password");
    std::fs::write(&pw_file, format!("{PASSWORD}\n")).expect("password file");
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        collector_config(&dir.path().join("data"), smtp.port, &ca, &pw_file),
    )
    .expect("config");
    let collector = Collector::start_with(dir, config);
    let out = collector.cli(&["tenant", "add", "acme"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The start-up health checks: a real login, and a refused one.
    eventually(
        Duration::from_secs(15),
        "health checks in the log",
        || async {
            let log = collector.proc.log_text();
            (log.contains("ticket sink healthy") && log.contains("ticket sink health check failed"))
                .then_some(())
        },
    )
    .await;
    let log = collector.proc.log_text();
    assert!(
        log.contains(&format!(
            "127.0.0.1:{} STARTTLS, authenticated as {USER}",
            smtp.port
        )),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("badpass") && l.contains("authentication failed")),
        "{log}"
    );

    let acme = Host::start(&collector, "acme").await;
    let home = Host::start(&collector, "default").await;

    // --- Open (both tenants), then acknowledge acme's ticket. ---
    acme.fill();
    home.fill();
    let acme_id = acme.ticket(&collector).await;
    let home_id = home.ticket(&collector).await;
    let seen = |id: i64, event: &'static str| {
        let smtp = &smtp;
        async move {
            smtp.received()
                .into_iter()
                .find(|m| m.ticket() == Some(id) && m.event() == event)
        }
    };
    eventually(Duration::from_secs(15), "acme's opened mail", || {
        seen(acme_id, "opened")
    })
    .await;
    eventually(Duration::from_secs(15), "default's opened mail", || {
        seen(home_id, "opened")
    })
    .await;
    let (status, body) = collector
        .post(
            &format!("/api/v1/tickets/{acme_id}/acknowledge"),
            &Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    eventually(Duration::from_secs(15), "the acknowledged mail", || {
        seen(acme_id, "acknowledged")
    })
    .await;

    // The wrong password's sink has had its answers for these three too
    // (before the outage, so each got exactly one attempt).
    eventually(
        Duration::from_secs(15),
        "badpass to park 3 rows",
        || async {
            let rows = outbox(&collector, "badpass").await;
            (rows.len() == 3 && rows.iter().all(|r| r["state"] == "failed")).then_some(())
        },
    )
    .await;

    // --- The server stops; both problems clear meanwhile. ---
    assert!(
        server.terminate(Duration::from_secs(10)).is_some(),
        "smtp server stops"
    );
    acme.drain();
    home.drain();
    eventually(
        Duration::from_secs(30),
        "resolutions waiting on the server",
        || async {
            let rows = outbox(&collector, "mail").await;
            let waiting = rows
                .iter()
                .filter(|r| {
                    r["state"] == "pending"
                        && r["event"] == "resolved"
                        && r["attempts"].as_u64() >= Some(1)
                        && r["last_error"]
                            .as_str()
                            .is_some_and(|e| e.contains("SMTP connection"))
                })
                .count();
            (waiting == 2).then_some(())
        },
    )
    .await;
    assert!(smtp.received().iter().all(|m| m.event() != "resolved"));
    let _server = smtp.start();
    eventually(
        Duration::from_secs(20),
        "the mail sink's outbox to empty",
        || async {
            let rows = outbox(&collector, "mail").await;
            rows.iter().all(|r| r["state"] == "delivered").then_some(())
        },
    )
    .await;

    // --- What arrived: each event once, threaded, to the right people. ---
    let mail = smtp.received();
    for (id, rcpt, events) in [
        (
            acme_id,
            BTreeSet::from(ACME_TO.map(str::to_string)),
            &["opened", "acknowledged", "resolved"][..],
        ),
        (
            home_id,
            BTreeSet::from([DEFAULT_TO.to_string()]),
            &["opened", "resolved"][..],
        ),
    ] {
        let thread: Vec<&Mail> = mail.iter().filter(|m| m.ticket() == Some(id)).collect();
        let got: Vec<&str> = thread.iter().map(|m| m.event()).collect();
        assert_eq!(got, events, "ticket {id}: each event once, in order");
        let root = thread[0]
            .header("Message-ID")
            .expect("Message-ID")
            .to_string();
        assert!(
            root.starts_with(&format!("<forewarn-ticket-{id}."))
                && root.ends_with(&format!("@{FROM_DOMAIN}>")),
            "{root}"
        );
        assert_eq!(thread[0].header("In-Reply-To"), None);
        let mut ids = BTreeSet::new();
        for m in &thread {
            assert_eq!(m.rcpt, rcpt, "envelope recipients of ticket {id}");
            assert!(
                ids.insert(m.header("Message-ID").expect("id").to_string()),
                "unique ids"
            );
            assert!(
                m.header("Content-Type")
                    .is_some_and(|c| c.starts_with("multipart/alternative;"))
            );
            for part in ["text/plain; charset=utf-8", "text/html; charset=utf-8"] {
                let part = format!("Content-Type: {part}");
                assert!(m.raw.contains(&part), "no {part}: {}", m.raw);
            }
            assert_eq!(
                m.header("From"),
                Some(format!("Forewarn <alerts@{FROM_DOMAIN}>").as_str())
            );
            let subject = m.header("Subject").expect("Subject");
            let want = match m.event() {
                "opened" => "CRIT [",
                "acknowledged" => "ACKNOWLEDGED [",
                _ => "RESOLVED [",
            };
            assert!(
                subject.starts_with(want) && subject.contains(": disk"),
                "{subject}"
            );
            if m.event() != "opened" {
                assert_eq!(m.header("In-Reply-To"), Some(root.as_str()), "{}", m.raw);
                assert_eq!(m.header("References"), Some(root.as_str()), "{}", m.raw);
                assert!(
                    m.header("Message-ID")
                        .is_some_and(|i| i.contains("-event-")),
                    "{}",
                    m.raw
                );
            }
        }
    }
    assert!(
        mail.iter()
            .all(|m| !m.rcpt.contains(&format!("wrong@{FROM_DOMAIN}"))),
        "nothing got through with the wrong password"
    );

    // --- The wrong password: parked, never retried once the server
    // answered (the resolutions were retried only while it was down). ---
    let bad = eventually(
        Duration::from_secs(15),
        "badpass rows all parked",
        || async {
            let rows = outbox(&collector, "badpass").await;
            (rows.len() == 5 && rows.iter().all(|r| r["state"] == "failed")).then_some(rows)
        },
    )
    .await;
    for r in &bad {
        if r["event"] != "resolved" {
            assert_eq!(r["attempts"], 1, "parked at the first answer: {r}");
        }
        let e = r["last_error"].as_str().unwrap_or_default();
        assert!(
            e.contains("535") && e.contains("authentication failed"),
            "{e}"
        );
    }

    // --- No password anywhere. ---
    let mut api = String::new();
    for path in [
        "/api/v1/outbox?state=failed",
        "/api/v1/outbox?state=delivered",
    ] {
        api.push_str(&collector.get(path).await.to_string());
    }
    for path in [
        format!("/api/v1/tickets/{acme_id}"),
        format!("/api/v1/tickets/{home_id}"),
    ] {
        api.push_str(&collector.get(&path).await.to_string());
    }
    let log = collector.proc.log_text();
    for secret in [PASSWORD, WRONG_PASSWORD] {
        assert!(!log.contains(secret), "a password in the collector log");
        assert!(!api.contains(secret), "a password in an API answer");
    }

    // --- Latency: event time → message accepted by the server, for the
    // deliveries not held up by the outage. ---
    let rows = outbox(&collector, "mail").await;
    let mut lat: Vec<i64> = Vec::new();
    for r in rows.iter().filter(|r| r["attempts"] == 1) {
        let created = time::OffsetDateTime::parse(
            r["created_at"].as_str().expect("created_at"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("rfc3339");
        let created_ms = (created.unix_timestamp_nanos() / 1_000_000) as i64;
        if let Some(m) = mail
            .iter()
            .find(|m| m.ticket() == r["ticket_id"].as_i64() && m.event() == r["event"])
        {
            lat.push(m.at_ms - created_ms);
        }
    }
    lat.sort_unstable();
    assert!(!lat.is_empty(), "{rows:?}");
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)];
    eprintln!(
        "LATENCY sink=email p50_ms={} p99_ms={} n={}",
        pct(50),
        pct(99),
        lat.len()
    );
}
