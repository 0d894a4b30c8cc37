use std::path::Path;
use std::time::Duration;

use super::*;

fn opts(dir: &Path, max_bytes: u64, segment_bytes: u64) -> Options {
    Options {
        dir: dir.join("spool"),
        max_bytes,
        segment_bytes,
        disk_retry: Duration::from_secs(3600),
    }
}

fn roomy(dir: &Path) -> Options {
    opts(dir, 1 << 20, 4096)
}

fn body(seq: u64) -> Vec<u8> {
    format!("report body {seq:>40}").into_bytes()
}

/// `(boot, seq)` of every report, in send order, with the bodies checked.
fn sendable(spool: &mut Spool) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(p) = spool.next_after(pos) {
        assert_eq!(p.body, body(p.seq), "body of {}", p.seq);
        out.push((p.boot_id.to_string(), p.seq));
        pos = p.pos;
    }
    out
}

fn seqs(spool: &mut Spool) -> Vec<u64> {
    sendable(spool).into_iter().map(|(_, s)| s).collect()
}

fn files(dir: &Path, ext: &str) -> Vec<u64> {
    let mut ids: Vec<u64> = fs::read_dir(dir.join("spool"))
        .expect("spool dir")
        .filter_map(|e| segment::parse_name(e.ok()?.file_name().to_str()?, ext))
        .collect();
    ids.sort_unstable();
    ids
}

fn disk_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir.join("spool"))
        .expect("spool dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn append_read_ack_delete() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = Spool::open(roomy(tmp.path()));
    assert!(s.is_empty() && !s.is_memory_only());
    for seq in 1..=3 {
        s.append(Kind::StateChange, "b1", seq, &body(seq));
    }
    assert_eq!(seqs(&mut s), [1, 2, 3]);
    assert!(s.has_after(0) && !s.has_after(3));
    assert!(s.ack("b1", 2));
    assert!(!s.ack("b1", 2), "repeat ack");
    assert!(!s.ack("b2", 1), "unknown boot");
    assert_eq!(seqs(&mut s), [1, 3]);
    // The open segment is kept (and dead-listed) until it is closed.
    assert_eq!(files(tmp.path(), "seg").len(), 1);
    assert_eq!(files(tmp.path(), "ack").len(), 1);

    // Enough reports to fill several segments; acknowledging everything
    // removes every closed segment.
    for seq in 4..=200 {
        s.append(Kind::Heartbeat, "b1", seq, &body(seq));
    }
    assert!(files(tmp.path(), "seg").len() > 3);
    for seq in [1, 3].into_iter().chain(4..=200) {
        assert!(s.ack("b1", seq), "ack {seq}");
    }
    assert!(s.is_empty());
    assert!(files(tmp.path(), "seg").len() <= 1, "only the open segment");
    assert_eq!(s.losses(), Losses::default());
}

#[test]
fn reopening_lists_the_unacknowledged_reports_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let mut s = Spool::open(roomy(tmp.path()));
        for seq in 1..=120 {
            let kind = if seq % 10 == 0 {
                Kind::StateChange
            } else {
                Kind::Heartbeat
            };
            s.append(kind, "boot-1", seq, &body(seq));
        }
        for seq in (1..=120).filter(|s| s % 3 == 0) {
            assert!(s.ack("boot-1", seq));
        }
        // No clean stop: dropped like a process killed with -9.
    }
    let expected: Vec<u64> = (1..=120).filter(|s| s % 3 != 0).collect();
    let mut s = Spool::open(roomy(tmp.path()));
    assert_eq!(seqs(&mut s), expected, "acks survive in the dead lists");
    let kinds: Vec<(u64, Kind)> = s.unacked().map(|(_, q, k)| (q, k)).collect();
    assert!(kinds.contains(&(10, Kind::StateChange)));
    assert!(kinds.contains(&(11, Kind::Heartbeat)));

    // The next run appends under its own boot id, after the earlier run's.
    s.append(Kind::StateChange, "boot-2", 1, &body(1));
    let all = sendable(&mut s);
    assert_eq!(all.last(), Some(&("boot-2".to_owned(), 1)));
    assert_eq!(all.first(), Some(&("boot-1".to_owned(), 1)));
    assert!(s.ack("boot-1", 1) && s.ack("boot-2", 1));
    drop(s);
    let mut s = Spool::open(roomy(tmp.path()));
    assert_eq!(s.len(), expected.len() - 1);
    assert_eq!(seqs(&mut s).first(), Some(&2));
    assert_eq!(s.losses(), Losses::default());
}

#[test]
fn a_torn_last_record_is_skipped_and_counted_at_every_cut() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let master = tmp.path().join("master");
    {
        let mut s = Spool::open(roomy(&master));
        for seq in 1..=3 {
            s.append(Kind::StateChange, "b", seq, &body(seq));
        }
    }
    let seg = files(&master, "seg")[0];
    let name = segment::file_name(seg, "seg");
    let whole = fs::read(master.join("spool").join(&name)).expect("segment");
    let last_len = segment::encode(Kind::StateChange, 3, "b", &body(3)).len();
    let last_start = whole.len() - last_len;
    for cut in last_start..whole.len() {
        let dir = tmp.path().join(format!("cut-{cut}"));
        fs::create_dir_all(dir.join("spool")).expect("mkdir");
        fs::write(dir.join("spool").join(&name), &whole[..cut]).expect("write");

        let mut s = Spool::open(roomy(&dir));
        assert_eq!(seqs(&mut s), [1, 2], "cut at {cut}");
        let torn = u64::from(cut > last_start);
        assert_eq!(s.losses().damaged, torn, "cut at {cut}");
        assert!(!s.is_memory_only());
        // Appending goes on; the next start finds no damage.
        s.append(Kind::StateChange, "b2", 1, &body(1));
        drop(s);
        let mut s = Spool::open(roomy(&dir));
        assert_eq!(s.losses().damaged, 0, "cut at {cut}: the tail was cut off");
        assert_eq!(
            sendable(&mut s),
            [("b".into(), 1), ("b".into(), 2), ("b2".into(), 1)]
        );
    }
}

#[test]
fn corrupt_bytes_and_foreign_files_never_stop_the_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let mut s = Spool::open(roomy(tmp.path()));
        for seq in 1..=3 {
            s.append(Kind::StateChange, "b", seq, &body(seq));
        }
    }
    let spool = tmp.path().join("spool");
    let seg = spool.join(segment::file_name(files(tmp.path(), "seg")[0], "seg"));
    let mut bytes = fs::read(&seg).expect("segment");
    let second = segment::MAGIC.len() + segment::encode(Kind::StateChange, 1, "b", &body(1)).len();
    bytes[second + 20] ^= 0xff;
    fs::write(&seg, bytes).expect("corrupt");
    fs::write(
        spool.join(segment::file_name(99, "seg")),
        b"garbage!garbage",
    )
    .expect("foreign");
    fs::write(spool.join(segment::file_name(100, "seg")), b"FWSP").expect("torn header");
    fs::write(spool.join(segment::file_name(7, "tmp")), b"half a rewrite").expect("tmp");

    let mut s = Spool::open(roomy(tmp.path()));
    assert_eq!(
        seqs(&mut s),
        [1],
        "records after the damage are not trusted"
    );
    assert_eq!(s.losses().damaged, 2, "the bad record and the foreign file");
    assert_eq!(files(tmp.path(), "tmp"), Vec::<u64>::new());
    s.append(Kind::Heartbeat, "b2", 1, &body(1));
    assert_eq!(seqs(&mut s), [1, 1]);
}

#[test]
fn the_bound_drops_the_oldest_heartbeats_first() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let record = segment::encode(Kind::Heartbeat, 1, "b", &body(1)).len() as u64;
    let (max, seg) = (40 * record, 8 * record);
    let mut s = Spool::open(opts(tmp.path(), max, seg));
    // 5 state changes among 60 heartbeats: 65 records for room of 40.
    let changes = [1, 2, 20, 40, 60];
    for seq in 1..=65 {
        let kind = if changes.contains(&seq) {
            Kind::StateChange
        } else {
            Kind::Heartbeat
        };
        s.append(kind, "b", seq, &body(seq));
        assert!(s.used_bytes() <= max + seg, "bound: {}", s.used_bytes());
        assert!(disk_bytes(tmp.path()) <= max + seg, "on disk");
    }
    let kept = seqs(&mut s);
    for c in changes {
        assert!(kept.contains(&c), "state change {c} kept: {kept:?}");
    }
    // What went were heartbeats, the oldest ones: every kept heartbeat is
    // newer than every dropped one.
    let dropped: Vec<u64> = (1..=65).filter(|q| !kept.contains(q)).collect();
    assert!(!dropped.is_empty());
    let newest_dropped = dropped.iter().max().copied().unwrap_or(0);
    assert!(
        kept.iter()
            .filter(|q| !changes.contains(q))
            .all(|&q| q > newest_dropped),
        "kept {kept:?} dropped {dropped:?}"
    );
    let losses = s.losses();
    assert_eq!(losses.dropped_heartbeats, dropped.len() as u64);
    assert_eq!(losses.dropped_state_changes, 0);
    assert_eq!(s.take_unreported(), Some(losses));
    assert_eq!(s.take_unreported(), None, "reported once");

    // The rewritten segments read back the same after a restart.
    drop(s);
    let mut s = Spool::open(opts(tmp.path(), max, seg));
    assert_eq!(seqs(&mut s), kept);
}

#[test]
fn with_only_state_changes_the_oldest_go() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let record = segment::encode(Kind::StateChange, 1, "b", &body(1)).len() as u64;
    let mut s = Spool::open(opts(tmp.path(), 10 * record, 2 * record));
    for seq in 1..=30 {
        s.append(Kind::StateChange, "b", seq, &body(seq));
    }
    let kept = seqs(&mut s);
    assert_eq!(kept.last(), Some(&30));
    let oldest_kept = kept.first().copied().unwrap_or(0);
    assert_eq!(
        kept,
        (oldest_kept..=30).collect::<Vec<_>>(),
        "a contiguous tail"
    );
    assert_eq!(s.losses().dropped_state_changes, oldest_kept - 1);
}

#[test]
fn a_smaller_bound_at_start_is_enforced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let mut s = Spool::open(roomy(tmp.path()));
        for seq in 1..=100 {
            s.append(Kind::Heartbeat, "b", seq, &body(seq));
        }
    }
    let record = segment::encode(Kind::Heartbeat, 1, "b", &body(1)).len() as u64;
    let s = Spool::open(opts(tmp.path(), 20 * record, 4 * record));
    assert!(s.len() <= 20);
    assert_eq!(s.losses().dropped_heartbeats, 100 - s.len() as u64);
    assert!(disk_bytes(tmp.path()) <= 20 * record);
}

#[test]
fn an_unusable_disk_means_memory_until_it_works_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The spool dir's parent is a plain file: nothing can be created there
    // (permission bits would not stop root).
    let parent = tmp.path().join("state");
    fs::write(&parent, b"not a directory").expect("file");
    let mut o = roomy(&parent);
    o.disk_retry = Duration::ZERO;
    let mut s = Spool::open(o.clone());
    assert!(s.is_memory_only());
    s.append(Kind::StateChange, "b", 1, &body(1));
    s.append(Kind::Heartbeat, "b", 2, &body(2));
    assert!(s.is_memory_only(), "retried and failed again");
    assert_eq!(seqs(&mut s), [1, 2]);
    assert!(s.ack("b", 1));

    // Space returns: the next append moves what is in memory to disk.
    fs::remove_file(&parent).expect("rm");
    fs::create_dir(&parent).expect("mkdir");
    s.append(Kind::StateChange, "b", 3, &body(3));
    assert!(!s.is_memory_only());
    assert_eq!(seqs(&mut s), [2, 3]);
    assert_eq!(s.memory_bytes, 0);
    drop(s);
    let mut s = Spool::open(o);
    assert_eq!(seqs(&mut s), [2, 3], "on disk now");
}

#[test]
fn memory_only_mode_is_bounded_too() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let parent = tmp.path().join("state");
    fs::write(&parent, b"not a directory").expect("file");
    let record = segment::encode(Kind::Heartbeat, 1, "b", &body(1)).len() as u64;
    let mut s = Spool::open(opts(&parent, 10 * record, 2 * record));
    assert!(s.is_memory_only());
    for seq in 1..=50 {
        s.append(Kind::Heartbeat, "b", seq, &body(seq));
        assert!(s.memory_bytes <= 10 * record);
    }
    assert_eq!(s.losses().dropped_heartbeats, 50 - s.len() as u64);
    assert_eq!(seqs(&mut s).last(), Some(&50));
}
