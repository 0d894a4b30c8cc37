//! Self-update kit: release keys made by the collector's own `release
//! keygen`, artifacts signed by `release sign`, the agent at a second
//! version (0.99.0, built by `tests/update.sh` into
//! `$CARGO_TARGET_DIR/update-test/`), and an agent that runs from its own
//! copy of the binary, since a self-update replaces the file it runs from.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{AgentHome, Collector, Proc, bin, bin_dir};

/// The version `tests/update.sh` builds the second agent at.
pub const B_VERSION: &str = "0.99.0";

/// This machine's Rust target triple, as the agent reports it (the tests
/// run on Linux).
pub fn target() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// The self-update file name of `version` for this machine.
pub fn artifact_name(version: &str) -> String {
    format!("forewarn-agent-{version}-{}", target())
}

/// The version the workspace's agent binary says it is.
pub fn a_version() -> String {
    let out = Command::new(bin("forewarn-agent"))
        .arg("--version")
        .output()
        .expect("forewarn-agent --version");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .last()
        .expect("a version")
        .to_owned()
}

/// The agent built as [`B_VERSION`].
pub fn b_binary() -> PathBuf {
    let path = bin_dir()
        .parent()
        .expect("target dir")
        .join("update-test")
        .join(format!("forewarn-agent-{B_VERSION}"));
    assert!(
        path.exists(),
        "{} not found: run tests/update.sh first (run-all.sh does, before the main build)",
        path.display()
    );
    path
}

/// A release key pair in its own temp dir.
pub struct Keys {
    pub dir: tempfile::TempDir,
    pub secret: PathBuf,
    /// `RW…`
    pub public: String,
}

/// `forewarn-collector release keygen --unencrypted`.
pub fn keygen() -> Keys {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin("forewarn-collector"))
        .args(["release", "keygen", "--unencrypted", "--out"])
        .arg(dir.path().join("keys"))
        .output()
        .expect("release keygen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "release keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = stdout
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .expect("public key line")
        .trim()
        .to_owned();
    Keys {
        secret: dir.path().join("keys/forewarn-release.key"),
        dir,
        public,
    }
}

/// `forewarn-collector release sign` of `file` as `version` with `keys`.
pub fn sign(keys: &Keys, version: &str, file: &Path) {
    let out = Command::new(bin("forewarn-collector"))
        .args(["release", "sign", "--version", version, "--key"])
        .arg(&keys.secret)
        .arg(file)
        .output()
        .expect("release sign");
    assert!(
        out.status.success(),
        "release sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Puts `bytes` into `dir` as the self-update artifact of `version`,
/// signed by `keys`; its path.
pub fn publish(dir: &Path, keys: &Keys, version: &str, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("releases dir");
    let path = dir.join(artifact_name(version));
    std::fs::write(&path, bytes).expect("write artifact");
    sign(keys, version, &path);
    path
}

/// Collector config: `[releases]` trusting `public_key` in `dir`, every
/// agent offered `version`.
pub fn releases_config(dir: &Path, public_key: &str, version: &str) -> String {
    format!(
        "[releases]\ndir = {dir:?}\npublic_key = \"{public_key}\"\n[releases.rollout]\nversion = \"{version}\"\n"
    )
}

/// An agent that runs from its own copy of a binary.
pub struct UpdatingAgent {
    pub home: AgentHome,
    pub exe: PathBuf,
}

impl UpdatingAgent {
    /// `binary` copied into the agent's dir; the config pins `public_key`.
    pub fn new(binary: &Path, public_key: &str) -> Self {
        let home = AgentHome::new(&format!(
            "[update]\npublic_key = \"{public_key}\"\ntrial_timeout_secs = 30\n"
        ));
        let exe = home.dir.path().join("bin/forewarn-agent");
        std::fs::create_dir_all(exe.parent().expect("bin dir")).expect("mkdir");
        std::fs::copy(binary, &exe).expect("copy the agent binary");
        Self { home, exe }
    }

    /// `<exe> --config … run`, stderr in `agent.log`.
    pub fn run(&self) -> Proc {
        let log = self.home.dir.path().join("agent.log");
        let child = Command::new(&self.exe)
            .arg("--config")
            .arg(&self.home.config)
            .arg("run")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn agent");
        Proc { child, log }
    }

    pub fn sibling(&self, suffix: &str) -> PathBuf {
        let mut s = self.exe.clone().into_os_string();
        s.push(suffix);
        PathBuf::from(s)
    }
}

/// The collector's audit entries whose action starts with `agent.update`.
pub async fn update_audit(collector: &Collector) -> Vec<Value> {
    let v = collector.get("/api/v1/audit?limit=1000").await;
    v.as_array()
        .expect("audit array")
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("agent.update"))
        })
        .cloned()
        .collect()
}

/// The version the collector shows for `agent_id`.
pub async fn shown_version(collector: &Collector, agent_id: &str) -> Option<String> {
    let detail = collector.agent(agent_id).await?;
    let agent = if detail.get("agent").is_some() {
        &detail["agent"]
    } else {
        &detail
    };
    agent["agent_version"].as_str().map(str::to_owned)
}
