//! The plugin, tcp, http and certificate checks end to end: real agent and
//! collector processes; real plugin scripts, sockets and certificate files
//! made by each test. Each failure opens a ticket at the collector, and the
//! repair resolves it. Also: real Nagios plugins (Debian's
//! monitoring-plugins-basic, installed by `tests/plugins.sh`) whose
//! perfdata thresholds reach the API and the host page, and the http
//! check's body match against Python's `http.server`.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
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

/// Where Debian's monitoring-plugins-basic puts the plugins.
const NAGIOS_PLUGINS: &str = "/usr/lib/nagios/plugins";

/// Installs monitoring-plugins-basic when missing (`tests/plugins.sh`).
fn nagios_plugins() -> &'static str {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .expect("run tests/plugins.sh");
    assert!(
        out.status.success(),
        "tests/plugins.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    NAGIOS_PLUGINS
}

/// The metric `name` of a check row.
fn metric<'a>(row: &'a Value, name: &str) -> &'a Value {
    row["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("no metric {name}: {row}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nagios_plugin_thresholds_reach_the_api_and_the_host_page() {
    let plugins = nagios_plugins();
    let collector = Collector::start();
    // check_procs: more than 1 process is WARN, more than 2 CRIT (there
    // are always more here); check_load with thresholds far above any
    // load: OK, ranges and all.
    let (_home, agent_id, _agent) = start_agent(
        &collector,
        &format!(
            "[[checks.plugin]]\nname = \"procs-warn\"\n\
             command = [\"{plugins}/check_procs\", \"-w\", \"1\", \"-c\", \"1000000\"]\n\
             interval_secs = 1\n\
             [[checks.plugin]]\nname = \"procs-crit\"\n\
             command = [\"{plugins}/check_procs\", \"-w\", \"1\", \"-c\", \"2\"]\n\
             interval_secs = 1\n\
             [[checks.plugin]]\nname = \"load\"\n\
             command = [\"{plugins}/check_load\", \"-w\", \"1000,1000,1000\", \"-c\", \"2000,2000,2000\"]\n\
             interval_secs = 1\n"
        ),
    );

    // Through the API: the ranges as the plugin gave them.
    let row = wait_state(&collector, &agent_id, ("plugin", "procs-warn"), "warn").await;
    let procs = metric(&row, "procs");
    assert!(procs["value"].as_f64().is_some_and(|v| v > 2.0), "{row}");
    assert_eq!(
        procs["warn"],
        serde_json::json!({"start": 0.0, "end": 1.0, "inside": false}),
        "{row}"
    );
    assert_eq!(procs["crit"]["end"], 1_000_000.0, "{row}");
    assert_eq!(procs["min"], 0.0, "{row}");
    assert!(
        procs.get("max").is_none(),
        "check_procs gives no max: {row}"
    );
    let row = wait_state(&collector, &agent_id, ("plugin", "procs-crit"), "crit").await;
    assert_eq!(metric(&row, "procs")["crit"]["end"], 2.0, "{row}");
    let row = wait_state(&collector, &agent_id, ("plugin", "load"), "ok").await;
    for name in ["load1", "load5", "load15"] {
        let m = metric(&row, name);
        assert_eq!(m["warn"]["end"], 1000.0, "{row}");
        assert_eq!(m["crit"]["end"], 2000.0, "{row}");
    }

    // On the host page: each metric with its ranges and what it breaches.
    let password = collector.operator("root", "msp-admin", &[]).await;
    let cookie = collector.sign_in("root", &password).await;
    let (status, page) = collector.page(&cookie, &format!("/hosts/{agent_id}")).await;
    assert_eq!(status, 200, "{page}");
    let line = |item: &str, metric: &str| -> String {
        let at = page
            .find(&format!("data-item=\"{item}\""))
            .unwrap_or_else(|| panic!("no {item} row: {page}"));
        let from = at
            + page[at..]
                .find(&format!("data-metric=\"{metric}\""))
                .unwrap_or_else(|| panic!("no {metric} under {item}: {page}"));
        let to = from + page[from..].find("</li>").expect("end of the line");
        page[from..to].to_owned()
    };
    let warn = line("procs-warn", "procs");
    assert!(warn.contains("data-breach=\"warn\""), "{warn}");
    assert!(warn.contains("warn 1</span>"), "{warn}");
    assert!(warn.contains("crit 1000000</span>"), "{warn}");
    assert!(warn.contains("breaches warn"), "{warn}");
    // The tooltip says when the range alerts (`<` and `>` HTML-escaped).
    let unescaped = warn
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    assert!(
        unescaped.contains("title=\"warn when < 0 or > 1\""),
        "{warn}"
    );
    let crit = line("procs-crit", "procs");
    assert!(crit.contains("data-breach=\"crit\""), "{crit}");
    assert!(crit.contains("breaches crit"), "{crit}");
    let load = line("load", "load1");
    assert!(load.contains("data-breach=\"\""), "{load}");
    assert!(
        load.contains("warn 1000</span>") && load.contains("crit 2000</span>"),
        "{load}"
    );
    assert!(!load.contains("breaches"), "{load}");
}

/// Python's `http.server` serving `dir` on a loopback port it picks; its
/// port.
fn python_http_server(dir: &Path, log: &Path) -> (Proc, u16) {
    let mut child = Command::new("python3")
        .args([
            "-u",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn python3 -m http.server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
            if let Some(port) = line
                .split_once(" port ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .and_then(|p| p.parse::<u16>().ok())
            {
                let _ = tx.send(port);
            }
        }
    });
    let proc = Proc {
        child,
        log: log.to_path_buf(),
    };
    let port = rx
        .recv_timeout(Duration::from_secs(15))
        .unwrap_or_else(|_| panic!("http.server did not start:\n{}", proc.log_text()));
    (proc, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_body_mismatch_opens_a_ticket_and_a_match_resolves_it() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    std::fs::create_dir(&site).expect("site dir");
    let health = site.join("health.json");
    std::fs::write(&health, r#"{"status":"ok","version":"17"}"#).expect("health");
    let (_server, port) = python_http_server(&site, &dir.path().join("http.log"));
    let (_home, agent_id, _agent) = start_agent(
        &collector,
        &format!(
            "[[checks.http]]\nname = \"api\"\nurl = \"http://127.0.0.1:{port}/health.json\"\n\
             body_contains = '\"status\":\"ok\"'\nbody_regex = '\"version\":\"\\d+\"'\n\
             timeout_ms = 2000\ninterval_secs = 1\n"
        ),
    );
    let row = wait_state(&collector, &agent_id, ("http", "api"), "ok").await;
    assert!(
        row["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("HTTP 200 OK in ")),
        "{row}"
    );

    // Still 200, but the body says otherwise: CRIT, saying what is missing.
    std::fs::write(&health, r#"{"status":"degraded","version":"17"}"#).expect("health");
    let ticket = open_ticket(&collector, &agent_id, ("http", "api")).await;
    assert_eq!(ticket["severity"], "crit", "{ticket}");
    let row = wait_state(&collector, &agent_id, ("http", "api"), "crit").await;
    let message = row["message"].as_str().expect("message");
    assert!(
        message.starts_with("HTTP 200 OK in ")
            && message.ends_with(r#", but the body does not contain "\"status\":\"ok\"""#),
        "{row}"
    );

    std::fs::write(&health, r#"{"status":"ok","version":"18"}"#).expect("health");
    resolved(&collector, ticket["id"].as_i64().expect("id")).await;
}
