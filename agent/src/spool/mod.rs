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
//! fsync) on tokio's blocking pool; reads of one record, dead-list appends
//! and unlinks are short enough for the session task.

mod segment;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

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

/// Where a rewrite put an entry's record.
#[derive(Debug)]
struct Moved {
    /// Index into `Spool::entries`.
    entry: usize,
    offset: u64,
    index: u32,
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
    losses: Losses,
    reported: Losses,
    /// The last segment read from, kept open for the next read.
    reader: Option<(u64, File)>,
}

// === impl Spool: open and recover ===

impl Spool {
    /// Opens the spool in `opts.dir`, reading back what an earlier run left.
    /// Never fails: a directory that cannot be used means memory-only mode.
    pub fn open(opts: Options) -> Self {
        let mut spool = Self {
            opts,
            entries: VecDeque::new(),
            boots: Vec::new(),
            segments: BTreeMap::new(),
            active: None,
            next_pos: 1,
            next_segment: 1,
            live_bytes: 0,
            memory_bytes: 0,
            disk: Disk::Usable,
            losses: Losses::default(),
            reported: Losses::default(),
            reader: None,
        };
        if let Err(error) = spool.recover() {
            spool.degrade(&error, "open");
        }
        if !spool.entries.is_empty() {
            info!(
                dir = %spool.opts.dir.display(),
                reports = spool.entries.len(),
                bytes = spool.live_bytes,
                segments = spool.segments.len(),
                "spool holds unacknowledged reports from an earlier run"
            );
        }
        spool.make_room(0);
        spool
    }

    fn recover(&mut self) -> io::Result<()> {
        create_dir(&self.opts.dir)?;
        let mut segments = Vec::new();
        let mut dead_lists = Vec::new();
        for item in fs::read_dir(&self.opts.dir)? {
            let item = item?;
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = segment::parse_name(name, "seg") {
                segments.push(id);
            } else if let Some(id) = segment::parse_name(name, "ack") {
                dead_lists.push(id);
            } else if segment::parse_name(name, "tmp").is_some() {
                // A rewrite that did not finish: the segment it was
                // replacing is still whole.
                remove_quietly(&item.path());
            }
        }
        segments.sort_unstable();
        for &id in &segments {
            self.next_segment = self.next_segment.max(id + 1);
            self.recover_segment(id);
        }
        for id in dead_lists {
            if !self.segments.contains_key(&id) {
                remove_quietly(&self.path(id, "ack"));
            }
        }
        Ok(())
    }

    /// Reads segment `id` into the index, cutting off a damaged tail.
    fn recover_segment(&mut self, id: u64) {
        let path = self.path(id, "seg");
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => {
                // Left alone: a later start may read it.
                warn!(%error, path = %path.display(), "cannot read spool segment, skipped");
                return;
            }
        };
        let scan = segment::scan(&bytes);
        if !scan.has_magic {
            if bytes.len() >= segment::MAGIC.len() || !segment::MAGIC.starts_with(&bytes) {
                warn!(path = %path.display(), "not a spool segment, removed");
                self.losses.damaged += 1;
            }
            // Else a crash right after creating it: no record was written.
            remove_quietly(&path);
            remove_quietly(&self.path(id, "ack"));
            return;
        }
        if let Some((offset, damage)) = scan.damage {
            self.losses.damaged += 1;
            warn!(
                path = %path.display(),
                offset,
                damage = damage.as_str(),
                skipped_bytes = bytes.len() as u64 - offset,
                "torn or corrupt record in the spool, skipped"
            );
            let cut = OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(scan.valid_len).and_then(|()| f.sync_data()));
            if let Err(error) = cut {
                debug!(%error, path = %path.display(), "cannot cut the damaged tail");
            }
        }
        let dead: HashSet<u32> = match fs::read(self.path(id, "ack")) {
            Ok(b) => segment::dead_indexes(&b).collect(),
            Err(_) => HashSet::new(),
        };
        let mut live = 0;
        for (index, found) in scan.records.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            if dead.contains(&index) {
                continue;
            }
            live += 1;
            let boot = self.boot_index(&found.boot_id);
            self.push_entry(Entry {
                pos: 0,
                boot,
                seq: found.seq,
                kind: found.kind,
                len: found.len,
                loc: Loc::Disk {
                    segment: id,
                    offset: found.offset,
                    index,
                },
            });
        }
        if live == 0 {
            remove_quietly(&path);
            remove_quietly(&self.path(id, "ack"));
            return;
        }
        self.segments.insert(
            id,
            Segment {
                records: u32::try_from(scan.records.len()).unwrap_or(u32::MAX),
                live,
                bytes: scan.valid_len,
                dead: None,
            },
        );
    }
}

// === impl Spool: append ===

impl Spool {
    /// Appends a report; durable on return if `kind` is a state change and
    /// the disk is usable. Returns its position.
    pub fn append(&mut self, kind: Kind, boot_id: &str, seq: u64, body: &[u8]) -> u64 {
        let record = segment::encode(kind, seq, boot_id, body);
        let len = record.len() as u64;
        if let Disk::Failed { retry_at } = self.disk
            && Instant::now() >= retry_at
        {
            self.restore_disk();
        }
        self.make_room(len);
        let boot = self.boot_index(boot_id);
        let loc = match self.disk {
            Disk::Usable => match self.write(&record, kind == Kind::StateChange) {
                Ok(loc) => loc,
                Err(error) => {
                    self.degrade(&error, "append");
                    Loc::Memory(record.into_boxed_slice())
                }
            },
            Disk::Failed { .. } => Loc::Memory(record.into_boxed_slice()),
        };
        self.push_entry(Entry {
            pos: 0,
            boot,
            seq,
            kind,
            len: u32::try_from(len).unwrap_or(u32::MAX),
            loc,
        })
    }

    /// Writes one record to the open segment (opening one if needed).
    fn write(&mut self, record: &[u8], sync: bool) -> io::Result<Loc> {
        let len = record.len() as u64;
        let full = self
            .active
            .as_ref()
            .and_then(|a| self.segments.get(&a.id))
            .is_some_and(|s| s.records > 0 && s.bytes + len > self.opts.segment_bytes);
        if full {
            self.seal()?;
        }
        if self.active.is_none() {
            self.start_segment()?;
        }
        let no_segment = || io::Error::other("no open spool segment");
        let active = self.active.as_mut().ok_or_else(no_segment)?;
        let seg = self.segments.get_mut(&active.id).ok_or_else(no_segment)?;
        let offset = seg.bytes;
        if let Err(error) = active.file.write_all(record) {
            // Best effort: no half record left for the next start to count.
            let _ = active.file.set_len(offset);
            self.active = None;
            return Err(error);
        }
        seg.bytes += len;
        seg.records += 1;
        seg.live += 1;
        let loc = Loc::Disk {
            segment: active.id,
            offset,
            index: seg.records - 1,
        };
        let written = Instant::now();
        let since = *active.unsynced_since.get_or_insert(written);
        if sync || written.duration_since(since) >= HEARTBEAT_SYNC {
            active.file.sync_data()?;
            active.unsynced_since = None;
        }
        Ok(loc)
    }

    fn start_segment(&mut self) -> io::Result<()> {
        create_dir(&self.opts.dir)?;
        // `create_new`: a file of that id left by someone else is never
        // overwritten; the next id is tried.
        let (id, mut file) = loop {
            let id = self.next_segment;
            self.next_segment += 1;
            match create_file(&self.path(id, "seg")) {
                Ok(file) => break (id, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        };
        let init = file
            .write_all(segment::MAGIC)
            .and_then(|()| file.sync_data())
            .and_then(|()| sync_dir(&self.opts.dir));
        if let Err(error) = init {
            remove_quietly(&self.path(id, "seg"));
            return Err(error);
        }
        self.segments.insert(
            id,
            Segment {
                records: 0,
                live: 0,
                bytes: segment::MAGIC.len() as u64,
                dead: None,
            },
        );
        self.active = Some(Active {
            id,
            file,
            unsynced_since: None,
        });
        Ok(())
    }

    /// Closes the open segment (fsynced); deletes it if nothing in it is live.
    fn seal(&mut self) -> io::Result<()> {
        let Some(active) = self.active.take() else {
            return Ok(());
        };
        let synced = match active.unsynced_since {
            Some(_) => active.file.sync_data(),
            None => Ok(()),
        };
        if self.segments.get(&active.id).is_some_and(|s| s.live == 0) {
            self.delete_segment(active.id);
        }
        synced
    }

    /// Fsyncs what was written (a clean stop).
    pub fn sync(&mut self) {
        if let Some(active) = &mut self.active
            && active.unsynced_since.is_some()
        {
            match active.file.sync_data() {
                Ok(()) => active.unsynced_since = None,
                Err(error) => warn!(%error, "cannot fsync the spool"),
            }
        }
    }

    fn push_entry(&mut self, mut entry: Entry) -> u64 {
        entry.pos = self.next_pos;
        self.next_pos += 1;
        self.live_bytes += u64::from(entry.len);
        if matches!(entry.loc, Loc::Memory(_)) {
            self.memory_bytes += u64::from(entry.len);
        }
        let pos = entry.pos;
        self.entries.push_back(entry);
        pos
    }

    fn boot_index(&mut self, boot_id: &str) -> u32 {
        let index = match self.boots.iter().rposition(|b| **b == *boot_id) {
            Some(i) => i,
            None => {
                self.boots.push(Arc::from(boot_id));
                self.boots.len() - 1
            }
        };
        u32::try_from(index).unwrap_or(u32::MAX)
    }
}

// === impl Spool: memory-only mode ===

impl Spool {
    fn degrade(&mut self, error: &io::Error, during: &'static str) {
        self.active = None;
        let retry_at = Instant::now() + self.opts.disk_retry;
        if self.disk == Disk::Usable {
            warn!(
                %error,
                dir = %self.opts.dir.display(),
                during,
                retry_secs = self.opts.disk_retry.as_secs(),
                memory_max_bytes = self.memory_limit(),
                "spool disk unusable: keeping reports in memory only until it works again"
            );
        } else {
            debug!(%error, during, "spool disk still unusable");
        }
        self.disk = Disk::Failed { retry_at };
    }

    /// Tries the disk again: moves in-memory reports to a new segment.
    fn restore_disk(&mut self) {
        self.disk = Disk::Usable;
        let mut moved = 0;
        for i in 0..self.entries.len() {
            let Some(Entry {
                loc: Loc::Memory(record),
                len,
                ..
            }) = self.entries.get(i)
            else {
                continue;
            };
            let (record, len) = (record.clone(), u64::from(*len));
            // Fsynced once, below.
            match self.write(&record, false) {
                Ok(loc) => {
                    if let Some(e) = self.entries.get_mut(i) {
                        e.loc = loc;
                    }
                    self.memory_bytes -= len;
                    moved += 1;
                }
                Err(error) => return self.degrade(&error, "retry"),
            }
        }
        if let Some(active) = &mut self.active
            && active.unsynced_since.is_some()
        {
            if let Err(error) = active.file.sync_data() {
                return self.degrade(&error, "retry");
            }
            active.unsynced_since = None;
        }
        info!(
            dir = %self.opts.dir.display(),
            moved,
            "spool disk usable again: reports held in memory are on disk"
        );
    }

    /// Whether reports currently go to memory instead of disk.
    pub fn is_memory_only(&self) -> bool {
        matches!(self.disk, Disk::Failed { .. })
    }

    fn memory_limit(&self) -> u64 {
        self.opts.max_bytes.min(MEMORY_MAX_BYTES)
    }
}

// === impl Spool: bound ===

impl Spool {
    /// Bytes the spool occupies: its files and its in-memory records.
    pub fn used_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.bytes).sum::<u64>() + self.memory_bytes
    }

    /// Frees room for a record of `need` bytes (see the module docs).
    fn make_room(&mut self, need: u64) {
        let memory_only = self.is_memory_only();
        let (limit, used, live) = if memory_only {
            (self.memory_limit(), self.memory_bytes, self.memory_bytes)
        } else {
            (self.opts.max_bytes, self.used_bytes(), self.live_bytes)
        };
        if used + need <= limit {
            return;
        }
        let slack = self.opts.segment_bytes.min(limit / 4);
        let target = limit.saturating_sub(slack);
        let mut live = live;
        let (mut heartbeats, mut changes) = (0u64, 0u64);
        // Heartbeats first, oldest first; victims are removed in order, so
        // the search goes on from where the last one was.
        let mut from = 0;
        while live + need > target {
            let candidate = |e: &Entry| !memory_only || matches!(e.loc, Loc::Memory(_));
            let victim = self
                .entries
                .range(from..)
                .position(|e| e.kind == Kind::Heartbeat && candidate(e))
                .map(|i| i + from)
                .or_else(|| self.entries.iter().position(candidate));
            let Some(victim) = victim else { break };
            from = victim;
            let Some(entry) = self.entries.remove(victim) else {
                break;
            };
            live -= u64::from(entry.len);
            match entry.kind {
                Kind::Heartbeat => heartbeats += 1,
                Kind::StateChange => changes += 1,
            }
            self.forget(entry);
        }
        self.losses.dropped_heartbeats += heartbeats;
        self.losses.dropped_state_changes += changes;
        if heartbeats + changes > 0 {
            warn!(
                heartbeats,
                state_changes = changes,
                dropped_total = self.losses.dropped_heartbeats + self.losses.dropped_state_changes,
                max_bytes = limit,
                memory_only,
                "spool full, dropped the oldest reports"
            );
        }
        if !memory_only && let Err(error) = self.compact() {
            self.degrade(&error, "compact");
        }
    }

    /// Rewrites every segment that holds dead records with only its live
    /// ones.
    fn compact(&mut self) -> io::Result<()> {
        let ids: Vec<u64> = self
            .segments
            .iter()
            .filter(|(_, s)| s.live < s.records)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            if self.active.as_ref().is_some_and(|a| a.id == id) {
                self.seal()?;
            }
            if self.segments.contains_key(&id) {
                self.rewrite(id)?;
            }
        }
        Ok(())
    }

    fn rewrite(&mut self, id: u64) -> io::Result<()> {
        let tmp = self.path(id, "tmp");
        let mut out = create_file(&tmp)?;
        let result = self.copy_live(id, &mut out);
        let (bytes, moves) = match result {
            Ok(done) => done,
            Err(error) => {
                remove_quietly(&tmp);
                return Err(error);
            }
        };
        // The dead list goes first: see the module docs.
        if let Some(seg) = self.segments.get_mut(&id) {
            seg.dead = None;
        }
        remove_if_exists(&self.path(id, "ack"))?;
        sync_dir(&self.opts.dir)?;
        fs::rename(&tmp, self.path(id, "seg"))?;
        // From here the new file is the segment: the index follows it
        // whatever happens next.
        self.reader = None;
        let live = u32::try_from(moves.len()).unwrap_or(u32::MAX);
        for Moved {
            entry,
            offset,
            index,
        } in moves
        {
            if let Some(e) = self.entries.get_mut(entry) {
                e.loc = Loc::Disk {
                    segment: id,
                    offset,
                    index,
                };
            }
        }
        if live == 0 {
            self.delete_segment(id);
        } else if let Some(seg) = self.segments.get_mut(&id) {
            *seg = Segment {
                records: live,
                live,
                bytes,
                dead: None,
            };
        }
        sync_dir(&self.opts.dir)
    }

    /// Copies segment `id`'s live records to `out` (fsynced); returns the
    /// new length and where each entry moved.
    fn copy_live(&mut self, id: u64, out: &mut File) -> io::Result<(u64, Vec<Moved>)> {
        let mut buf = Vec::with_capacity(usize::try_from(self.opts.segment_bytes).unwrap_or(0));
        buf.extend_from_slice(segment::MAGIC);
        let mut moves = Vec::new();
        for i in 0..self.entries.len() {
            let Some(e) = self.entries.get(i) else { break };
            let Loc::Disk {
                segment, offset, ..
            } = e.loc
            else {
                continue;
            };
            if segment != id {
                continue;
            }
            let record = self.read_record(id, offset, e.len)?;
            moves.push(Moved {
                entry: i,
                offset: buf.len() as u64,
                index: u32::try_from(moves.len()).unwrap_or(u32::MAX),
            });
            buf.extend_from_slice(&record);
        }
        out.write_all(&buf)?;
        out.sync_data()?;
        Ok((buf.len() as u64, moves))
    }
}

// === impl Spool: send, ack, forget ===

impl Spool {
    /// The first report after position `pos`, read back. A record that
    /// cannot be read is counted, logged and skipped.
    pub fn next_after(&mut self, pos: u64) -> Option<Pending> {
        loop {
            let i = self.entries.partition_point(|e| e.pos <= pos);
            let e = self.entries.get(i)?;
            let (kind, seq, boot, epos) = (e.kind, e.seq, e.boot, e.pos);
            let boot_id = self.boots.get(boot as usize).cloned()?;
            let record = match &e.loc {
                Loc::Memory(record) => Ok(record.to_vec()),
                &Loc::Disk {
                    segment, offset, ..
                } => {
                    let len = e.len;
                    self.read_record(segment, offset, len)
                }
            };
            let checked = record.and_then(|r| match segment::decode(&r) {
                Ok((rec, _)) if rec.seq == seq && *rec.boot_id == *boot_id => Ok(rec.body.to_vec()),
                Ok(_) => Err(io::Error::other("record of another report")),
                Err(damage) => Err(io::Error::other(damage.as_str())),
            });
            match checked {
                Ok(body) => {
                    return Some(Pending {
                        pos: epos,
                        boot_id,
                        seq,
                        kind,
                        body,
                    });
                }
                Err(error) => {
                    warn!(%error, %boot_id, seq, "spooled report unreadable, skipped");
                    self.losses.unreadable += 1;
                    if let Some(e) = self.entries.remove(i) {
                        self.forget(e);
                    }
                }
            }
        }
    }

    /// Whether some report lies after position `pos`.
    pub fn has_after(&self, pos: u64) -> bool {
        self.entries.back().is_some_and(|e| e.pos > pos)
    }

    /// Forgets report `(boot_id, seq)`; false if it is not spooled.
    pub fn ack(&mut self, boot_id: &str, seq: u64) -> bool {
        let Some(boot) = self.boots.iter().rposition(|b| **b == *boot_id) else {
            return false;
        };
        let key = (u32::try_from(boot).unwrap_or(u32::MAX), seq);
        // Sorted by (boot, seq) as spooled; the scan is a safety net for a
        // spool written in another order (and costs only on repeat acks).
        let found = self
            .entries
            .binary_search_by_key(&key, |e| (e.boot, e.seq))
            .ok()
            .or_else(|| self.entries.iter().position(|e| (e.boot, e.seq) == key));
        let Some(i) = found else {
            return false;
        };
        match self.entries.remove(i) {
            Some(e) => {
                self.forget(e);
                true
            }
            None => false,
        }
    }

    /// Forgets a report whose contents turned out unusable; counted as
    /// unreadable.
    pub fn discard_unreadable(&mut self, boot_id: &str, seq: u64) {
        if self.ack(boot_id, seq) {
            self.losses.unreadable += 1;
        }
    }

    /// Accounts for a removed entry; on disk: dead-lists it and deletes its
    /// segment once nothing in a closed segment is live.
    fn forget(&mut self, entry: Entry) {
        self.live_bytes -= u64::from(entry.len);
        let Loc::Disk { segment, index, .. } = entry.loc else {
            self.memory_bytes -= u64::from(entry.len);
            return;
        };
        let active = self.active.as_ref().is_some_and(|a| a.id == segment);
        let dir = self.opts.dir.clone();
        let Some(seg) = self.segments.get_mut(&segment) else {
            return;
        };
        seg.live = seg.live.saturating_sub(1);
        if seg.live == 0 && !active {
            self.delete_segment(segment);
            return;
        }
        let dead = match &mut seg.dead {
            Some(f) => Ok(f),
            None => OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(segment::file_name(segment, "ack")))
                .map(|f| seg.dead.insert(f)),
        };
        // Not fsynced, errors ignored: a lost mark is one more resend.
        if let Err(error) = dead.and_then(|f| f.write_all(&index.to_le_bytes())) {
            debug!(%error, segment, index, "cannot mark a spool record dead");
        }
    }

    fn delete_segment(&mut self, id: u64) {
        self.segments.remove(&id);
        if self.reader.as_ref().is_some_and(|(r, _)| *r == id) {
            self.reader = None;
        }
        remove_quietly(&self.path(id, "ack"));
        remove_quietly(&self.path(id, "seg"));
    }

    fn read_record(&mut self, id: u64, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        if self.reader.as_ref().is_none_or(|(r, _)| *r != id) {
            self.reader = Some((id, File::open(self.path(id, "seg"))?));
        }
        let Some((_, file)) = &self.reader else {
            return Err(io::Error::other("no reader"));
        };
        let mut buf = vec![0; len as usize];
        file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
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

fn create_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// A new file only the agent's user can read (reports describe the host).
fn create_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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
