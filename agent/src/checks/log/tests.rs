//! Unit tests of the log rules: hold window, messages, and runs on a real
//! file (start at the end, rotation, missing file).

use std::io::Write;
use std::path::Path;

use super::*;

const HOLD: Duration = Duration::from_secs(600);

fn config(path: &Path, pattern: &str) -> LogConfig {
    LogConfig {
        name: None,
        path: path.to_path_buf(),
        pattern: pattern.to_owned(),
        state: LogMatchState::Crit,
        hold_secs: HOLD.as_secs(),
        interval_secs: 10,
    }
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append")
        .write_all(text.as_bytes())
        .expect("append");
}

fn matches_metric(e: &Evaluation) -> f64 {
    e.metrics
        .iter()
        .find(|m| m.name == "matches")
        .map(|m| m.value)
        .expect("matches metric")
}

#[test]
fn the_hold_window_counts_and_expires() {
    let t0 = Instant::now();
    let mut m = Matches::default();
    m.record(t0, 2, Some("first".into()));
    m.record(t0 + Duration::from_millis(500), 1, Some("second".into()));
    m.record(t0 + Duration::from_secs(5), 0, None);
    m.record(t0 + Duration::from_secs(30), 3, Some("third".into()));
    assert_eq!(m.buckets.len(), 2, "close matches share a bucket");
    assert_eq!(m.count(), 6);
    assert_eq!(m.last_line.as_deref(), Some("third"));
    // The first bucket is held `hold` after its last match (t0 + 0.5 s).
    m.expire(t0 + HOLD, HOLD);
    assert_eq!(m.count(), 6);
    m.expire(t0 + HOLD + Duration::from_millis(500), HOLD);
    assert_eq!(m.count(), 3);
    m.expire(t0 + HOLD + Duration::from_secs(30), HOLD);
    assert_eq!(m.count(), 0);
    assert_eq!(m.last_line, None);
}

#[test]
fn excerpts_are_short_single_lines() {
    assert_eq!(excerpt("  disk error\t on sda  "), "disk error  on sda");
    let long = "é".repeat(300);
    let e = excerpt(&long);
    assert_eq!(e.chars().count(), MAX_EXCERPT_CHARS + 1);
    assert!(e.ends_with('…'));
}

#[test]
fn a_match_raises_the_state_until_the_hold_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.log");
    append(&path, "ERROR from before the agent started\n");
    let probe = LogProbe::new(&config(&path, r"ERROR|panic"));
    let t0 = Instant::now();

    // Old lines are not news.
    let e = probe.run_blocking(t0);
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);
    assert_eq!(e.item, path.display().to_string());
    assert_eq!(e.message, "no matching line in the last 10 min");
    assert_eq!(matches_metric(&e), 0.0);

    append(
        &path,
        "info: fine\nERROR: disk sda failing\nthread panicked\n",
    );
    let e = probe.run_blocking(t0 + Duration::from_secs(1));
    assert_eq!(e.state, CheckState::Crit);
    assert_eq!(
        e.message,
        "2 matching lines in the last 10 min; last: thread panicked"
    );
    assert_eq!(matches_metric(&e), 2.0);

    // Still raised without new lines, within the hold.
    let e = probe.run_blocking(t0 + Duration::from_secs(300));
    assert_eq!(e.state, CheckState::Crit);
    // Back to OK once the hold has passed.
    let e = probe.run_blocking(t0 + Duration::from_secs(1) + HOLD);
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);
}

#[test]
fn warn_state_and_a_name_are_honoured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.log");
    append(&path, "");
    let mut c = config(&path, "(?i)timeout");
    c.state = LogMatchState::Warn;
    c.name = Some("app timeouts".into());
    let probe = LogProbe::new(&c);
    let t0 = Instant::now();
    probe.run_blocking(t0);
    append(&path, "upstream TIMEOUT after 30 s\n");
    let e = probe.run_blocking(t0);
    assert_eq!(e.state, CheckState::Warn);
    assert_eq!(e.item, "app timeouts");
    assert!(
        e.message.ends_with("last: upstream TIMEOUT after 30 s"),
        "{}",
        e.message
    );
}

#[test]
fn a_rotated_file_is_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.log");
    append(&path, "start\n");
    let probe = LogProbe::new(&config(&path, "FATAL"));
    let t0 = Instant::now();
    probe.run_blocking(t0);
    std::fs::rename(&path, dir.path().join("app.log.1")).expect("rotate");
    let e = probe.run_blocking(t0);
    assert_eq!(e.state, CheckState::Ok);
    assert!(
        e.message.contains("is gone, waiting for it"),
        "{}",
        e.message
    );
    append(&path, "FATAL: out of memory\n");
    let e = probe.run_blocking(t0);
    assert_eq!(e.state, CheckState::Crit);
    assert!(
        e.message.ends_with("last: FATAL: out of memory"),
        "{}",
        e.message
    );
}

#[test]
fn a_missing_file_is_unknown_until_it_appears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("later.log");
    let probe = LogProbe::new(&config(&path, "FATAL"));
    let t0 = Instant::now();
    let e = probe.run_blocking(t0);
    assert_eq!(e.state, CheckState::Unknown);
    assert_eq!(e.message, format!("{} does not exist", path.display()));
    // A file that appears later is new: all of it is read.
    append(&path, "FATAL at boot\n");
    let e = probe.run_blocking(t0);
    assert_eq!(e.state, CheckState::Crit, "{}", e.message);
}

#[tokio::test(flavor = "current_thread")]
async fn an_appended_line_wakes_the_probe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.log");
    append(&path, "");
    let mut probe = LogProbe::new(&config(&path, "FATAL"));
    let mut wake = probe.wake().expect("watch");
    assert_eq!(probe.run().await[0].state, CheckState::Ok);
    // Its own reads do not wake it (or it would run in a loop).
    assert_eq!(probe.run().await[0].state, CheckState::Ok);
    let quiet = tokio::time::timeout(MAX_DELAY * 2, wake.recv()).await;
    assert!(quiet.is_err(), "woken by its own reads");
    append(&path, "FATAL: it broke\n");
    tokio::time::timeout(Duration::from_secs(5), wake.recv())
        .await
        .expect("woken in time")
        .expect("watch alive");
    let e = probe.run().await;
    assert_eq!(e[0].state, CheckState::Crit, "{}", e[0].message);
}
