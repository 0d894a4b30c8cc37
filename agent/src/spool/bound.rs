//! The byte bound: dropping the oldest heartbeats first, then rewriting
//! segments without their dead records.

use std::fs::{self, File};
use std::io::{self, Write};

use tracing::warn;

use super::{
    Entry, Kind, Loc, Segment, Spool, create_file, remove_if_exists, remove_quietly, segment,
    sync_dir,
};

/// Where a rewrite put an entry's record.
#[derive(Debug)]
struct Moved {
    /// Index into `Spool::entries`.
    entry: usize,
    offset: u64,
    index: u32,
}

// === impl Spool: bound ===

impl Spool {
    /// Bytes the spool occupies: its files and its in-memory records.
    pub fn used_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.bytes).sum::<u64>() + self.memory_bytes
    }

    /// Frees room for a record of `need` bytes (see the module docs).
    pub(super) fn make_room(&mut self, need: u64) {
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
