//! Helpers for the tests that install Forewarn's packages into this
//! machine's real root (tests/tests/packages.rs): building them with
//! `tests/packages.sh`, running `dpkg` (waiting out a lock held by another
//! dpkg or apt), reading owners, modes and users, and a guard that leaves
//! the machine as it found it.
//!
//! Such tests run one at a time (the `packages` test group in
//! .config/nextest.toml) and need root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The two packages, as dpkg names them.
pub const PACKAGES: [&str; 2] = ["forewarn-agent", "forewarn-collector"];

/// Package versions made only by these tests: they sort below any release
/// (`~`), and an installed one is known to be a leftover of a killed run.
pub const TEST_VERSION_MARK: &str = "pkgtest";

/// The repository's root (the tests crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// Runs `tests/packages.sh build OUT VERSION` for `formats` ("deb", "rpm")
/// on the built debug binaries; returns the files it made.
pub fn build(out: &Path, version: &str, formats: &str) -> Vec<PathBuf> {
    let target_dir = super::bin_dir().parent().expect("target dir").to_path_buf();
    let script = repo_root().join("tests/packages.sh");
    let o = Command::new(&script)
        .arg("build")
        .arg(out)
        .arg(version)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("FOREWARN_PACKAGE_FORMATS", formats)
        .stdin(Stdio::null())
        .output()
        .expect("run tests/packages.sh");
    assert!(
        o.status.success(),
        "tests/packages.sh build failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// Runs a command to completion; stdin is closed, so nothing can prompt.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

/// Like [`run`], and panics with the output unless it succeeded.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let o = run(program, args);
    assert!(
        o.status.success(),
        "{program} {args:?} failed ({}):\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `dpkg ARGS`, polled again while another dpkg or apt holds the lock (for
/// at most two minutes); panics with the output unless it succeeded.
pub fn dpkg(args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let o = run("dpkg", args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let locked = stderr.contains("lock");
        if o.status.success() || !locked || Instant::now() > deadline {
            assert!(
                o.status.success(),
                "dpkg {args:?} failed ({}):\n{}{stderr}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
            );
            return String::from_utf8_lossy(&o.stdout).into_owned();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `dpkg-query -W -f=FORMAT PACKAGE`, or `None` when dpkg knows no such package.
pub fn query(package: &str, format: &str) -> Option<String> {
    let o = run("dpkg-query", &["-W", &format!("-f={format}"), package]);
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// dpkg's status of `package` ("install ok installed", "deinstall ok
/// config-files", ...), or `None` when it is unknown or fully purged.
pub fn status(package: &str) -> Option<String> {
    query(package, "${Status}").filter(|s| !s.contains("not-installed"))
}

/// Owner name, group name and permission bits of `path`.
pub fn owner_mode(path: &str) -> (String, String, u32) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {path}: {e}"));
    let name = |db: &str, id: u32| -> String {
        let line = run_ok("getent", &[db, &id.to_string()]);
        line.split(':').next().expect("getent name").to_string()
    };
    (
        name("passwd", meta.uid()),
        name("group", meta.gid()),
        meta.permissions().mode() & 0o7777,
    )
}

/// A system user's `getent passwd` fields, or `None` when there is none.
pub fn passwd(user: &str) -> Option<Vec<String>> {
    let o = run("getent", &["passwd", user]);
    o.status.success().then(|| {
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .split(':')
            .map(str::to_string)
            .collect()
    })
}

/// Leaves the machine without the packages, their state and config, and
/// without the service users this run created: on drop, whether the test
/// passed or panicked.
pub struct RootGuard {
    users_before: Vec<&'static str>,
}

impl RootGuard {
    /// Refuses (panics) on a machine where Forewarn is installed for real;
    /// removes what a killed earlier run of these tests left behind.
    pub fn take() -> Self {
        assert!(
            run_ok("id", &["-u"]).trim() == "0",
            "the package tests install into / and need root"
        );
        for package in PACKAGES {
            if let Some(version) = query(package, "${Version}")
                && status(package).is_some()
            {
                assert!(
                    version.contains(TEST_VERSION_MARK),
                    "{package} {version} is installed on this machine: the package tests \
                     install into / and would replace it; run them elsewhere"
                );
            }
        }
        clean();
        // Users a previous run (or a purge) left: ours by their comment.
        for (user, comment) in [
            ("forewarn-agent", "Forewarn agent"),
            ("forewarn-collector", "Forewarn collector"),
        ] {
            if passwd(user).is_some_and(|f| f[4] == comment) {
                run_ok("userdel", &[user]);
            }
        }
        let users_before = PACKAGES
            .into_iter()
            .filter(|u| passwd(u).is_some())
            .collect();
        Self { users_before }
    }
}

/// Purges both packages when dpkg knows them, and deletes their state.
fn clean() {
    for package in PACKAGES {
        if query(package, "${Status}").is_some() {
            let _ = run("dpkg", &["--purge", package]);
        }
        let _ = std::fs::remove_dir_all(format!("/var/lib/{package}"));
    }
}

impl Drop for RootGuard {
    fn drop(&mut self) {
        clean();
        for user in PACKAGES {
            if !self.users_before.contains(&user) && passwd(user).is_some() {
                let _ = run("userdel", &[user]);
            }
        }
    }
}
