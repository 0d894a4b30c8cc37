//! Private files: created with mode 0600 (dirs 0700), written atomically.

use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// Creates `dir` (and parents) with mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| Error::io(dir, e))
}

/// Writes a new file with mode 0600; fails if it exists.
pub(crate) fn write_new_private(path: &Path, data: &[u8]) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(|e| Error::io(path, e))?;
    f.write_all(data).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// Replaces `path` atomically (temp file + rename), mode 0600.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    write_new_private(&tmp, data)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Reads a file another process may be creating right now (the CA race on
/// first start): retries briefly while it is missing or empty.
pub(crate) fn read_retry(path: &Path) -> Result<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match std::fs::read_to_string(path) {
            Ok(s) if !s.trim().is_empty() => return Ok(s),
            Ok(_) | Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(_) => return Err(Error::Pki(format!("{} is empty", path.display()))),
            Err(e) => return Err(Error::io(path, e)),
        }
    }
}
