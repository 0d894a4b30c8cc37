//! Private files and directories, per platform: what the identity and the
//! spool write is the agent's alone (keys, reports that describe the host).
//!
//! All functions block.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `dir` and its parents, 0700.
#[cfg(unix)]
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

// TODO(windows): ACL limiting the directory to the agent's account (and
// SYSTEM); until then it inherits its parent's ACL.
#[cfg(not(unix))]
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).create(dir)
}

/// Creates `path`, which must not exist, with `mode`.
#[cfg(unix)]
pub(crate) fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

// TODO(windows): ACL so the file is readable by the agent's account only;
// until then every file inherits its directory's ACL.
#[cfg(not(unix))]
pub(crate) fn create_new(path: &Path, _mode: u32) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a `File` (access denied), so there is
/// nothing to fsync; the rename is as durable as the file system's metadata
/// journal makes it.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
