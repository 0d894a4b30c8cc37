//! The durable spool: every report the agent makes, on disk, until the
//! collector acknowledges it.
//!
//! # Layout
//! `<state_dir>/spool/` holds numbered segment files (`<id>.seg`, format in
//! [`segment`]): length-prefixed, CRC-32-checked records appended in the
//! order the reports were made. A segment is closed at `segment_bytes` and a
//! new one started; every agent start opens a new segment, so only the
//! newest segment is ever appended to. Each record carries the report's
//! `(boot_id, seq)`, so a restarted agent resends the previous run's
//! unacknowledged reports under their original numbers and the collector's
//! `(agent_id, boot_id, seq)` dedup drops what it already has.
//!
//! # Acknowledged and dropped records
//! Removing a record is an append of its index to the segment's dead list
//! `<id>.ack` (not fsynced: a dead mark lost in a crash only means one more
//! resend, which the collector drops as a repeat). A closed segment with no
//! live record is deleted with its dead list. When the spool is over its
//! bound, segments holding dead records are rewritten with only their live
//! records (`<id>.tmp`, fsync, dead list removed, rename): the dead list is
//! removed *before* the rename, so a crash in between can bring records back
//! (resent or re-dropped) but never mark a live record dead.
//!
//! # Durability
//! State changes are fsynced (`fdatasync`) before they are sent: a change
//! the agent saw is never lost to a crash or a power cut once it was handed
//! to the collector. Heartbeats are written at once (so `kill -9` loses none)
//! but fsynced in batches: with the next state change, when a segment is
//! closed, on a clean stop, or by the first heartbeat written more than
//! [`HEARTBEAT_SYNC`] after the oldest unsynced one. A power cut can lose
//! heartbeats of that window; they are liveness and metrics, not decisions.
//! A new segment's directory entry is fsynced when the segment is created.
//!
//! # Damage
//! On start every segment is read through. The first record whose length or
//! checksum is wrong ends the segment (a torn write from a crash is always
//! the last one); it and anything after it are skipped, counted and logged,
//! and the file is cut back to its good part. Nothing in the spool can stop
//! the agent from starting.
//!
//! # Bound
//! `max_bytes` bounds the spool's files plus any reports held in memory.
//! When a new report would pass it, the oldest heartbeats are dropped first
//! (the newest heartbeat and the state changes tell the collector more), then
//! the oldest state changes, until one segment's worth (`segment_bytes`, at
//! most a quarter of the bound) is free again, and segments with dead
//! records are rewritten. Every drop is counted; the counts are logged at
//! once and again when the next session opens. On disk the spool stays
//! within `max_bytes` plus the open segment.
//!
//! # A disk that fails
//! If the spool directory cannot be written (disk full, read-only, I/O
//! error), the spool logs one warning and goes on in memory only, bounded by
//! [`MEMORY_MAX_BYTES`]; reports already on disk stay readable. Every
//! `disk_retry` it tries the disk again (on the next append) and, when that
//! works, moves the reports held in memory to a new segment.
//!
//! I/O is plain blocking `std::fs`: the outbox runs appends (the writes that
//! fsync) and acks (dead-list appends, unlinks) on tokio's blocking pool;
//! reading one record back (and, rarely, forgetting one that does not read
//! back) is short enough for the session task.

mod bound;
mod read;
mod recover;
mod segment;
#[cfg(test)]
mod tests;
mod write;

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::files::{self, create_private_dir, sync_dir};

pub use segment::MAX_PAYLOAD;

/// How long heartbeats may stay written but not fsynced.
pub const HEARTBEAT_SYNC: Duration = Duration::from_secs(30);
/// The bound on reports held in memory while the disk is unusable
/// (or `max_bytes` if smaller).
pub const MEMORY_MAX_BYTES: u64 = 16 << 20;

/// What the spool needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The spool directory (`<state_dir>/spool`).
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub segment_bytes: u64,
    /// How often a failed disk is tried again.
    pub disk_retry: Duration,
}

/// Which reports matter more when something must go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Kept longest, fsynced before it is sent.
    StateChange = 1,
    /// Dropped first, fsynced in batches.
    Heartbeat = 2,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::StateChange),
            2 => Some(Self::Heartbeat),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StateChange => "state_changes",
            Self::Heartbeat => "heartbeat",
        }
    }
}

/// Reports lost: dropped to stay within the bound, or damaged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Losses {
    pub dropped_heartbeats: u64,
    pub dropped_state_changes: u64,
    /// Torn or corrupt records found when the spool was opened.
    pub damaged: u64,
    /// Records that could not be read back when their turn to be sent came.
    pub unreadable: u64,
}

impl Losses {
    pub fn total(&self) -> u64 {
        self.dropped_heartbeats + self.dropped_state_changes + self.damaged + self.unreadable
    }

    fn since(&self, earlier: &Self) -> Self {
        Self {
            dropped_heartbeats: self.dropped_heartbeats - earlier.dropped_heartbeats,
            dropped_state_changes: self.dropped_state_changes - earlier.dropped_state_changes,
            damaged: self.damaged - earlier.damaged,
            unreadable: self.unreadable - earlier.unreadable,
        }
    }
}

/// A spooled report handed out for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Position in the spool; increases with every append.
    pub pos: u64,
    pub boot_id: Arc<str>,
    pub seq: u64,
    pub kind: Kind,
    pub body: Vec<u8>,
}

/// One unacknowledged report.
#[derive(Debug)]
struct Entry {
    pos: u64,
    /// Index into `Spool::boots`.
    boot: u32,
    seq: u64,
    kind: Kind,
    /// Record bytes, header included.
    len: u32,
    loc: Loc,
}

#[derive(Debug)]
enum Loc {
    Disk {
        segment: u64,
        offset: u64,
        index: u32,
    },
    /// The whole record, while the disk is unusable.
    Memory(Box<[u8]>),
}

/// A segment file's bookkeeping.
#[derive(Debug)]
struct Segment {
    /// Records in the file.
    records: u32,
    /// Records not acknowledged or dropped.
    live: u32,
    /// File length.
    bytes: u64,
    /// The dead list, opened on first use.
    dead: Option<File>,
}

/// The segment being appended to.
#[derive(Debug)]
struct Active {
    id: u64,
    file: File,
    /// When the oldest written-but-not-fsynced record was written.
    unsynced_since: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disk {
    Usable,
    /// Reports go to memory; the disk is tried again at `retry_at`.
    Failed {
        retry_at: Instant,
    },
}

/// The spool. Every method keeps going on I/O errors (logging them): the
/// worst a failing disk does is move the spool to memory.
#[derive(Debug)]
pub struct Spool {
    opts: Options,
    entries: VecDeque<Entry>,
    /// Boot ids seen, in order; entries refer to them by index, so entries
    /// are sorted by `(boot, seq)` as well as by `pos`.
    boots: Vec<Arc<str>>,
    segments: BTreeMap<u64, Segment>,
    active: Option<Active>,
    next_pos: u64,
    next_segment: u64,
    /// Sum of `len` over entries.
    live_bytes: u64,
    /// Sum of `len` over in-memory entries.
    memory_bytes: u64,
    disk: Disk,
    /// The "disk unusable" warning was logged and the disk has not worked
    /// since: one warning per outage, not one per retry.
    warned: bool,
    losses: Losses,
    reported: Losses,
    /// The last segment read from, kept open for the next read.
    reader: Option<(u64, File)>,
}

// === impl Spool: counts ===

impl Spool {
    /// Unacknowledged reports.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Everything lost since the spool was opened.
    pub fn losses(&self) -> Losses {
        self.losses
    }

    /// Losses not yet reported through this method (once per session).
    pub fn take_unreported(&mut self) -> Option<Losses> {
        let new = self.losses.since(&self.reported);
        self.reported = self.losses;
        (new.total() > 0).then_some(new)
    }

    /// `(boot_id, seq, kind)` of every spooled report, in order.
    pub fn unacked(&self) -> impl Iterator<Item = (&str, u64, Kind)> {
        self.entries.iter().map(|e| {
            let boot = self.boots.get(e.boot as usize).map_or("", |b| &**b);
            (boot, e.seq, e.kind)
        })
    }

    fn path(&self, id: u64, ext: &str) -> PathBuf {
        self.opts.dir.join(segment::file_name(id, ext))
    }
}

// === files ===

/// A new file only the agent's user can read (reports describe the host).
fn create_file(path: &Path) -> io::Result<File> {
    files::create_new(path, 0o600)
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_quietly(path: &Path) {
    if let Err(error) = remove_if_exists(path) {
        debug!(%error, path = %path.display(), "cannot remove spool file");
    }
}
