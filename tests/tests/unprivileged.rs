//! The agent needs no root: enrolled as root (as the systemd unit's setup
//! does), then run as an unprivileged user (uid/gid 65534) with its state
//! directory handed to that user (what `StateDirectory=` does), every check
//! kind reports a real result, and the one thing root would add — reading a
//! file its user may not read — is a clear UNKNOWN naming the file and the
//! permission error, not a crash or a false CRIT.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{AgentHome, Collector, Proc, enroll_ok, eventually};
use serde_json::Value;

/// `nobody`/`nogroup` on Debian; any uid without privileges would do.
const UNPRIVILEGED: u32 = 65534;

fn chown_tree(path: &Path) {
    let out = Command::new("chown")
        .args(["-R", &format!("{UNPRIVILEGED}:{UNPRIVILEGED}")])
        .arg(path)
        .output()
        .expect("run chown");
    assert!(out.status.success(), "chown: {out:?}");
}

fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("Uid line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_runs_every_check_kind_without_root() {
    let collector = Collector::start();
    let files = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(files.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // A backup directory and a certificate owned by root but readable by
    // others, as they usually are.
    let backups = files.path().join("backups");
    std::fs::create_dir(&backups).expect("mkdir");
    std::fs::write(backups.join("db.tar"), vec![0u8; 4096]).expect("backup file");
    let pem = files.path().join("ca.pem");
    std::fs::write(&pem, collector.ca_pem()).expect("write pem");
    // A log only root may read (mode 0600, like many under /var/log).
    let secret_log = files.path().join("secure.log");
    std::fs::write(&secret_log, "").expect("write log");
    std::fs::set_permissions(&secret_log, std::fs::Permissions::from_mode(0o600))
        .expect("chmod log");
    let readable_log = files.path().join("app.log");
    std::fs::write(&readable_log, "").expect("write log");
    std::fs::set_permissions(&readable_log, std::fs::Permissions::from_mode(0o644))
        .expect("chmod log");

    let init = init_name();
    let home = AgentHome::new(&format!(
        r#"
[checks.disk]
mounts = ["/"]
warn_used_percent = 99.9
crit_used_percent = 99.95
trend_enabled = false
[checks.cpu]
warn_percent = 99.9
crit_percent = 100.0
[checks.memory]
warn_percent = 99.9
crit_percent = 100.0
[[checks.process]]
name = "{init}"
interval_secs = 1
[[checks.backup]]
name = "db"
dir = {backups:?}
max_age_hours = 1
interval_secs = 1
[[checks.log]]
name = "app"
path = {readable_log:?}
pattern = "FATAL"
interval_secs = 1
[[checks.log]]
name = "secure"
path = {secret_log:?}
pattern = "FATAL"
interval_secs = 1
[[checks.plugin]]
name = "echo"
command = ["/bin/echo", "OK - plugin ran|x=1"]
interval_secs = 1
[[checks.tcp]]
name = "collector"
address = "{grpc}"
interval_secs = 1
[[checks.http]]
name = "collector api"
url = "http://{http}/healthz"
interval_secs = 1
[[checks.certificate]]
name = "ca"
pem_file = {pem:?}
warn_days = 1
crit_days = 0
interval_secs = 1
"#,
        init = init,
        grpc = collector.grpc,
        http = collector.http,
    ));
    let agent_id = enroll_ok(&collector, &home, "default");
    // What systemd does for User= with StateDirectory=: the state directory
    // (identity, key, spool) now belongs to the service user.
    chown_tree(home.dir.path());

    let log = home.dir.path().join("agent.log");
    let child = home
        .command()
        .arg("run")
        .uid(UNPRIVILEGED)
        .gid(UNPRIVILEGED)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn agent");
    let agent = Proc { child, log };
    assert_eq!(uid_of(agent.child.id()), UNPRIVILEGED);

    let expected_ok = [
        ("disk", "/"),
        ("cpu", ""),
        ("memory", ""),
        ("process", init.as_str()),
        ("backup", "db"),
        ("log", "app"),
        ("plugin", "echo"),
        ("tcp", "collector"),
        ("http", "collector api"),
        ("certificate", "ca"),
    ];
    let checks = eventually(
        Duration::from_secs(60),
        "every check reported from the unprivileged agent",
        || async {
            let (status, v) = collector
                .get_with(&collector.api_key, &format!("/api/v1/agents/{agent_id}"))
                .await;
            let checks = v["checks"].as_array().cloned().unwrap_or_default();
            let has = |kind: &str, item: &str| {
                checks
                    .iter()
                    .any(|c| c["check"] == kind && c["item"] == item)
            };
            (status == 200 && expected_ok.iter().all(|(k, i)| has(k, i)) && has("log", "secure"))
                .then_some(checks)
        },
    )
    .await;
    let find = |kind: &str, item: &str| -> &Value {
        checks
            .iter()
            .find(|c| c["check"] == kind && c["item"] == item)
            .expect("check present")
    };
    for (kind, item) in expected_ok {
        let c = find(kind, item);
        assert_eq!(
            c["state"],
            "ok",
            "{kind} {item:?} is not OK when unprivileged: {c}\n{}",
            agent.log_text()
        );
    }
    for c in &checks {
        println!(
            "unprivileged agent: {} {:?} {} — {}",
            c["check"], c["item"], c["state"], c["message"]
        );
    }
    let secure = find("log", "secure");
    assert_eq!(secure["state"], "unknown", "{secure}");
    let message = secure["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("secure.log") && message.contains("ermission denied"),
        "the message must name the file and the permission error: {message}"
    );
    assert!(
        agent.log_text().lines().all(|l| !l.contains("panicked")),
        "{}",
        agent.log_text()
    );
    // The agent still runs as the unprivileged user.
    assert_eq!(uid_of(agent.child.id()), UNPRIVILEGED);
}

/// The process name of PID 1 (whatever init this machine or container
/// runs): a process owned by root, which an unprivileged agent must still
/// see.
fn init_name() -> String {
    std::fs::read_to_string("/proc/1/comm")
        .expect("read /proc/1/comm")
        .trim()
        .to_string()
}
