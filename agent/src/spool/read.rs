//! Handing reports out for sending, acknowledging them, and forgetting
//! records on disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};

use tracing::{debug, warn};

use super::{Entry, Loc, Pending, Spool, remove_quietly, segment};

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
    pub(super) fn forget(&mut self, entry: Entry) {
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

    pub(super) fn delete_segment(&mut self, id: u64) {
        self.segments.remove(&id);
        if self.reader.as_ref().is_some_and(|(r, _)| *r == id) {
            self.reader = None;
        }
        remove_quietly(&self.path(id, "ack"));
        remove_quietly(&self.path(id, "seg"));
    }

    pub(super) fn read_record(&mut self, id: u64, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        #[cfg(unix)]
        use std::os::unix::fs::FileExt;
        if self.reader.as_ref().is_none_or(|(r, _)| *r != id) {
            self.reader = Some((id, File::open(self.path(id, "seg"))?));
        }
        let Some((_, file)) = &self.reader else {
            return Err(io::Error::other("no reader"));
        };
        let mut buf = vec![0; len as usize];
        #[cfg(unix)]
        file.read_exact_at(&mut buf, offset)?;
        #[cfg(not(unix))]
        {
            // The reader handle is this spool's own: moving its cursor is safe.
            use std::io::{Read, Seek, SeekFrom};
            let mut file = file;
            file.seek(SeekFrom::Start(offset))?;
            file.read_exact(&mut buf)?;
        }
        Ok(buf)
    }
}
