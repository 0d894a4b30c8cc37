//! Following a growing file like `tail -F`: the first poll starts at the
//! end (old lines are not news), later polls return the complete lines
//! appended since. Rotation-safe: when the path names a different file
//! (rename + create), the rest of the old file is read and the new one is
//! followed from its start; a file that shrank (copytruncate) is read again
//! from its start. Each poll reads at most a byte budget, and lines are
//! cut at [`MAX_LINE_BYTES`], so a runaway writer costs bounded work and
//! memory.
//!
//! The position lives in memory only: after an agent restart the file is
//! followed from its end again (lines written while the agent was down are
//! not examined).

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Longest line examined; the rest of a longer line is dropped.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Read size.
const CHUNK: usize = 16 * 1024;

/// Identifies a file independently of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    #[cfg(unix)]
    fn of(meta: &Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self(meta.dev(), meta.ino())
    }

    /// No stable file index in std off Unix: the creation time tells a
    /// rotated file from its successor.
    #[cfg(not(unix))]
    fn of(meta: &Metadata) -> Self {
        let created = meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .unwrap_or_default();
        Self(created.as_secs(), u64::from(created.subsec_nanos()))
    }
}

struct Open {
    file: File,
    id: FileId,
    offset: u64,
}

/// What a poll found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Polled {
    /// The path does not exist (rotated away, not yet re-created, or never
    /// there).
    pub missing: bool,
    /// The file has been open at some point.
    pub seen: bool,
    /// The budget ran out before the end: poll again soon.
    pub more: bool,
}

/// One followed file.
pub struct Follower {
    path: PathBuf,
    open: Option<Open>,
    started: bool,
    seen: bool,
    /// The current, not yet terminated line (at most `MAX_LINE_BYTES`).
    pending: Vec<u8>,
}

impl Follower {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            open: None,
            started: false,
            seen: false,
            pending: Vec::new(),
        }
    }

    /// Hands every complete line appended since the last poll to `line`,
    /// reading at most `budget` bytes. Errors other than a missing file
    /// (permissions, I/O) are returned; the position is kept.
    pub fn poll(&mut self, budget: usize, line: &mut dyn FnMut(&str)) -> io::Result<Polled> {
        let first = !self.started;
        self.started = true;
        let mut budget = budget;
        let current = match std::fs::metadata(&self.path) {
            Ok(meta) => Some(FileId::of(&meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        // A file that was rotated away (or deleted): finish it first.
        if let Some(mut old) = self.open.take_if(|o| Some(o.id) != current) {
            if self.drain(&mut old, &mut budget, line)? {
                self.open = Some(old);
                return Ok(self.polled(false, true));
            }
            self.flush(line);
        }
        if current.is_none() {
            return Ok(self.polled(true, false));
        }
        let mut open = match self.open.take() {
            Some(open) => open,
            None => match self.open_path(first) {
                Ok(open) => open,
                // Gone between the stat and the open.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Ok(self.polled(true, false));
                }
                Err(e) => return Err(e),
            },
        };
        if open.file.metadata()?.len() < open.offset {
            // Truncated in place (copytruncate): its content is new.
            self.flush(line);
            open.offset = 0;
        }
        let result = self.drain(&mut open, &mut budget, line);
        self.open = Some(open);
        Ok(self.polled(false, result?))
    }

    fn polled(&self, missing: bool, more: bool) -> Polled {
        Polled {
            missing,
            seen: self.seen,
            more,
        }
    }

    /// Opens the path: at its end on the very first poll, else at its
    /// start (a file that appeared or replaced a rotated one is all new).
    fn open_path(&mut self, first: bool) -> io::Result<Open> {
        let file = File::open(&self.path)?;
        let meta = file.metadata()?;
        self.seen = true;
        Ok(Open {
            id: FileId::of(&meta),
            offset: if first { meta.len() } else { 0 },
            file,
        })
    }

    /// Reads from the offset to the end or until the budget is spent;
    /// true if the budget ran out first.
    fn drain(
        &mut self,
        open: &mut Open,
        budget: &mut usize,
        line: &mut dyn FnMut(&str),
    ) -> io::Result<bool> {
        open.file.seek(SeekFrom::Start(open.offset))?;
        let mut buf = vec![0u8; CHUNK.min(*budget)];
        loop {
            if *budget == 0 {
                return Ok(open.file.metadata()?.len() > open.offset);
            }
            let want = CHUNK.min(*budget);
            let n = open.file.read(&mut buf[..want])?;
            if n == 0 {
                return Ok(false);
            }
            open.offset += n as u64;
            *budget -= n;
            self.split(&buf[..n], line);
        }
    }

    fn split(&mut self, mut chunk: &[u8], line: &mut dyn FnMut(&str)) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.keep(&chunk[..end]);
            self.emit(line);
            chunk = &chunk[end + 1..];
        }
        self.keep(chunk);
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_LINE_BYTES.saturating_sub(self.pending.len());
        self.pending
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn emit(&mut self, line: &mut dyn FnMut(&str)) {
        let text = String::from_utf8_lossy(&self.pending);
        line(text.strip_suffix('\r').unwrap_or(&text));
        self.pending.clear();
    }

    /// A last line without a newline, at the end of a file we leave.
    fn flush(&mut self, line: &mut dyn FnMut(&str)) {
        if !self.pending.is_empty() {
            self.emit(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;

    use super::*;

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open for append")
            .write_all(text.as_bytes())
            .expect("append");
    }

    fn poll(f: &mut Follower, budget: usize) -> (Vec<String>, Polled) {
        let mut lines = Vec::new();
        let polled = f
            .poll(budget, &mut |l| lines.push(l.to_owned()))
            .expect("poll");
        (lines, polled)
    }

    #[test]
    fn starts_at_the_end_then_reads_appended_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        append(&path, "old line 1\nold line 2\n");
        let mut f = Follower::new(path.clone());
        assert_eq!(poll(&mut f, 1 << 20).0, Vec::<String>::new());
        append(&path, "new 1\r\nnew 2\npartial");
        assert_eq!(poll(&mut f, 1 << 20).0, ["new 1", "new 2"]);
        append(&path, " line\n");
        assert_eq!(poll(&mut f, 1 << 20).0, ["partial line"]);
        assert_eq!(poll(&mut f, 1 << 20).0, Vec::<String>::new());
    }

    #[test]
    fn follows_a_rename_rotation_without_losing_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        append(&path, "before start\n");
        let mut f = Follower::new(path.clone());
        poll(&mut f, 1 << 20);
        append(&path, "last words of the old file\n");
        std::fs::rename(&path, dir.path().join("app.log.1")).expect("rotate");
        // Between the rename and the new file.
        let (lines, polled) = poll(&mut f, 1 << 20);
        assert_eq!(lines, ["last words of the old file"]);
        assert!(polled.missing && polled.seen, "{polled:?}");
        append(&path, "first of the new file\n");
        assert_eq!(poll(&mut f, 1 << 20).0, ["first of the new file"]);
        // Rotation seen only once the new file already exists.
        append(&path, "tail of file 2\n");
        std::fs::rename(&path, dir.path().join("app.log.2")).expect("rotate");
        append(&path, "head of file 3\n");
        assert_eq!(
            poll(&mut f, 1 << 20).0,
            ["tail of file 2", "head of file 3"]
        );
    }

    #[test]
    fn rereads_a_truncated_file_from_its_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        append(&path, "a fairly long first line that was there before\n");
        let mut f = Follower::new(path.clone());
        poll(&mut f, 1 << 20);
        std::fs::write(&path, "short\n").expect("truncate + write");
        assert_eq!(poll(&mut f, 1 << 20).0, ["short"]);
    }

    #[test]
    fn a_file_that_appears_later_is_read_from_its_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        let mut f = Follower::new(path.clone());
        let (lines, polled) = poll(&mut f, 1 << 20);
        assert!(lines.is_empty() && polled.missing && !polled.seen);
        append(&path, "hello\n");
        let (lines, polled) = poll(&mut f, 1 << 20);
        assert_eq!(lines, ["hello"]);
        assert!(!polled.missing && polled.seen);
    }

    #[test]
    fn the_budget_bounds_each_poll_and_long_lines_are_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        append(&path, "");
        let mut f = Follower::new(path.clone());
        poll(&mut f, 1 << 20);
        append(&path, "0123456789\nabcdefghij\n");
        let (lines, polled) = poll(&mut f, 15);
        assert_eq!(lines, ["0123456789"]);
        assert!(polled.more);
        let (lines, polled) = poll(&mut f, 15);
        assert_eq!(lines, ["abcdefghij"]);
        assert!(!polled.more);
        append(
            &path,
            &format!("{}\nnext\n", "x".repeat(3 * MAX_LINE_BYTES)),
        );
        let (lines, _) = poll(&mut f, 1 << 20);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES);
        assert_eq!(lines[1], "next");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        append(&path, "");
        let mut f = Follower::new(path.clone());
        poll(&mut f, 1 << 20);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open")
            .write_all(b"bad \xff byte\n")
            .expect("write");
        assert_eq!(poll(&mut f, 1 << 20).0, ["bad \u{fffd} byte"]);
    }
}
