//! One-line enrollment, end to end: the line `token create` prints, run as
//! root in a fresh root file system (`common::oneliner::FreshRoot`: an
//! overlay of `/` entered with `unshare --mount` + `chroot`), against a real
//! collector serving its install script and a signed agent from its
//! releases dir over its agent port (TLS pinned to the CA fingerprint).
//! The script verifies the signature with openssl (minisign is not
//! installed here), installs, enrolls; the installed agent then reports.
//!
//! `sudo` is not installed here and the tests run as root: a shell
//! function `sudo() { "$@"; }` stands in for it. The signing key is made
//! with the `minisign` crate (the same format `forewarn-collector release
//! sign` writes).
//!
//! These tests install software into a root: they share the `packages`
//! nextest group with the package tests, so they never run at once.

mod common;

use std::process::Output;
use std::time::Duration;

use common::oneliner::{FreshRoot, ReleaseKey};
use common::{Collector, bin, eventually};
use serde_json::Value;

/// A collector whose releases dir holds the debug agent binary as a
/// signed plain-binary artifact; returns it with the artifact's name.
fn collector_with_agent(key: &ReleaseKey) -> (Collector, String) {
    let c =
        Collector::start_with_config(&format!("[releases]\npublic_key = \"{}\"\n", key.public()));
    let out = std::process::Command::new(bin("forewarn-agent"))
        .arg("--version")
        .output()
        .expect("agent --version");
    let version = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("version")
        .to_string();
    let name = format!("forewarn-agent-{version}-x86_64-unknown-linux-gnu");
    key.publish(
        &c.dir.path().join("data/releases"),
        &bin("forewarn-agent"),
        &name,
        &version,
    );
    (c, name)
}

/// `token create --json` for tenant default: the whole JSON.
fn token(c: &Collector, extra: &[&str]) -> Value {
    let mut args = vec!["token", "create", "--tenant", "default", "--json"];
    args.extend_from_slice(extra);
    c.cli_json(&args)
}

/// Runs a one-liner in the root with the `sudo` stand-in and
/// `--package binary` (this test's artifact is the plain binary).
fn run_line(root: &FreshRoot, line: &str) -> Output {
    let line = format!("{line} --package binary");
    root.sh(&format!("sudo() {{ \"$@\"; }}; {line}"))
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Nothing of the agent was written into the root.
fn nothing_installed(root: &FreshRoot) {
    for p in [
        "/usr/local/bin/forewarn-agent",
        "/usr/bin/forewarn-agent",
        "/var/lib/forewarn-agent",
        "/etc/systemd/system/forewarn-agent.service",
    ] {
        assert!(!root.wrote(p), "{p} was written into the root");
    }
}

async fn agent_count(c: &Collector) -> usize {
    c.get("/api/v1/agents").await.as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_one_liner_installs_enrolls_and_the_agent_reports() {
    let key = ReleaseKey::new();
    let (c, name) = collector_with_agent(&key);
    let t = token(&c, &[]);
    let line = t["install_sh"].as_str().expect("install_sh");
    let root = FreshRoot::new();

    let out = run_line(&root, line);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("collector CA matches the fingerprint"),
        "{said}"
    );
    assert!(said.contains("token accepted for tenant default"), "{said}");
    assert!(
        said.contains(&format!("signature verified (file:{name} ")),
        "{said}"
    );
    assert!(said.contains("enrolled as agent"), "{said}");
    // No systemd here: said so, not started.
    assert!(said.contains("systemd is not running here"), "{said}");
    assert!(root.wrote("/usr/local/bin/forewarn-agent"));
    let identity: Value = serde_json::from_str(
        &std::fs::read_to_string(root.upper("/var/lib/forewarn-agent/identity.json"))
            .expect("identity"),
    )
    .expect("identity json");
    let agent_id = identity["agent_id"].as_str().expect("agent_id").to_string();
    assert_eq!(agent_count(&c).await, 1);

    // Again, with the same (now used-up) token: nothing installed or
    // enrolled twice.
    let out = run_line(&root, line);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("not enrolled again"), "{said}");
    assert!(said.contains(&agent_id), "{said}");
    assert_eq!(agent_count(&c).await, 1);

    // The installed agent, run in the root, reports to the collector.
    let log = c.dir.path().join("fresh-agent.log");
    let mut agent = root.spawn("exec /usr/local/bin/forewarn-agent run", log);
    eventually(
        Duration::from_secs(30),
        "the installed agent online with check results",
        || async {
            let v = c.agent(&agent_id).await?;
            (v["status"] == "online" && v["checks"].as_array().is_some_and(|a| !a.is_empty()))
                .then_some(())
        },
    )
    .await;
    assert!(
        agent.terminate(Duration::from_secs(10)).is_some(),
        "{}",
        agent.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_fingerprint_stops_before_anything_is_installed() {
    let key = ReleaseKey::new();
    let (c, _) = collector_with_agent(&key);
    let t = token(&c, &[]);
    let fp = t["ca_fingerprint"].as_str().expect("fp");
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let line = t["install_sh"].as_str().expect("line").replace(fp, &wrong);
    let root = FreshRoot::new();
    let out = run_line(&root, &line);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("not the --fingerprint {wrong}")),
        "{said}"
    );
    assert!(said.contains("nothing was installed"), "{said}");
    nothing_installed(&root);
    assert_eq!(agent_count(&c).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_or_used_up_token_stops_before_anything_is_installed() {
    let key = ReleaseKey::new();
    let (c, _) = collector_with_agent(&key);
    let t = token(&c, &[]);
    let real = t["token"].as_str().expect("token");
    let line = t["install_sh"].as_str().expect("line");
    let root = FreshRoot::new();

    let wrong = format!("fwt_{}", "x".repeat(43));
    let out = run_line(&root, &line.replace(real, &wrong));
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("/enroll/check answered 401: unknown enrollment token"),
        "{said}"
    );
    nothing_installed(&root);

    // A revoked token: the same, with its reason.
    let id = t["id"].as_str().expect("id");
    let revoked = c.cli(&["token", "revoke", id]);
    assert!(revoked.status.success(), "{}", text(&revoked));
    let out = run_line(&root, line);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("enrollment token revoked"), "{said}");
    nothing_installed(&root);
    assert_eq!(agent_count(&c).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_or_foreign_signed_package_is_refused() {
    let key = ReleaseKey::new();
    let (c, name) = collector_with_agent(&key);
    let t = token(&c, &[]);
    let line = t["install_sh"].as_str().expect("line");
    let root = FreshRoot::new();

    // Signed by the collector's key, but the script is told to trust
    // another release key only: the script's own check refuses it.
    let other = ReleaseKey::new();
    let out = run_line(&root, &format!("{line} --release-key {}", other.public()));
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("{name} is signed with another key")),
        "{said}"
    );
    nothing_installed(&root);

    // Altered in the releases dir after signing: the collector neither
    // offers nor serves it.
    let path = c.dir.path().join("data/releases").join(&name);
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).expect("tamper");
    let out = run_line(&root, line);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("offers no signed binary agent for linux/x86_64"),
        "{said}"
    );
    nothing_installed(&root);
    assert_eq!(agent_count(&c).await, 0);
}
