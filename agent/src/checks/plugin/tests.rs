//! The plugin probe on real processes: small `/bin/sh` scripts written to
//! a temp dir.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::*;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn config(command: &[&str], timeout_secs: u64) -> PluginConfig {
    PluginConfig {
        name: "test".into(),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        timeout_secs,
        interval_secs: Some(60),
        interval_ms: None,
        env: BTreeMap::new(),
    }
}

async fn evaluate(config: &PluginConfig) -> Evaluation {
    let mut probe = PluginProbe::new(config);
    let mut results = probe.run().await;
    assert_eq!(results.len(), 1);
    results.remove(0)
}

async fn run_script(body: &str) -> Evaluation {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = script(dir.path(), "check", body);
    evaluate(&config(&[path.to_str().expect("utf-8")], 10)).await
}

#[tokio::test]
async fn exit_codes_are_states_and_perfdata_are_metrics() {
    let e = run_script(
        "echo 'DISK CRITICAL - /data 97% | /=382MB;15264;15269;; /var=218MB;9443;9448'\nexit 2",
    )
    .await;
    assert_eq!(e.state, CheckState::Crit);
    assert_eq!(e.item, "test");
    assert_eq!(e.message, "DISK CRITICAL - /data 97%");
    let names: Vec<_> = e
        .metrics
        .iter()
        .map(|m| (m.name.as_ref(), m.value, m.unit.as_ref()))
        .collect();
    assert_eq!(names, [("/", 382.0, "MB"), ("/var", 218.0, "MB")]);
    // The thresholds go along with the values.
    let root = e.metrics[0].thresholds.as_deref().expect("thresholds");
    assert_eq!(root.warn, Some("15264".parse().expect("range")));
    assert_eq!(root.crit, Some("15269".parse().expect("range")));
    assert_eq!((root.min, root.max), (None, None));
    assert_eq!(root.breached(382.0), None);
    for (code, state) in [
        (0, CheckState::Ok),
        (1, CheckState::Warn),
        (3, CheckState::Unknown),
    ] {
        let e = run_script(&format!("echo fine\nexit {code}")).await;
        assert_eq!((e.state, e.message.as_str()), (state, "fine"));
    }
}

#[tokio::test]
async fn other_exit_codes_and_signals_are_unknown_with_the_reason() {
    let e = run_script("echo oops\nexit 7").await;
    assert_eq!(e.state, CheckState::Unknown);
    assert_eq!(e.message, "plugin exited with code 7: oops");
    let e = run_script("kill -9 $$").await;
    assert_eq!(e.state, CheckState::Unknown);
    assert_eq!(e.message, "plugin killed by signal 9");
}

#[tokio::test]
async fn programs_that_cannot_start_are_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("not-executable");
    std::fs::write(&path, "#!/bin/sh\nexit 0\n").expect("write");
    let e = evaluate(&config(&[path.to_str().expect("utf-8")], 5)).await;
    assert_eq!(e.state, CheckState::Unknown);
    assert!(e.message.contains("not executable"), "{}", e.message);
    let e = evaluate(&config(&["/nonexistent/check_nothing"], 5)).await;
    assert_eq!(e.state, CheckState::Unknown);
    assert_eq!(e.message, "cannot run plugin: program not found");
}

#[tokio::test]
async fn a_hanging_plugin_and_its_children_are_killed_at_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("child.pid");
    let path = script(
        dir.path(),
        "hang",
        &format!("sleep 60 &\necho $! > {}\nwait", pidfile.display()),
    );
    let started = Instant::now();
    let e = evaluate(&config(&[path.to_str().expect("utf-8")], 1)).await;
    assert_eq!(e.state, CheckState::Unknown);
    assert_eq!(e.message, "plugin timed out after 1 s");
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid = std::fs::read_to_string(&pidfile).expect("pid file");
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
    // SIGKILL is delivered at once; the zombie is reaped by init shortly.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
        let gone = state.is_empty() || state.split_whitespace().nth(2) == Some("Z");
        if gone {
            break;
        }
        assert!(Instant::now() < deadline, "child still alive: {state}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_background_process_holding_the_pipe_does_not_stall_the_result() {
    let started = Instant::now();
    let e = run_script("sleep 5 &\necho 'OK - started'\nexit 0").await;
    assert_eq!(
        (e.state, e.message.as_str()),
        (CheckState::Ok, "OK - started")
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn output_is_capped_and_cleaned() {
    let e = run_script(
        "printf 'BIG \\033[1mbold\\033[0m | a=1\\n'\nhead -c 3000000 /dev/zero | tr '\\0' x\nexit 1",
    )
    .await;
    assert_eq!(e.state, CheckState::Warn);
    assert_eq!(e.message, "BIG  [1mbold [0m");
    assert_eq!(e.metrics, [Metric::new("a", 1.0, "")]);
    let long = "y".repeat(5000);
    let e = run_script(&format!("echo {long}")).await;
    assert!(e.message.len() <= MAX_MESSAGE_BYTES);
}

#[tokio::test]
async fn stderr_speaks_when_stdout_is_silent() {
    let e = run_script("echo 'cannot open /etc/x' >&2\nexit 3").await;
    assert_eq!(e.state, CheckState::Unknown);
    assert_eq!(e.message, "cannot open /etc/x");
    let e = run_script("exit 2").await;
    assert_eq!(e.message, "plugin said nothing (exit 2)");
}

#[tokio::test]
async fn arguments_are_not_interpreted_by_a_shell_and_env_is_passed() {
    let mut c = config(&["/bin/echo", "$HOME", ";", "exit", "2"], 5);
    let e = evaluate(&c).await;
    assert_eq!(
        (e.state, e.message.as_str()),
        (CheckState::Ok, "$HOME ; exit 2")
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = script(dir.path(), "env", "echo \"zone=$ZONE\"");
    c = config(&[path.to_str().expect("utf-8")], 5);
    c.env.insert("ZONE".into(), "eu west".into());
    assert_eq!(evaluate(&c).await.message, "zone=eu west");
}
