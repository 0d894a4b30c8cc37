//! The one-liner's test bench: a fresh root to install into, and a release
//! signing key to sign artifacts into a collector's releases dir.
//!
//! The fresh root is this machine's `/` seen through an overlay whose
//! writable upper layer is a tmpfs of the test's own, entered with
//! `unshare --mount` + `chroot`: every command runs as root in a root file
//! system that has never had Forewarn in it, and everything it writes
//! lands in the upper layer, where the test looks for it. Mounts made
//! inside live in a private mount namespace and end with the command; the
//! tmpfs is unmounted on drop. Needs root. (A container or debootstrap
//! would do the same more slowly; loopback to the collector is shared.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::Proc;

/// What a fresh-root command runs: mount the overlay and the kernel file
/// systems in the private namespace, then `chroot` and run `$4` with
/// `/bin/sh -c`.
const ENTER: &str = r#"set -e
m=$1 u=$2 w=$3
mount -t overlay overlay -o "lowerdir=/,upperdir=$u,workdir=$w" "$m"
mount --bind /dev "$m/dev"
mount -t proc proc "$m/proc"
mount --bind /sys "$m/sys"
exec chroot "$m" /bin/sh -c "$4""#;

/// A root file system to install into (see the module doc).
pub struct FreshRoot {
    dir: tempfile::TempDir,
}

impl FreshRoot {
    /// Mounts the tmpfs; panics if this machine already has an agent
    /// installed (the root would not be fresh).
    pub fn new() -> Self {
        for p in [
            "/usr/bin/forewarn-agent",
            "/usr/local/bin/forewarn-agent",
            "/var/lib/forewarn-agent",
            "/etc/forewarn/agent.toml",
        ] {
            assert!(
                !Path::new(p).exists(),
                "{p} exists on this machine: the overlay of / would not be a fresh root"
            );
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2g", "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(ok.success(), "mount tmpfs (needs root)");
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir(dir.path().join(d)).expect("mkdir");
        }
        Self { dir }
    }

    fn command(&self, script: &str) -> Command {
        let p = |d: &str| self.dir.path().join(d);
        let mut c = Command::new("unshare");
        c.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            ENTER,
            "fresh-root",
        ])
        .arg(p("merged"))
        .arg(p("upper"))
        .arg(p("work"))
        .arg(script)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8");
        c
    }

    /// Runs `script` with `/bin/sh -c` in the root, as root, to the end.
    pub fn sh(&self, script: &str) -> Output {
        self.command(script)
            .output()
            .expect("run in the fresh root")
    }

    /// Starts `script` in the root, its output in `log`; the process is
    /// the script itself (`exec` to keep it so), stopped on drop.
    pub fn spawn(&self, script: &str, log: PathBuf) -> Proc {
        let child = self
            .command(script)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn in the fresh root");
        Proc { child, log }
    }

    /// Whether the root has `path` (absolute) written into it.
    pub fn wrote(&self, path: &str) -> bool {
        self.upper(path).exists()
    }

    /// `path` (absolute) in the root's writable layer.
    pub fn upper(&self, path: &str) -> PathBuf {
        self.dir
            .path()
            .join("upper")
            .join(path.trim_start_matches('/'))
    }
}

impl Drop for FreshRoot {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A release signing key (`forewarn-collector release keygen`), and
/// signing into a releases dir (`release sign`).
pub struct ReleaseKey {
    keys: super::update::Keys,
}

impl ReleaseKey {
    pub fn new() -> Self {
        Self {
            keys: super::update::keygen(),
        }
    }

    /// The public key's base64 line (`RW…`).
    pub fn public(&self) -> String {
        self.keys.public.clone()
    }

    /// Copies `artifact` into `dir` as `name` and signs it as `version`
    /// (`name.minisig`, trusted comment `file:<name> version:<version>`).
    pub fn publish(&self, dir: &Path, artifact: &Path, name: &str, version: &str) {
        std::fs::create_dir_all(dir).expect("releases dir");
        let to = dir.join(name);
        std::fs::copy(artifact, &to).expect("copy artifact");
        super::update::sign(&self.keys, version, &to);
    }
}

/// The agent's `.deb` of `version`, made by `tests/packages.sh build`
/// from the built binaries (into `out`); returns its path.
pub fn agent_deb(out: &Path, version: &str) -> PathBuf {
    super::packages::build(out, version, "deb")
        .into_iter()
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("forewarn-agent_") && n.ends_with(".deb"))
        })
        .expect("an agent .deb among the packages")
}
