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

/// Creates `dir` and its parents, then gives `dir` an ACL that only SYSTEM
/// and Administrators can read, inherited by everything created inside
/// ([`crate::platform::acl`]). Applied once per directory per process: the
/// spool reopens its directory often, and an ACL does not wear off.
#[cfg(windows)]
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::collections::HashSet;
    use std::sync::{Mutex, PoisonError};
    static RESTRICTED: Mutex<Option<HashSet<std::path::PathBuf>>> = Mutex::new(None);
    DirBuilder::new().recursive(true).create(dir)?;
    let mut done = RESTRICTED.lock().unwrap_or_else(PoisonError::into_inner);
    let done = done.get_or_insert_with(HashSet::new);
    if !done.contains(dir) {
        crate::platform::acl::restrict_dir(dir)?;
        done.insert(dir.to_owned());
    }
    Ok(())
}

#[cfg(not(any(unix, windows)))]
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

/// Windows has no mode bits: the file inherits the ACL of its directory,
/// which [`create_private_dir`] made private.
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
