//! The plugin, tcp, http and certificate checks end to end: real agent and
//! collector processes; real plugin scripts, sockets and certificate files
//! made by each test. Each failure opens a ticket at the collector, and the
//! repair resolves it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{AgentHome, Collector, Proc, enroll_ok, eventually};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Only the checks under test: the host checks are off.
fn agent_config(checks: &str) -> String {
    format!(
        "[checks.disk]\nenabled = false\n[checks.cpu]\nenabled = false\n\
         [checks.memory]\nenabled = false\n[checks.load]\nenabled = false\n{checks}"
    )
}

/// A running agent with `checks` configured, enrolled into `collector`.
fn start_agent(collector: &Collector, checks: &str) -> (AgentHome, String, Proc) {
    let home = AgentHome::new(&agent_config(checks));
    let agent_id = enroll_ok(collector, &home, "default");
    let agent = home.run();
    (home, agent_id, agent)
}

/// Waits until (check, item) is in `state`; returns its row.
async fn wait_state(
    collector: &Collector,
    agent_id: &str,
    (check, item): (&str, &str),
    state: &str,
) -> Value {
    eventually(
        Duration::from_secs(30),
        &format!("{check} {item} {state}"),
        || async {
            collector
                .check_row(agent_id, check, item)
                .await
                .filter(|row| row["state"] == state)
        },
    )
    .await
}

/// Waits for the open ticket of (check, item).
async fn open_ticket(collector: &Collector, agent_id: &str, (check, item): (&str, &str)) -> Value {
    eventually(
        Duration::from_secs(30),
        &format!("an open ticket for {check} {item}"),
        || async {
            let open = collector.get("/api/v1/tickets?state=open").await;
            open.as_array()?
                .iter()
                .find(|t| t["agent_id"] == agent_id && t["check"] == check && t["item"] == item)
                .cloned()
        },
    )
    .await
}

/// Waits until ticket `id` is resolved.
async fn resolved(collector: &Collector, id: i64) {
    eventually(Duration::from_secs(30), "the ticket to resolve", || async {
        let t = collector.get(&format!("/api/v1/tickets/{id}")).await;
        (t["state"] == "resolved").then_some(())
    })
    .await;
}

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write plugin");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_exit_codes_open_and_resolve_tickets_with_perfdata_metrics() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let control = dir.path().join("state");
    std::fs::write(&control, "crit").expect("control file");
    let plugin = dir.path().join("check_data");
    write_script(
        &plugin,
        &format!(
            "if [ \"$(cat {control})\" = crit ]; then\n\
             echo 'DISK CRITICAL - /data 97% | /=382MB;15264;15269;; /var=218MB;9443;9448'\n\
             exit 2\nfi\n\
             echo 'DISK OK - /data 41% | /=161MB;15264;15269;; /var=218MB;9443;9448'\nexit 0",
            control = control.display()
        ),
    );
    let hung = dir.path().join("check_hung");
    write_script(&hung, "sleep 30\necho never");
    let (_home, agent_id, _agent) = start_agent(
        &collector,
        &format!(
            "[[checks.plugin]]\nname = \"data\"\ncommand = [{plugin:?}]\ninterval_secs = 1\n\
             [[checks.plugin]]\nname = \"hung\"\ncommand = [{hung:?}, \"--verbose\"]\n\
             timeout_secs = 1\ninterval_secs = 1\n"
        ),
    );

    // Exit 2: CRIT, a ticket, and the perfdata as metrics.
    let ticket = open_ticket(&collector, &agent_id, ("plugin", "data")).await;
    assert_eq!(ticket["severity"], "crit", "{ticket}");
    let row = wait_state(&collector, &agent_id, ("plugin", "data"), "crit").await;
    assert_eq!(row["message"], "DISK CRITICAL - /data 97%", "{row}");
    let metrics = row["metrics"].as_array().expect("metrics");
    let root = metrics
        .iter()
        .find(|m| m["name"] == "/")
        .unwrap_or_else(|| panic!("no / metric: {row}"));
    assert_eq!(root["value"], 382.0);
    assert_eq!(root["unit"], "MB");
    assert!(
        metrics
            .iter()
            .any(|m| m["name"] == "/var" && m["value"] == 218.0)
    );

    // A plugin that overruns its timeout is UNKNOWN, and says why.
    let row = wait_state(&collector, &agent_id, ("plugin", "hung"), "unknown").await;
    assert_eq!(row["message"], "plugin timed out after 1 s", "{row}");

    // Exit 0: the same ticket resolves.
    std::fs::write(&control, "ok").expect("control file");
    resolved(&collector, ticket["id"].as_i64().expect("id")).await;
    let row = wait_state(&collector, &agent_id, ("plugin", "data"), "ok").await;
    assert_eq!(row["message"], "DISK OK - /data 41%", "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_port_going_away_opens_a_ticket() {
    let collector = Collector::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr");
    let (_home, agent_id, _agent) = start_agent(
        &collector,
        &format!(
            "[[checks.tcp]]\nname = \"db\"\naddress = \"{address}\"\ntimeout_ms = 1000\n\
             interval_secs = 1\n"
        ),
    );
    let row = wait_state(&collector, &agent_id, ("tcp", "db"), "ok").await;
    assert!(
        row["metrics"].as_array().is_some_and(|m| m
            .iter()
            .any(|m| m["name"] == "latency_ms" && m["unit"] == "ms")),
        "{row}"
    );

    drop(listener);
    let ticket = open_ticket(&collector, &agent_id, ("tcp", "db")).await;
    assert_eq!(ticket["severity"], "crit", "{ticket}");
    let row = wait_state(&collector, &agent_id, ("tcp", "db"), "crit").await;
    assert!(
        row["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("cannot connect to 127.0.0.1")),
        "{row}"
    );
}

/// A one-line HTTP server: 200 while `healthy`, else 500.
async fn http_server(healthy: Arc<AtomicBool>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let healthy = Arc::clone(&healthy);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let response: &[u8] = if healthy.load(Ordering::SeqCst) {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                } else {
                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                };
                let _ = stream.write_all(response).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_opens_a_ticket_and_200_resolves_it() {
    let collector = Collector::start();
    let healthy = Arc::new(AtomicBool::new(true));
    let addr = http_server(Arc::clone(&healthy)).await;
    let (_home, agent_id, _agent) = start_agent(
        &collector,
        &format!(
            "[[checks.http]]\nname = \"web\"\nurl = \"http://{addr}/health\"\ntimeout_ms = 2000\n\
             interval_secs = 1\n"
        ),
    );
    let row = wait_state(&collector, &agent_id, ("http", "web"), "ok").await;
    assert!(
        row["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("HTTP 200 OK in ")),
        "{row}"
    );

    healthy.store(false, Ordering::SeqCst);
    let ticket = open_ticket(&collector, &agent_id, ("http", "web")).await;
    assert_eq!(ticket["severity"], "crit", "{ticket}");
    let row = wait_state(&collector, &agent_id, ("http", "web"), "crit").await;
    assert!(
        row["metrics"].as_array().is_some_and(|m| m
            .iter()
            .any(|m| m["name"] == "status" && m["value"] == 500.0)),
        "{row}"
    );

    healthy.store(true, Ordering::SeqCst);
    resolved(&collector, ticket["id"].as_i64().expect("id")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_expiring_in_three_days_opens_a_crit_ticket() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = dir.path().join("intranet.pem");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(vec!["intranet.example.com".into()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "intranet.example.com");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(80);
    params.not_after = now + time::Duration::days(3);
    std::fs::write(&pem, params.self_signed(&key).expect("cert").pem()).expect("write pem");

    let (_home, agent_id, _agent) = start_agent(
        &collector,
        &format!("[[checks.certificate]]\nname = \"intranet\"\npem_file = {pem:?}\n"),
    );
    let ticket = open_ticket(&collector, &agent_id, ("certificate", "intranet")).await;
    assert_eq!(ticket["severity"], "crit", "{ticket}");
    let row = wait_state(&collector, &agent_id, ("certificate", "intranet"), "crit").await;
    let message = row["message"].as_str().expect("message");
    assert!(
        message.starts_with("CN=intranet.example.com expires in 3 days"),
        "{row}"
    );
    let days = row["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "days_left"))
        .and_then(|m| m["value"].as_f64())
        .expect("days_left");
    assert!((2.9..=3.0).contains(&days), "{row}");
}
