//! Unit tests of the backup rules, the baseline memory and the directory
//! scan.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::status::{JobStatus, StatusReport};
use super::*;

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;
const HOUR: Duration = Duration::from_secs(3600);

fn config() -> BackupConfig {
    crate::config::Config::parse(
        "[[checks.backup]]\ndir = \"/srv/backup\"\nglob = \"*.tar.zst\"\n",
        std::path::Path::new("agent.toml"),
    )
    .expect("parses")
    .checks
    .backup
    .remove(0)
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn file(name: &str, age: Duration, size: u64) -> BackupFile {
    BackupFile {
        name: name.into(),
        modified: now() - age,
        size,
    }
}

fn eval(files: Vec<BackupFile>, baseline: Option<u64>) -> Evaluation {
    evaluate(
        &config(),
        "/srv/backup".into(),
        &Listing::Files(files),
        baseline,
        None,
        now(),
    )
}

fn metric(e: &Evaluation, name: &str) -> Option<f64> {
    e.metrics.iter().find(|m| m.name == name).map(|m| m.value)
}

#[test]
fn a_fresh_backup_is_ok_with_its_age_and_size() {
    let e = eval(vec![file("db-2.tar.zst", 3 * HOUR, 3 * GIB / 2)], None);
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);
    assert_eq!(e.item, "/srv/backup");
    assert_eq!(e.message, "last backup db-2.tar.zst 3 h ago, 1.5 GiB");
    assert_eq!(metric(&e, "age_seconds"), Some(10_800.0));
    assert_eq!(metric(&e, "size_bytes"), Some((3 * GIB / 2) as f64));
}

#[test]
fn no_matching_file_is_critical() {
    let e = eval(Vec::new(), None);
    assert_eq!(e.state, CheckState::Crit);
    assert_eq!(e.message, "no backup matching *.tar.zst in /srv/backup");
    assert!(e.metrics.is_empty());
    let e = evaluate(
        &config(),
        "/srv/backup".into(),
        &Listing::DirMissing,
        None,
        None,
        now(),
    );
    assert_eq!(e.state, CheckState::Crit);
    assert!(e.message.contains("does not exist"), "{}", e.message);
    let e = evaluate(
        &config(),
        "/srv/backup".into(),
        &Listing::Unreadable("Permission denied (os error 13)".into()),
        None,
        None,
        now(),
    );
    assert_eq!(e.state, CheckState::Unknown);
    assert_eq!(
        e.message,
        "cannot read /srv/backup: Permission denied (os error 13)"
    );
}

#[test]
fn an_old_backup_is_critical() {
    let e = eval(vec![file("db.tar.zst", 31 * HOUR, GIB)], None);
    assert_eq!(e.state, CheckState::Crit);
    assert_eq!(e.message, "last backup 31 h ago (limit 26 h)");
    // Exactly at the limit is still fine.
    let e = eval(vec![file("db.tar.zst", 26 * HOUR, GIB)], None);
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);
}

#[test]
fn a_too_small_backup_is_critical() {
    let e = eval(vec![file("db.tar.zst", HOUR, 0)], Some(GIB));
    assert_eq!(e.state, CheckState::Crit);
    assert_eq!(e.message, "last backup db.tar.zst is 0 B (minimum 1 B)");
}

#[test]
fn shrinking_beyond_the_limit_warns() {
    let e = eval(vec![file("b.tar.zst", HOUR, 450 * MIB)], Some(6 * GIB / 5));
    assert_eq!(e.state, CheckState::Warn);
    assert_eq!(e.message, "backup shrank 63% (from 1.2 GiB to 450 MiB)");
    // Within the limit, or growing: fine.
    let e = eval(vec![file("b.tar.zst", HOUR, 700 * MIB)], Some(GIB));
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);
    let e = eval(vec![file("b.tar.zst", HOUR, 2 * GIB)], Some(GIB));
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);
}

#[test]
fn several_problems_are_all_told_worst_first() {
    let e = eval(vec![file("b.tar.zst", 40 * HOUR, 100 * MIB)], Some(GIB));
    assert_eq!(e.state, CheckState::Crit);
    assert_eq!(
        e.message,
        "last backup 40 h ago (limit 26 h); backup shrank 90% (from 1.0 GiB to 100 MiB)"
    );
}

fn with_status(status: Result<StatusReport, String>) -> Evaluation {
    evaluate(
        &config(),
        "nightly".into(),
        &Listing::Files(vec![file("a.tar.zst", HOUR, GIB)]),
        None,
        Some(status),
        now(),
    )
}

#[test]
fn the_status_file_can_fail_the_backup() {
    let e = with_status(Ok(StatusReport {
        status: JobStatus::Failure,
        finished_at: now() - 2 * HOUR,
        message: "rsync exited 23".into(),
    }));
    assert_eq!(e.state, CheckState::Crit);
    assert_eq!(e.item, "nightly");
    assert_eq!(e.message, "backup job failed 2 h ago: rsync exited 23");

    let e = with_status(Ok(StatusReport {
        status: JobStatus::Success,
        finished_at: now() - 30 * HOUR,
        message: String::new(),
    }));
    assert_eq!(e.state, CheckState::Crit);
    assert_eq!(e.message, "backup job last succeeded 30 h ago (limit 26 h)");

    let e = with_status(Ok(StatusReport {
        status: JobStatus::Success,
        finished_at: now() - HOUR,
        message: String::new(),
    }));
    assert_eq!(e.state, CheckState::Ok);
    assert_eq!(
        e.message,
        "last backup a.tar.zst 60 min ago, 1.0 GiB; job succeeded 60 min ago"
    );

    let e = with_status(Err("status file /x: unrecognised format".into()));
    assert_eq!(e.state, CheckState::Unknown);
    assert_eq!(e.message, "status file /x: unrecognised format");
}

#[test]
fn the_baseline_is_the_previous_newest() {
    let mut g = Generations::default();
    // Two files: the second newest is the baseline.
    let two = [file("b", HOUR, 10), file("a", 25 * HOUR, 100)];
    assert_eq!(g.baseline(&two), Some(100));
    // Older files pruned: the newest of the last run stands in.
    let one = [file("c", HOUR / 2, 7)];
    assert_eq!(g.baseline(&one), Some(10));
    assert_eq!(g.baseline(&one), Some(10), "stable while nothing changes");
    // One file rewritten in place: its previous version is the baseline.
    let mut g = Generations::default();
    assert_eq!(g.baseline(&[file("db.tar.zst", 24 * HOUR, 1000)]), None);
    assert_eq!(g.baseline(&[file("db.tar.zst", HOUR, 300)]), Some(1000));
    assert_eq!(g.baseline(&[]), None);
}

#[test]
fn scan_lists_matching_files_newest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let put = |name: &str, age: Duration| {
        let path: PathBuf = dir.path().join(name);
        std::fs::write(&path, name).expect("write");
        let f = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        f.set_modified(SystemTime::now() - age).expect("set mtime");
    };
    put("db-1.tar.zst", 2 * HOUR);
    put("db-2.tar.zst", HOUR);
    put("db-3.tar.zst.part", Duration::ZERO);
    put(".db-4.tar.zst", Duration::ZERO);
    put("notes.txt", Duration::ZERO);
    std::fs::create_dir(dir.path().join("old.tar.zst")).expect("mkdir");
    let pattern = glob::Pattern::new("*.tar.zst").expect("pattern");
    let status = dir.path().join("last-run.tar.zst");
    put("last-run.tar.zst", Duration::ZERO);
    let Listing::Files(files) = scan(dir.path(), &pattern, Some(&status)) else {
        panic!("not listed");
    };
    let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["db-2.tar.zst", "db-1.tar.zst"]);
    assert_eq!(files[0].size, "db-2.tar.zst".len() as u64);
    assert_eq!(
        scan(&dir.path().join("missing"), &pattern, None),
        Listing::DirMissing
    );
}

#[test]
fn ages_for_people() {
    assert_eq!(format_age(Duration::from_secs(45)), "45 s");
    assert_eq!(format_age(Duration::from_secs(12 * 60)), "12 min");
    assert_eq!(format_age(31 * HOUR + Duration::from_secs(1800)), "31 h");
    assert_eq!(format_age(24 * 9 * HOUR + HOUR), "9 d");
}

#[tokio::test(flavor = "current_thread")]
async fn the_probe_judges_a_real_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config();
    config.dir = dir.path().to_path_buf();
    config.status_file = Some(dir.path().join("status.txt"));
    let mut probe = BackupProbe::new(&config);
    let e = probe.run().await;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].state, CheckState::Crit);
    assert!(
        e[0].message.contains("no backup matching") && e[0].message.contains("does not exist"),
        "{}",
        e[0].message
    );
    std::fs::write(dir.path().join("a.tar.zst"), "data").expect("write");
    std::fs::write(dir.path().join("status.txt"), "OK all good\n").expect("write");
    let e = probe.run().await;
    assert_eq!(e[0].state, CheckState::Ok, "{}", e[0].message);
    assert_eq!(e[0].item, dir.path().display().to_string());
}

#[tokio::test(flavor = "current_thread")]
async fn the_probe_does_not_wake_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.tar.zst"), "data").expect("write");
    std::fs::write(dir.path().join("status.txt"), "OK\n").expect("write");
    let mut config = config();
    config.dir = dir.path().to_path_buf();
    config.status_file = Some(dir.path().join("status.txt"));
    let mut probe = BackupProbe::new(&config);
    let mut wake = probe.wake().expect("watch");
    // Its own listing, stat and status read (open, read, close) are not
    // changes: no wake-up, or it would run in a loop.
    for _ in 0..3 {
        assert_eq!(probe.run().await[0].state, CheckState::Ok);
    }
    let quiet = tokio::time::timeout(SETTLE * 3, wake.recv()).await;
    assert!(quiet.is_err(), "woken by its own reads");
    // A new backup does wake it.
    std::fs::write(dir.path().join("b.tar.zst"), "data").expect("write");
    let woken = tokio::time::timeout(Duration::from_secs(5), wake.recv()).await;
    assert!(
        woken.is_ok_and(|w| w.is_some()),
        "not woken by a new backup"
    );
}
