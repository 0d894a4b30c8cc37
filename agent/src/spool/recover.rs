//! Opening the spool: reading back what an earlier run left, cutting off
//! torn tails.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::{self, OpenOptions};
use std::io;

use tracing::{debug, info, warn};

use super::{
    Disk, Entry, Loc, Losses, Options, Segment, Spool, create_private_dir, remove_quietly, segment,
};

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
            warned: false,
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
        create_private_dir(&self.opts.dir)?;
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
