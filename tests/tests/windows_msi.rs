//! The forewarn-agent MSI (deploy/windows/forewarn-agent.wxs, built by
//! deploy/windows/build-msi.sh with wixl through `tests/windows.sh`).
//!
//! - Its tables, read back with `msiinfo`: the exe in Program Files\Forewarn
//!   (64-bit component), the deferred, non-impersonated custom actions that
//!   register, enroll, start, stop, unregister and purge, in the right
//!   order and on the right conditions, the public properties, the major
//!   upgrade rows, and nothing installed under ProgramData.
//! - build-msi.sh refuses bad input with the argument named.
//! - Wine's msiexec: a wrong token fails the install and rolls the files
//!   back; with COLLECTOR_URL, ENROLL_TOKEN and CA_FINGERPRINT it installs
//!   silently, the agent enrolls and its service, started through Wine's
//!   service manager, reports to a real collector; an upgrade keeps the
//!   identity; an uninstall keeps state, PURGE=1 removes it.
//!
//! `FOREWARN_SKIP_WINE=1` skips this loudly; nothing else does.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Collector;
use common::wine::{Prefix, artifacts, wait_for, win_path};

/// `msiinfo export MSI TABLE` as rows of columns (the three header lines
/// dropped).
fn table(msi: &Path, name: &str) -> Vec<Vec<String>> {
    let out = Command::new("msiinfo")
        .arg("export")
        .arg(msi)
        .arg(name)
        .output()
        .expect("run msiinfo export");
    assert!(
        out.status.success(),
        "msiinfo export {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(3)
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// A table keyed by its first column.
fn keyed(msi: &Path, name: &str) -> BTreeMap<String, Vec<String>> {
    table(msi, name)
        .into_iter()
        .map(|r| (r[0].clone(), r))
        .collect()
}

const DEFERRED: i64 = 0x400;
const NO_IMPERSONATE: i64 = 0x800;
const HIDE_TARGET: i64 = 0x2000;
const IGNORE_EXIT_CODE: i64 = 0x40;

#[test]
fn msi_tables_install_the_agent_and_run_its_service_commands() {
    let Some(a) = artifacts("msi_tables_install_the_agent_and_run_its_service_commands") else {
        return;
    };
    let msi = &a.msi;

    let tables = Command::new("msiinfo")
        .arg("tables")
        .arg(msi)
        .output()
        .expect("msiinfo tables");
    let tables = String::from_utf8_lossy(&tables.stdout);
    for t in [
        "File",
        "Component",
        "Directory",
        "CustomAction",
        "InstallExecuteSequence",
        "Property",
        "Upgrade",
    ] {
        assert!(tables.lines().any(|l| l == t), "no {t} table: {tables}");
    }
    let suminfo = Command::new("msiinfo")
        .arg("suminfo")
        .arg(msi)
        .output()
        .expect("msiinfo suminfo");
    let suminfo = String::from_utf8_lossy(&suminfo.stdout);
    assert!(
        suminfo.contains("Template: x64;1033"),
        "an x64 package: {suminfo}"
    );

    // The exe, whole, in Program Files\Forewarn, as a 64-bit component.
    let files = keyed(msi, "File");
    let exe = &files["AgentExe"];
    assert_eq!(exe[1], "AgentBinary");
    assert_eq!(exe[2], "forewarn-agent.exe");
    let size = std::fs::metadata(&a.agent_exe).expect("exe").len();
    assert_eq!(exe[3], size.to_string(), "the packed exe is the built one");
    assert_eq!(files.len(), 1, "only the exe is installed: {files:?}");
    let component = &keyed(msi, "Component")["AgentBinary"];
    assert_eq!(component[2], "INSTALLDIR");
    let attributes: i64 = component[3].parse().expect("attributes");
    assert_ne!(attributes & 0x100, 0, "msidbComponentAttributes64bit");
    let dirs = keyed(msi, "Directory");
    assert_eq!(dirs["INSTALLDIR"][1], "ProgramFiles64Folder");
    assert_eq!(dirs["INSTALLDIR"][2], "Forewarn");
    // Config and state (ProgramData\Forewarn) belong to no component, so
    // Windows Installer never removes them; only PURGE=1 does.
    assert!(
        keyed(msi, "Component")
            .values()
            .all(|c| c[2] != "CommonAppDataFolder"),
        "nothing is installed under ProgramData"
    );

    // The service and enrollment steps: the agent's own commands, deferred
    // and run as LocalSystem (no impersonation).
    let actions = keyed(msi, "CustomAction");
    let action = |id: &str| -> (i64, &str, &str) {
        let r = actions
            .get(id)
            .unwrap_or_else(|| panic!("no custom action {id}: {actions:?}"));
        (r[1].parse().expect("type"), r[2].as_str(), r[3].as_str())
    };
    for (id, target, checked) in [
        ("AgentServiceInstall", "service install", true),
        ("AgentServiceStart", "service start", true),
        ("AgentServiceStop", "service stop", false),
        ("AgentServiceUninstall", "service uninstall", false),
    ] {
        let (ty, source, got) = action(id);
        assert_eq!(source, "AgentExe", "{id} runs the installed exe");
        assert_eq!(got, target, "{id}");
        assert_eq!(ty & 0x3f, 18, "{id}: an exe from the File table");
        assert_eq!(
            ty & (DEFERRED | NO_IMPERSONATE),
            DEFERRED | NO_IMPERSONATE,
            "{id}"
        );
        assert_eq!(
            ty & IGNORE_EXIT_CODE == 0,
            checked,
            "{id}: exit code checked"
        );
    }
    let (ty, source, target) = action("AgentServiceInstallRollback");
    assert_eq!((source, target), ("AgentExe", "service uninstall"));
    assert_eq!(ty & 0x500, 0x500, "runs only on rollback");
    let (ty, source, enroll) = action("AgentEnroll");
    assert_eq!(source, "CMDEXE");
    assert_eq!(ty & 0x3f, 50, "an exe named by a property");
    assert_eq!(ty & (DEFERRED | NO_IMPERSONATE), DEFERRED | NO_IMPERSONATE);
    assert_ne!(
        ty & HIDE_TARGET,
        0,
        "the token never reaches the installer log"
    );
    assert_eq!(
        ty & IGNORE_EXIT_CODE,
        0,
        "a failed enrollment fails the install"
    );
    assert!(
        enroll.contains(r#"if not exist "[CommonAppDataFolder]Forewarn\identity.json""#),
        "enrolls only a machine not enrolled yet: {enroll}"
    );
    assert!(
        enroll.contains(
            r#""[#AgentExe]" enroll --collector "[COLLECTOR_URL]" --token "[ENROLL_TOKEN]" --ca-fingerprint "[CA_FINGERPRINT]""#
        ),
        "{enroll}"
    );
    let (_, _, purge) = action("AgentPurge");
    assert!(
        purge.contains(r#"rmdir /s /q "[CommonAppDataFolder]Forewarn""#),
        "{purge}"
    );
    assert_eq!(action("SetCmdExe").2, "[System64Folder]cmd.exe");

    // Order and conditions.
    let seq = keyed(msi, "InstallExecuteSequence");
    let at = |id: &str| -> i64 {
        seq.get(id)
            .unwrap_or_else(|| panic!("{id} not sequenced: {seq:?}"))[2]
            .parse()
            .expect("sequence")
    };
    let order = [
        "RemoveExistingProducts",
        "InstallInitialize",
        "AgentServiceStop",
        "AgentServiceUninstall",
        "RemoveFiles",
        "AgentPurge",
        "InstallFiles",
        "AgentServiceInstallRollback",
        "AgentServiceInstall",
        "AgentEnroll",
        "AgentServiceStart",
        "InstallFinalize",
    ];
    for w in order.windows(2) {
        assert!(
            at(w[0]) < at(w[1]),
            "{} runs before {}: {seq:?}",
            w[0],
            w[1]
        );
    }
    let cond = |id: &str| seq[id][1].as_str();
    assert_eq!(cond("AgentServiceStop"), r#"REMOVE~="ALL""#);
    assert_eq!(cond("AgentServiceUninstall"), r#"REMOVE~="ALL""#);
    assert_eq!(
        cond("AgentPurge"),
        r#"REMOVE~="ALL" AND NOT UPGRADINGPRODUCTCODE AND PURGE="1""#
    );
    assert_eq!(
        cond("AgentServiceInstall"),
        r#"NOT Installed AND NOT REMOVE~="ALL""#
    );
    assert_eq!(
        cond("AgentEnroll"),
        r#"NOT REMOVE~="ALL" AND COLLECTOR_URL AND ENROLL_TOKEN AND CA_FINGERPRINT"#
    );
    assert!(at("SetCmdExe") < at("InstallInitialize"));

    // Properties: per-machine, the version, public properties passed to a
    // managed install, the token hidden.
    let props = keyed(msi, "Property");
    let prop = |k: &str| props.get(k).map(|r| r[1].as_str()).unwrap_or("");
    assert_eq!(prop("ALLUSERS"), "1");
    assert_eq!(prop("ProductVersion"), env!("CARGO_PKG_VERSION"));
    assert_eq!(prop("ProductName"), "Forewarn Agent");
    assert_eq!(
        prop("UpgradeCode").to_uppercase(),
        "{6C1F3B8E-2A4D-4B7E-9F0A-5D3C8E1B7A42}",
        "the upgrade code never changes"
    );
    let secure: Vec<&str> = prop("SecureCustomProperties").split(';').collect();
    for p in [
        "COLLECTOR_URL",
        "ENROLL_TOKEN",
        "CA_FINGERPRINT",
        "PURGE",
        "WIX_UPGRADE_DETECTED",
    ] {
        assert!(secure.contains(&p), "{p} is a secure property: {secure:?}");
    }
    assert_eq!(prop("MsiHiddenProperties"), "ENROLL_TOKEN");

    // Major upgrade: older versions are removed, newer ones refuse a downgrade.
    let upgrade = table(msi, "Upgrade");
    let detected = upgrade
        .iter()
        .find(|r| r[6] == "WIX_UPGRADE_DETECTED")
        .expect("upgrade row");
    assert_eq!(detected[2], env!("CARGO_PKG_VERSION"), "VersionMax");
    assert!(detected[5].is_empty(), "no Remove = all features removed");
    let downgrade = upgrade
        .iter()
        .find(|r| r[6] == "WIX_DOWNGRADE_DETECTED")
        .expect("downgrade row");
    assert_eq!(downgrade[1], env!("CARGO_PKG_VERSION"), "VersionMin");
    assert!(at("FindRelatedProducts") < at("LaunchConditions"));
}

#[test]
fn build_msi_names_the_bad_argument_and_writes_nothing() {
    let Some(a) = artifacts("build_msi_names_the_bad_argument_and_writes_nothing") else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/windows/build-msi.sh");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.msi");
    let not_pe = dir.path().join("not-an-exe.exe");
    std::fs::write(&not_pe, "#!/bin/sh\n").expect("write");
    let exe = a.agent_exe.to_str().expect("utf-8");
    let missing = dir.path().join("missing.exe");
    for (args, says) in [
        (vec!["1.2", exe], "VERSION must be MAJOR.MINOR.PATCH"),
        (vec!["1.2.3-rc.1", exe], "VERSION must be MAJOR.MINOR.PATCH"),
        (vec!["256.0.0", exe], "out of Windows Installer's range"),
        (vec!["1.2.3", missing.to_str().expect("utf-8")], "AGENT_EXE"),
        (
            vec!["1.2.3", not_pe.to_str().expect("utf-8")],
            "is not a Windows executable",
        ),
    ] {
        let result = Command::new(&script)
            .args(&args)
            .arg(&out)
            .output()
            .expect("run build-msi.sh");
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    let usage = Command::new(&script).output().expect("run build-msi.sh");
    assert_eq!(usage.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&usage.stderr)
            .contains("usage: build-msi.sh VERSION AGENT_EXE OUT_MSI")
    );
}

/// `wine64 msiexec ARGS…` in `prefix`, with a verbose log; returns the
/// exit code and the log's text.
fn msiexec(prefix: &Prefix, args: &[&str], log: &Path) -> (i32, String) {
    let status = prefix
        .command("msiexec")
        .arg("/qn")
        .arg("/l*v")
        .arg(win_path(log))
        .args(args)
        .status()
        .expect("run wine64 msiexec");
    let bytes = std::fs::read(log).unwrap_or_default();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wine_msiexec_installs_enrolls_starts_upgrades_and_uninstalls() {
    let Some(a) = artifacts("wine_msiexec_installs_enrolls_starts_upgrades_and_uninstalls") else {
        return;
    };
    let collector = Collector::start();
    let (token, fp) = collector.token("default", &[]);
    let prefix = Prefix::new(&a);
    let work = tempfile::tempdir().expect("tempdir");
    let msi = win_path(&a.msi);
    let exe = prefix.drive_c("Program Files/Forewarn/forewarn-agent.exe");
    let state = prefix.drive_c("ProgramData/Forewarn");
    let identity = state.join("identity.json");
    // Wine's service manager gives services %ProgramData% = C:\users\Public
    // (Windows: C:\ProgramData, as msiexec sees it here too), so the service
    // would look for the identity the installer enrolled in another place.
    // Test-only: one directory under both names, as on Windows.
    let public = prefix.drive_c("users/Public/Forewarn");
    let _ = std::fs::remove_dir_all(&public);
    std::os::unix::fs::symlink("../../ProgramData/Forewarn", &public).expect("symlink");

    let url = format!("COLLECTOR_URL={}", collector.url());
    let fpr = format!("CA_FINGERPRINT={fp}");

    // A wrong token fails the install and leaves no program and no identity.
    let log = work.path().join("wrong-token.log");
    let (code, text) = msiexec(
        &prefix,
        &["/i", &msi, &url, "ENROLL_TOKEN=fwt_w_wrong", &fpr],
        &log,
    );
    assert_ne!(code, 0, "a wrong token must fail the install:\n{text}");
    assert!(!exe.exists(), "rolled back: {}", exe.display());
    assert!(!identity.exists(), "no identity from a wrong token");
    // Not asserted: that the rollback action unregistered the service.
    // Wine's msiexec schedules it but leaves the registration in place
    // (docs/windows-install.md), which would fail the next `service
    // install`, so the test removes it.
    let deleted = prefix
        .command("sc")
        .args(["delete", "ForewarnAgent"])
        .output()
        .expect("wine sc delete");
    assert!(deleted.status.success(), "sc delete: {deleted:?}");

    // Install, silently, with the three properties.
    let tok = format!("ENROLL_TOKEN={token}");
    let log = work.path().join("install.log");
    let (code, text) = msiexec(&prefix, &["/i", &msi, &url, &tok, &fpr], &log);
    assert_eq!(code, 0, "msiexec /i under Wine failed:\n{text}");
    assert!(exe.exists(), "{} installed", exe.display());
    // The enroll action's command line (with the token) is hidden. Wine's
    // msiexec still lists ENROLL_TOKEN in its closing property dump, which
    // Windows Installer leaves out (MsiHiddenProperties); only that line
    // may name it here.
    let leaks: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&token) && !l.starts_with("Property(S): ENROLL_TOKEN = "))
        .collect();
    assert!(
        leaks.is_empty(),
        "the token in the installer log: {leaks:?}"
    );
    assert!(text.contains("AgentEnroll. Return value 1"), "{text}");
    let id: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&identity).expect("identity.json"))
            .expect("identity json");
    let agent_id = id["agent_id"].as_str().expect("agent_id").to_string();

    // The service, started by the installer through Wine's service manager,
    // reports.
    common::eventually(
        Duration::from_secs(90),
        "the installed agent online",
        || async {
            let v = collector.agent(&agent_id).await?;
            (v["status"] == "online").then_some(())
        },
    )
    .await;

    // A newer version upgrades in place: same identity, no second enrollment.
    let next = work.path().join("forewarn-agent-next-x64.msi");
    let (major, minor, patch) = {
        let v: Vec<u32> = env!("CARGO_PKG_VERSION")
            .split('.')
            .map(|p| p.parse().expect("version part"))
            .collect();
        (v[0], v[1], v[2])
    };
    let built =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/windows/build-msi.sh"))
            .arg(format!("{major}.{minor}.{}", patch + 1))
            .arg(&a.agent_exe)
            .arg(&next)
            .status()
            .expect("build-msi.sh");
    assert!(built.success());
    let log = work.path().join("upgrade.log");
    let (code, text) = msiexec(&prefix, &["/i", &win_path(&next), &url, &tok, &fpr], &log);
    assert_eq!(code, 0, "upgrade under Wine failed:\n{text}");
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&identity).expect("identity.json"))
            .expect("identity json");
    assert_eq!(
        after["agent_id"],
        agent_id.as_str(),
        "the upgrade kept the identity"
    );
    let agents = collector.get("/api/v1/agents").await;
    assert_eq!(
        agents.as_array().map(Vec::len),
        Some(1),
        "one agent after the upgrade: {agents}"
    );

    // Uninstall keeps config and state.
    let log = work.path().join("uninstall.log");
    let (code, text) = msiexec(&prefix, &["/x", &win_path(&next)], &log);
    assert_eq!(code, 0, "msiexec /x under Wine failed:\n{text}");
    wait_for(Duration::from_secs(30), "the exe removed", || {
        (!exe.exists()).then_some(())
    });
    assert!(identity.exists(), "uninstall kept the state");

    // Install again (already enrolled: no new enrollment), then PURGE=1.
    let log = work.path().join("reinstall.log");
    let (code, text) = msiexec(&prefix, &["/i", &win_path(&next)], &log);
    assert_eq!(code, 0, "reinstall under Wine failed:\n{text}");
    let log = work.path().join("purge.log");
    let (code, text) = msiexec(&prefix, &["/x", &win_path(&next), "PURGE=1"], &log);
    assert_eq!(code, 0, "msiexec /x PURGE=1 under Wine failed:\n{text}");
    assert!(!state.exists(), "PURGE=1 removed {}", state.display());
    prefix.kill();
}
