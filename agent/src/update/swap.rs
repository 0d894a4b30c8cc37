//! Putting a verified binary in place and handing over to it.
//!
//! The new binary is downloaded to `<exe>.new` (same directory, so the same
//! file system) and tried there. Only then is it installed: on Unix the
//! current binary is hard-linked to `<exe>.prev` (copied where links are
//! impossible) and `<exe>.new` renamed over `<exe>` — one atomic rename, so
//! a crash at any point leaves either the old or the new binary at `<exe>`,
//! never none. On Windows a running executable cannot be replaced, only
//! renamed: `<exe>` is renamed to `<exe>.prev`, then `<exe>.new` to `<exe>`
//! (renamed back if the second step fails); between the two renames there
//! is no `<exe>`. That path was compiled, not run.
//!
//! Hand-over: on Unix the process execs the new binary with the same
//! arguments, so the service manager keeps the PID; on Windows the process
//! exits with an error and the SCM's restart-on-failure recovery action
//! starts the new binary (not run here).

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The executable and its neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub exe: PathBuf,
    pub new: PathBuf,
    pub prev: PathBuf,
}

impl Paths {
    pub fn for_exe(exe: &Path) -> Self {
        let with = |suffix: &str| {
            let mut s: OsString = exe.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        Self {
            exe: exe.to_owned(),
            new: with(".new"),
            prev: with(".prev"),
        }
    }

    /// Installs `new` as `exe`, keeping the current binary as `prev`.
    pub fn install(&self) -> io::Result<()> {
        let _ = fs::remove_file(&self.prev);
        #[cfg(unix)]
        {
            if fs::hard_link(&self.exe, &self.prev).is_err() {
                fs::copy(&self.exe, &self.prev)?;
            }
            fs::rename(&self.new, &self.exe)?;
        }
        #[cfg(not(unix))]
        {
            fs::rename(&self.exe, &self.prev)?;
            if let Err(e) = fs::rename(&self.new, &self.exe) {
                let _ = fs::rename(&self.prev, &self.exe);
                return Err(e);
            }
        }
        sync_dir(&self.exe);
        Ok(())
    }

    /// Puts `prev` back as `exe` (the new binary is kept as `new` for a
    /// look).
    pub fn restore(&self) -> io::Result<()> {
        #[cfg(unix)]
        {
            let _ = fs::remove_file(&self.new);
            if fs::hard_link(&self.exe, &self.new).is_err() {
                let _ = fs::copy(&self.exe, &self.new);
            }
            fs::rename(&self.prev, &self.exe)?;
        }
        #[cfg(not(unix))]
        {
            let _ = fs::remove_file(&self.new);
            fs::rename(&self.exe, &self.new)?;
            fs::rename(&self.prev, &self.exe)?;
        }
        sync_dir(&self.exe);
        Ok(())
    }
}

/// Makes the renames durable (Unix: fsync the directory).
fn sync_dir(file: &Path) {
    #[cfg(unix)]
    if let Some(dir) = file.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// Replaces this process with `exe`, same arguments, the trial variable
/// removed. Returns only if that failed (or, on Windows, always: the
/// caller exits and the SCM restarts the service).
pub fn exec(exe: &Path) -> io::Error {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env_remove(super::trial::TRIAL_ENV)
            .exec()
    }
    #[cfg(not(unix))]
    {
        io::Error::other(format!(
            "restarting into {}: the service manager starts the new binary",
            exe.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_keeps_the_previous_and_restore_puts_it_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = Paths::for_exe(&dir.path().join("forewarn-agent"));
        assert_eq!(paths.new, dir.path().join("forewarn-agent.new"));
        fs::write(&paths.exe, b"old").expect("write");
        fs::write(&paths.new, b"new").expect("write");
        fs::write(&paths.prev, b"older").expect("write");
        paths.install().expect("install");
        assert_eq!(fs::read(&paths.exe).expect("exe"), b"new");
        assert_eq!(fs::read(&paths.prev).expect("prev"), b"old");
        assert!(!paths.new.exists());
        paths.restore().expect("restore");
        assert_eq!(fs::read(&paths.exe).expect("exe"), b"old");
        assert_eq!(fs::read(&paths.new).expect("new kept"), b"new");
        assert!(!paths.prev.exists());
    }
}
