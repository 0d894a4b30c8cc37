//! Appending: segments opened, written, fsynced and closed; the fall back
//! to memory when the disk fails, and the way back.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::{
    Active, Disk, Entry, HEARTBEAT_SYNC, Kind, Loc, MEMORY_MAX_BYTES, Segment, Spool, create_file,
    create_private_dir, remove_quietly, segment, sync_dir,
};

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
            Disk::Usable => match self.write(&record) {
                Ok(loc) => {
                    match self.flush(kind == Kind::StateChange) {
                        Ok(()) => self.disk_worked(0),
                        // Written and readable, durability unknown: from
                        // here on the disk is not trusted with new reports.
                        Err(error) => self.degrade(&error, "fsync"),
                    }
                    loc
                }
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

    /// Writes one record to the open segment (opening one if needed); not
    /// fsynced (see [`Spool::flush`]).
    pub(super) fn write(&mut self, record: &[u8]) -> io::Result<Loc> {
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
            let (id, empty) = (active.id, seg.live == 0);
            self.active = None;
            if empty {
                self.delete_segment(id);
            }
            return Err(error);
        }
        seg.bytes += len;
        seg.records += 1;
        seg.live += 1;
        active.unsynced_since.get_or_insert_with(Instant::now);
        Ok(Loc::Disk {
            segment: active.id,
            offset,
            index: seg.records - 1,
        })
    }

    /// Fsyncs the open segment if `force`, or if its oldest unsynced record
    /// was written [`HEARTBEAT_SYNC`] ago or more.
    pub(super) fn flush(&mut self, force: bool) -> io::Result<()> {
        let Some(active) = &mut self.active else {
            return Ok(());
        };
        let Some(since) = active.unsynced_since else {
            return Ok(());
        };
        if force || since.elapsed() >= HEARTBEAT_SYNC {
            active.file.sync_data()?;
            active.unsynced_since = None;
        }
        Ok(())
    }

    pub(super) fn start_segment(&mut self) -> io::Result<()> {
        create_private_dir(&self.opts.dir)?;
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
    pub(super) fn seal(&mut self) -> io::Result<()> {
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
        if let Err(error) = self.flush(true) {
            warn!(%error, "cannot fsync the spool");
        }
    }

    pub(super) fn push_entry(&mut self, mut entry: Entry) -> u64 {
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

    pub(super) fn boot_index(&mut self, boot_id: &str) -> u32 {
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
    pub(super) fn degrade(&mut self, error: &io::Error, during: &'static str) {
        self.active = None;
        let retry_at = Instant::now() + self.opts.disk_retry;
        if !self.warned {
            self.warned = true;
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

    /// Tries the disk again: moves in-memory reports to a new segment (or,
    /// with none in memory, lets the next append find out).
    pub(super) fn restore_disk(&mut self) {
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
            match self.write(&record) {
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
        if let Err(error) = self.flush(true) {
            return self.degrade(&error, "retry");
        }
        if moved > 0 {
            self.disk_worked(moved);
        }
    }

    /// A write to the disk (and its fsync, if asked for) worked.
    fn disk_worked(&mut self, moved: usize) {
        if self.warned {
            self.warned = false;
            info!(
                dir = %self.opts.dir.display(),
                moved,
                "spool disk usable again: reports held in memory moved to disk"
            );
        }
    }

    /// Whether reports currently go to memory instead of disk.
    pub fn is_memory_only(&self) -> bool {
        matches!(self.disk, Disk::Failed { .. })
    }

    pub(super) fn memory_limit(&self) -> u64 {
        self.opts.max_bytes.min(MEMORY_MAX_BYTES)
    }
}
