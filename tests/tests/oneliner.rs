//! One-line enrollment, end to end: the line `token create` prints, run as
//! root in a fresh root file system (`common::oneliner::FreshRoot`: an
//! overlay of `/` entered with `unshare --mount` + `chroot`), against a real
//! collector serving its install script and a signed agent from its
//! releases dir over its agent port (TLS pinned to the CA fingerprint).
//! The script verifies the signature with openssl (minisign is not
//! installed here), installs, enrolls; the installed agent then reports.
//!
//! `sudo` is not installed here and the tests run as root: a shell
//! function `sudo() { "$@"; }` stands in for it. Artifacts are signed with
//! `forewarn-collector release keygen` and `release sign`. systemd is not running here, so the script's "start" step
//! takes its no-systemd branch and the test starts the installed agent.
//!
//! These tests install software into a root: they share the `packages`
//! nextest group with the package tests, so they never run at once.

mod common;

use std::process::Output;
use std::time::Duration;

use common::oneliner::{FreshRoot, ReleaseKey, agent_deb};
use common::{Collector, bin, eventually};
use serde_json::Value;

/// A collector whose releases dir trusts `key`.
fn collector(key: &ReleaseKey) -> Collector {
    Collector::start_with_config(&format!("[releases]\npublic_key = \"{}\"\n", key.public()))
}

/// The built agent's version.
fn version() -> String {
    let out = std::process::Command::new(bin("forewarn-agent"))
        .arg("--version")
        .output()
        .expect("agent --version");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("version")
        .to_string()
}

/// A collector whose releases dir holds the debug agent binary as a
/// signed plain-binary artifact; returns it with the artifact's name.
fn collector_with_binary(key: &ReleaseKey) -> (Collector, String) {
    let c = collector(key);
    let version = version();
    let name = format!("forewarn-agent-{version}-x86_64-unknown-linux-gnu");
    key.publish(
        &c.dir.path().join("data/releases"),
        &bin("forewarn-agent"),
        &name,
        &version,
    );
    (c, name)
}

/// `token create --json` for tenant default, naming the agent port (the
/// config's listen address has port 0).
fn token(c: &Collector) -> Value {
    let url = c.url();
    c.cli_json(&[
        "token",
        "create",
        "--tenant",
        "default",
        "--json",
        "--collector-url",
        &url,
    ])
}

/// Runs a line in the root with the `sudo` stand-in.
fn run(root: &FreshRoot, line: &str) -> Output {
    root.sh(&format!("sudo() {{ \"$@\"; }}; {line}"))
}

/// Runs a line with `--package binary` (the plain-binary artifact).
fn run_binary(root: &FreshRoot, line: &str) -> Output {
    run(root, &format!("{line} --package binary"))
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
        "/var/lib/dpkg/info/forewarn-agent.list",
        "/etc/systemd/system/forewarn-agent.service",
    ] {
        assert!(!root.wrote(p), "{p} was written into the root");
    }
}

async fn agent_count(c: &Collector) -> usize {
    c.get("/api/v1/agents").await.as_array().map_or(0, Vec::len)
}

fn agent_id(root: &FreshRoot) -> String {
    let identity: Value = serde_json::from_str(
        &std::fs::read_to_string(root.upper("/var/lib/forewarn-agent/identity.json"))
            .expect("identity.json in the root"),
    )
    .expect("identity json");
    identity["agent_id"].as_str().expect("agent_id").to_string()
}

/// The installed agent, started in the root with `command`, shows online
/// with check results at the collector.
async fn reports(c: &Collector, root: &FreshRoot, command: &str, agent_id: &str) {
    let log = c.dir.path().join("fresh-agent.log");
    let mut agent = root.spawn(&format!("exec {command}"), log);
    eventually(
        Duration::from_secs(30),
        "the installed agent online with check results",
        || async {
            let v = c.agent(agent_id).await?;
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

/// The line exactly as printed, on a root with dpkg: the signed `.deb`
/// (from `tests/packages.sh build`) is installed, enrolled, and reports;
/// a second run installs and enrolls nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_line_installs_the_deb_enrolls_and_the_agent_reports() {
    let key = ReleaseKey::new();
    let c = collector(&key);
    let packages = tempfile::tempdir().expect("tempdir");
    let deb = agent_deb(packages.path(), &version());
    let name = deb
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    key.publish(&c.dir.path().join("data/releases"), &deb, &name, &version());
    let t = token(&c);
    let line = t["install_sh"].as_str().expect("install_sh");
    let root = FreshRoot::new();

    let out = run(&root, line);
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
    assert!(said.contains("(deb)"), "{said}");
    assert!(said.contains("enrolled as agent"), "{said}");
    assert!(said.contains("systemd is not running here"), "{said}");
    assert!(root.wrote("/usr/bin/forewarn-agent"));
    assert!(root.wrote("/var/lib/dpkg/info/forewarn-agent.list"));
    let passwd = std::fs::read_to_string(root.upper("/etc/passwd")).expect("passwd");
    assert!(passwd.contains("\nforewarn-agent:"), "the package's user");
    let agent_id = agent_id(&root);
    assert_eq!(agent_count(&c).await, 1);

    // Again, with the same (now used-up) token.
    let out = run(&root, line);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("not enrolled again"), "{said}");
    assert!(said.contains(&agent_id), "{said}");
    assert_eq!(agent_count(&c).await, 1);

    reports(
        &c,
        &root,
        "/usr/bin/forewarn-agent --config /etc/forewarn/agent.toml run",
        &agent_id,
    )
    .await;
}

/// The plain binary (`--package binary`): installed to /usr/local/bin,
/// enrolled, reports; a second run enrolls nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_line_installs_the_binary_enrolls_and_the_agent_reports() {
    let key = ReleaseKey::new();
    let (c, name) = collector_with_binary(&key);
    let t = token(&c);
    let line = t["install_sh"].as_str().expect("install_sh");
    let root = FreshRoot::new();

    let out = run_binary(&root, line);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("signature verified (file:{name} ")),
        "{said}"
    );
    assert!(said.contains("(binary)"), "{said}");
    assert!(root.wrote("/usr/local/bin/forewarn-agent"));
    let agent_id = agent_id(&root);

    let out = run_binary(&root, line);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("not enrolled again"), "{said}");
    assert_eq!(agent_count(&c).await, 1);

    reports(&c, &root, "/usr/local/bin/forewarn-agent run", &agent_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_fingerprint_stops_before_anything_is_installed() {
    let key = ReleaseKey::new();
    let (c, _) = collector_with_binary(&key);
    let t = token(&c);
    let fp = t["ca_fingerprint"].as_str().expect("fp");
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let line = t["install_sh"].as_str().expect("line").replace(fp, &wrong);
    let root = FreshRoot::new();
    let out = run_binary(&root, &line);
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
async fn a_wrong_or_revoked_token_stops_before_anything_is_installed() {
    let key = ReleaseKey::new();
    let (c, _) = collector_with_binary(&key);
    let t = token(&c);
    let real = t["token"].as_str().expect("token");
    let line = t["install_sh"].as_str().expect("line");
    let root = FreshRoot::new();

    let wrong = format!("fwt_{}", "x".repeat(43));
    let out = run_binary(&root, &line.replace(real, &wrong));
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("/enroll/check answered 401: unknown enrollment token"),
        "{said}"
    );
    nothing_installed(&root);

    let id = t["id"].as_str().expect("id");
    let revoked = c.cli(&["token", "revoke", id]);
    assert!(revoked.status.success(), "{}", text(&revoked));
    let out = run_binary(&root, line);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("enrollment token revoked"), "{said}");
    nothing_installed(&root);
    assert_eq!(agent_count(&c).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_or_foreign_signed_package_is_refused() {
    let key = ReleaseKey::new();
    let (c, name) = collector_with_binary(&key);
    let t = token(&c);
    let line = t["install_sh"].as_str().expect("line");
    let root = FreshRoot::new();

    // Signed with the collector's key, but the script is told to trust
    // another release key only: the script's own check refuses it.
    let other = ReleaseKey::new();
    let out = run_binary(&root, &format!("{line} --release-key {}", other.public()));
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("{name} is signed with another key")),
        "{said}"
    );
    nothing_installed(&root);

    // Altered in the releases dir after signing: the collector neither
    // offers nor serves it (not listed once the dir is scanned again, and
    // its bytes refused at download if the scan is a moment old).
    let path = c.dir.path().join("data/releases").join(&name);
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).expect("tamper");
    let out = run_binary(&root, line);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("offers no signed binary agent for linux/x86_64")
            || said.contains("it changed since its signature was verified"),
        "{said}"
    );
    nothing_installed(&root);
    assert_eq!(agent_count(&c).await, 0);
}

/// `curl` against the agent port, trusting the collector CA: (status, body).
fn curl(c: &Collector, args: &[&str], path: &str) -> (String, String) {
    let ca = c.dir.path().join("data/pki/ca.crt");
    let out = std::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&ca)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .arg(format!("https://{}{path}", c.grpc))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.to_string(), body.to_string())
}

/// What the agent port serves besides gRPC: the index, JSON errors naming
/// the fault, no way out of the releases dir, and HTTP/1.1 for clients
/// that send no ALPN (curl.exe, PowerShell).
#[test]
fn the_agent_port_serves_the_index_and_json_errors() {
    let key = ReleaseKey::new();
    let (c, name) = collector_with_binary(&key);
    let (code, body) = curl(&c, &[], "/download/index.json");
    assert_eq!(code, "200", "{body}");
    let index: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(index["artifacts"][0]["file"], name.as_str());
    assert_eq!(index["artifacts"][0]["kind"], "binary");
    assert_eq!(index["artifacts"][0]["os"], "linux");

    for (path, want) in [
        ("/download/..%2Fforewarn.db", "400"),
        ("/download/.forewarn.db", "400"),
        ("/download/forewarn.db", "404"),
        (
            "/download/forewarn-agent-9.9.9-x86_64-unknown-linux-gnu",
            "404",
        ),
        ("/nowhere", "404"),
    ] {
        let (code, body) = curl(&c, &[], path);
        assert_eq!(code, want, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: {body}"));
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
    let (code, body) = curl(
        &c,
        &[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            "{\"tok\":1}",
        ],
        "/enroll/check",
    );
    assert_eq!(code, "400", "{body}");
    assert!(body.contains("token"), "{body}");

    let (code, body) = curl(&c, &["--http1.1", "--no-alpn"], "/install.sh");
    assert_eq!(code, "200", "{body}");
    assert!(body.starts_with("#!/bin/sh"), "{body}");
}

/// The dashboard's Enrollment page: an msp-admin creates a token for a
/// tenant and gets it with both one-liners and their copy buttons; the
/// token in the line is real (the agent port accepts it), and a bad form
/// value is named.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_creates_a_token_and_shows_the_line() {
    let key = ReleaseKey::new();
    let c = collector(&key);
    let password = c.operator("boss", "msp-admin", &[]).await;
    let cookie = c.sign_in("boss", &password).await;
    let (status, page) = c.page(&cookie, "/tokens").await;
    assert_eq!(status, 200, "{page}");
    let at = page.find("name=\"_csrf\" value=\"").expect("a form") + 20;
    let csrf = page[at..].split('"').next().expect("csrf").to_string();
    let url = c.url();
    let post = |form: Vec<(&'static str, String)>| {
        let cookie = cookie.clone();
        let http = c.http;
        async move {
            let resp = reqwest::Client::new()
                .post(format!("http://{http}/tokens"))
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .expect("POST /tokens");
            (resp.status().as_u16(), resp.text().await.expect("body"))
        }
    };
    let (status, page) = post(vec![
        ("_csrf", csrf.clone()),
        ("tenant", "default".into()),
        ("site", "hq".into()),
        ("role", "server".into()),
        ("valid_hours", "2".into()),
        ("max_uses", "3".into()),
        ("agent_url", url.clone()),
    ])
    .await;
    assert_eq!(status, 200, "{page}");
    for part in [
        "data-copy=\"oneliner-sh\"",
        "data-copy=\"oneliner-ps1\"",
        "data-copy=\"token-value\"",
    ] {
        assert!(page.contains(part), "{part} missing:\n{page}");
    }
    let sh_at = page.find("id=\"oneliner-sh\">").expect("the sh line") + 16;
    let line = page[sh_at..].split("</code>").next().expect("line");
    let fingerprint = token(&c)["ca_fingerprint"]
        .as_str()
        .expect("fp")
        .to_string();
    assert!(
        line.contains(&format!(
            "--url {url} --fingerprint {fingerprint} --token fwt_"
        )),
        "{line}"
    );
    let tok = line.rsplit("--token ").next().expect("token");
    let (code, body) = curl(
        &c,
        &[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            &format!("{{\"token\":\"{tok}\"}}"),
        ],
        "/enroll/check",
    );
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("\"site\":\"hq\""), "{body}");
    let tokens = c.get("/api/v1/tokens").await;
    assert!(
        tokens
            .as_array()
            .expect("tokens")
            .iter()
            .any(|t| t["site"] == "hq" && t["max_uses"] == 3 && t["role"] == "server"),
        "{tokens}"
    );

    let (status, page) = post(vec![
        ("_csrf", csrf),
        ("tenant", "default".into()),
        ("max_uses", "0".into()),
        ("agent_url", url),
    ])
    .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("max_uses must be a whole number from 1 to 100000"),
        "{page}"
    );
}
