//! schemathesis (PyPI), an independent OpenAPI client, against the live
//! collector: it reads `/api/v1/openapi.json`, calls every operation with
//! generated valid and invalid inputs, and must find no 5xx and no response
//! that breaks the document (status, content type, body schema).
//!
//! The collector has data to find: an enrolled agent with a check failing
//! (an open ticket), so the by-id operations meet real ids as well as
//! generated ones. `tests/schemathesis.sh` installs schemathesis when
//! missing and runs it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{AgentHome, Collector, enroll_ok, eventually};

/// Only a process check for a program that never runs: CRIT at once.
const AGENT_CONFIG: &str = "[checks.disk]\nenabled = false\n[checks.cpu]\nenabled = false\n\
    [checks.memory]\nenabled = false\n[checks.load]\nenabled = false\n\
    [checks.reboot_required]\nenabled = false\n\
    [[checks.process]]\ncmdline = \"fw-schemathesis-never-runs\"\ninterval_secs = 1\n";

/// Examples per operation: enough to meet every parameter, about a minute
/// in all.
const MAX_EXAMPLES: &str = "50";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let c = Collector::start();
    let home = AgentHome::new(AGENT_CONFIG);
    let agent_id = enroll_ok(&c, &home, "default");
    let _agent = home.run();
    let ticket = eventually(Duration::from_secs(30), "an open ticket", || async {
        let open = c.get("/api/v1/tickets?state=open").await;
        open.as_array()?
            .iter()
            .find(|t| t["agent_id"] == agent_id.as_str())
            .cloned()
    })
    .await;
    assert_eq!(ticket["check"], "process", "{ticket}");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemathesis.sh");
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .arg(format!("http://{}", c.http))
        .arg(&c.api_key)
        .arg(MAX_EXAMPLES)
        .output()
        .await
        .expect("run tests/schemathesis.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found problems ({}):\n{stdout}\n{stderr}\ncollector log:\n{}",
        out.status,
        c.proc.log_text()
    );
    println!("{stdout}");
    // It really ran the operations (not an empty document or a skip).
    assert!(stdout.contains("/api/v1/tickets"), "{stdout}");
}
