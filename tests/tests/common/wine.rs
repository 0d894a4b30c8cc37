//! The Windows agent under Wine, for the tests that run it
//! (`windows_agent.rs`, `windows_msi.rs`): the artifacts `tests/windows.sh`
//! builds, a private copy of its Wine prefix per test (its wineserver
//! killed on drop), and Windows paths for files the test writes on Linux.
//!
//! Wine stands in for Windows here because no Windows machine exists in
//! the test environment; what Wine cannot show (the SCM's recovery actions,
//! ACL enforcement, the Event Log viewer) is listed in
//! docs/windows-install.md. `FOREWARN_SKIP_WINE=1` skips these tests with
//! a loud message; the test command never sets it, so a missing Wine fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Collector, Proc, bin_dir};

/// Wine's 64-bit loader (Debian's wine64; not on PATH).
pub const WINE64: &str = "/usr/lib/wine/wine64";
const WINESERVER: &str = "/usr/lib/wine/wineserver";

/// What `tests/windows.sh` built, in the workspace's target dir.
pub struct Artifacts {
    /// `forewarn-agent.exe`, cross-built for x86_64-pc-windows-gnu.
    pub agent_exe: PathBuf,
    /// The test plugin (tests/windows/flag_plugin.c).
    pub flag_plugin: PathBuf,
    /// The MSI built by deploy/windows/build-msi.sh.
    pub msi: PathBuf,
    /// The Wine prefix every test copies.
    pub template: PathBuf,
    /// `<target>/windows-test`.
    pub out: PathBuf,
}

/// Runs `tests/windows.sh` (installs and builds what is missing; a fast
/// no-op otherwise) and returns its artifacts; `None`, after a loud
/// message, only when `FOREWARN_SKIP_WINE=1`.
pub fn artifacts(test: &str) -> Option<Artifacts> {
    if std::env::var("FOREWARN_SKIP_WINE").as_deref() == Ok("1") {
        eprintln!(
            "\n!!! SKIPPED {test}: FOREWARN_SKIP_WINE=1 is set, so the Windows agent was NOT \
             run under Wine. Unset it to run this test.\n"
        );
        return None;
    }
    // target/debug → target: the same target dir as the Linux binaries.
    let target = bin_dir()
        .parent()
        .expect("target dir above debug/")
        .to_path_buf();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("windows.sh");
    let status = Command::new(&script)
        .env("CARGO_TARGET_DIR", &target)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .expect("run tests/windows.sh");
    assert!(
        status.success(),
        "tests/windows.sh failed ({status}): the Windows agent cannot run under Wine here"
    );
    let out = target.join("windows-test");
    let version = env!("CARGO_PKG_VERSION");
    let a = Artifacts {
        agent_exe: target.join("x86_64-pc-windows-gnu/debug/forewarn-agent.exe"),
        flag_plugin: out.join("flag-plugin.exe"),
        msi: out.join(format!("forewarn-agent-{version}-x64.msi")),
        template: out.join("prefix"),
        out,
    };
    for p in [&a.agent_exe, &a.flag_plugin, &a.msi, &a.template] {
        assert!(p.exists(), "tests/windows.sh did not make {}", p.display());
    }
    Some(a)
}

/// The Windows path of a Linux path, through Wine's `Z:` drive (`/`).
pub fn win_path(p: &Path) -> String {
    let abs = std::path::absolute(p).expect("absolute path");
    format!("Z:{}", abs.to_str().expect("utf-8 path").replace('/', "\\"))
}

/// A private Wine prefix: the template's files hard-linked (nothing copies
/// 700 MB), its registry files copied (Wine rewrites them). Every process
/// in it is killed, and the copy removed, on drop.
pub struct Prefix {
    dir: tempfile::TempDir,
}

impl Prefix {
    pub fn new(a: &Artifacts) -> Self {
        // Beside the template: hard links need the same filesystem.
        let dir = tempfile::Builder::new()
            .prefix("prefix-")
            .tempdir_in(&a.out)
            .expect("prefix dir");
        let out = Command::new("cp")
            .arg("-al")
            .arg(a.template.join("."))
            .arg(dir.path())
            .output()
            .expect("run cp -al");
        assert!(
            out.status.success(),
            "copying the Wine prefix: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for reg in ["system.reg", "user.reg", "userdef.reg"] {
            let p = dir.path().join(reg);
            if p.exists() {
                let text = std::fs::read(&p).expect("read registry file");
                std::fs::remove_file(&p).expect("unlink registry file");
                std::fs::write(&p, text).expect("write registry file");
            }
        }
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The Linux path of `C:\…` in this prefix (`rel` with `/`).
    pub fn drive_c(&self, rel: &str) -> PathBuf {
        self.dir.path().join("drive_c").join(rel)
    }

    /// `wine64 PROGRAM`, in this prefix, quiet, with no Mono/Gecko prompt.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(WINE64);
        c.arg(program);
        self.env(&mut c);
        c
    }

    fn env(&self, c: &mut Command) {
        c.env("WINEPREFIX", self.dir.path())
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY");
    }

    /// `wineserver -k`: ends every process of this prefix, then waits for
    /// the server to exit.
    pub fn kill(&self) {
        for arg in ["-k", "-w"] {
            let mut c = Command::new(WINESERVER);
            c.arg(arg);
            self.env(&mut c);
            let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Windows agent in a prefix: its config (a Linux file, read through
/// `Z:`) and its state dir on the prefix's `C:` drive.
pub struct WinAgent<'p> {
    pub prefix: &'p Prefix,
    pub exe: PathBuf,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl<'p> WinAgent<'p> {
    /// Writes `agent.toml`: `state_dir = C:\forewarn\state` and `extra`
    /// (TOML) after it.
    pub fn new(prefix: &'p Prefix, a: &Artifacts, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("agent.toml");
        std::fs::write(
            &config,
            format!("state_dir = 'C:\\forewarn\\state'\ninterval_secs = 15\n{extra}\n"),
        )
        .expect("write agent config");
        Self {
            prefix,
            exe: a.agent_exe.clone(),
            dir,
            config,
        }
    }

    /// `wine64 forewarn-agent.exe --config Z:\…\agent.toml ARGS…`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = self.prefix.command(&self.exe);
        c.arg("--config").arg(win_path(&self.config)).args(args);
        c.env("RUST_LOG", "info");
        c
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run forewarn-agent.exe")
    }

    /// Enrolls with a fresh token of `tenant`; returns the agent id.
    pub fn enroll(&self, collector: &Collector, tenant: &str) -> String {
        let (token, fp) = collector.token(tenant, &[]);
        let out = self.output(&[
            "enroll",
            "--collector",
            &collector.url(),
            "--token",
            &token,
            "--ca-fingerprint",
            &fp,
        ]);
        assert!(
            out.status.success(),
            "enroll under Wine failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let identity = self.prefix.drive_c("forewarn/state/identity.json");
        let text = std::fs::read_to_string(&identity)
            .unwrap_or_else(|e| panic!("{}: {e}", identity.display()));
        let v: serde_json::Value = serde_json::from_str(&text).expect("identity json");
        v["agent_id"].as_str().expect("agent_id").to_string()
    }

    /// Starts `run`, its stderr in `agent.log` beside the config.
    pub fn run(&self) -> Proc {
        let log = self.dir.path().join("agent.log");
        let child = self
            .command(&["run"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn forewarn-agent.exe run");
        Proc { child, log }
    }
}

/// Polls `f` (blocking) until it returns `Some`, or panics with `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
