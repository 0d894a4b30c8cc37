//! The Linux packages, as a technician gets them: `tests/packages.sh`
//! builds the .deb and .rpm of agent and collector from the built debug
//! binaries.
//!
//! The .debs go through the real `dpkg` into this machine's real root:
//! install, enroll the installed agent with a real collector and run it as
//! its unit would, upgrade over a changed conffile, remove (state kept),
//! purge (state and config gone). systemd is not PID 1 here, as in most
//! containers: the maintainer scripts must succeed without it, the unit is
//! enabled (its symlink) but nothing starts it, and the test stands in for
//! systemd twice — it hands the state directory to the service user
//! (`StateDirectory=` does that on start) and runs the unit's `ExecStart` as
//! its `User=` with `setpriv`, without the unit's sandboxing.
//!
//! The .rpms are read with Debian's `rpm` (`-qlp`, `--scripts`, file
//! attributes); there is no RPM-based system here to install them on.
//!
//! Both tests are in the `packages` test group (.config/nextest.toml): one
//! at a time, since they share the root and the packaging tools.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::packages::{
    PACKAGES, RootGuard, TEST_VERSION_MARK, build, dpkg, owner_mode, passwd, query, repo_root, run,
    run_ok, status,
};
use common::{Collector, Proc, eventually};

const AGENT_CONF: &str = "/etc/forewarn/agent.toml";
const COLLECTOR_CONF: &str = "/etc/forewarn/collector.toml";
const AGENT_STATE: &str = "/var/lib/forewarn-agent";
const COLLECTOR_STATE: &str = "/var/lib/forewarn-collector";

fn deb(files: &[PathBuf], package: &str) -> String {
    files
        .iter()
        .find(|f| {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(&format!("{package}_")) && name.ends_with(".deb")
        })
        .unwrap_or_else(|| panic!("no {package} .deb in {files:?}"))
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// The value of `key=` in the installed unit of `package`.
fn unit_value(package: &str, key: &str) -> String {
    let unit = std::fs::read_to_string(format!("/usr/lib/systemd/system/{package}.service"))
        .expect("installed unit");
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the {package} unit"))
        .to_string()
}

/// Asserts what a configured install of both packages looks like.
fn assert_installed(version: &str) {
    for package in PACKAGES {
        assert_eq!(
            status(package).as_deref(),
            Some("install ok installed"),
            "{package}"
        );
        assert_eq!(
            query(package, "${Version}").as_deref(),
            Some(version),
            "{package}"
        );
        // The binary.
        let bin = format!("/usr/bin/{package}");
        assert_eq!(
            owner_mode(&bin),
            ("root".into(), "root".into(), 0o755),
            "{bin}"
        );
        let v = run_ok(&bin, &["--version"]);
        assert!(v.starts_with(package), "{bin} --version: {v}");
        // The unit: the one in deploy/, enabled; its User= is the package's
        // own system user, and its ExecStart the installed binary.
        let unit = format!("/usr/lib/systemd/system/{package}.service");
        assert_eq!(
            std::fs::read_to_string(&unit).expect("unit"),
            repo_file(&format!("deploy/{package}.service")),
            "{unit}"
        );
        assert_eq!(
            owner_mode(&unit),
            ("root".into(), "root".into(), 0o644),
            "{unit}"
        );
        assert!(
            unit_value(package, "ExecStart").starts_with(&format!("{bin} --config /etc/forewarn/")),
            "{package} ExecStart"
        );
        let wants = format!("/etc/systemd/system/multi-user.target.wants/{package}.service");
        assert!(
            std::fs::read_link(&wants).is_ok(),
            "{package} not enabled: no {wants}"
        );
        let user = unit_value(package, "User");
        assert_eq!(user, package, "the unit's User=");
        assert_eq!(unit_value(package, "Group"), package, "the unit's Group=");
        let pw = passwd(&user).unwrap_or_else(|| panic!("no user {user}"));
        let uid: u32 = pw[2].parse().expect("uid");
        assert!(uid < 1000, "{user} is not a system user: uid {uid}");
        assert_eq!(pw[5], format!("/var/lib/{package}"), "{user} home");
        assert_eq!(pw[6], "/usr/sbin/nologin", "{user} shell");
        // Its config: a conffile, readable by the service and root only.
        let conf = format!("/etc/forewarn/{}.toml", &package["forewarn-".len()..]);
        assert_eq!(
            owner_mode(&conf),
            ("root".into(), user.clone(), 0o640),
            "{conf}"
        );
        let conffiles = query(package, "${Conffiles}").expect("conffiles");
        assert!(
            conffiles.contains(&conf),
            "{package} conffiles: {conffiles}"
        );
        let other = run("runuser", &["-u", "nobody", "--", "cat", &conf]);
        assert!(!other.status.success(), "nobody can read {conf}");
    }
}

/// Runs the installed unit's `ExecStart` as its `User=` and `Group=` (what
/// systemd would start), its stderr in `log`. `setpriv` execs the command,
/// so a SIGTERM reaches the agent itself, as systemd's would.
fn run_as_unit(package: &str, log: &Path) -> Proc {
    let exec = unit_value(package, "ExecStart");
    let user = unit_value(package, "User");
    let group = unit_value(package, "Group");
    let child = Command::new("setpriv")
        .arg(format!("--reuid={user}"))
        .arg(format!("--regid={group}"))
        .args(["--init-groups", "--"])
        .args(exec.split_whitespace())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("spawn the unit's command");
    Proc {
        child,
        log: log.to_path_buf(),
    }
}

/// The installed agent enrolls with the packaged config (no `--config`:
/// the default path), then runs as its unit would and reports.
async fn enroll_and_run_installed_agent(work: &Path) {
    let collector = Collector::start();
    let (token, fp) = collector.token("default", &[]);
    let url = collector.url();
    run_ok(
        "/usr/bin/forewarn-agent",
        &[
            "enroll",
            "--collector",
            &url,
            "--token",
            &token,
            "--ca-fingerprint",
            &fp,
        ],
    );
    let identity: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{AGENT_STATE}/identity.json")).expect("identity.json"),
    )
    .expect("identity json");
    let agent_id = identity["agent_id"].as_str().expect("agent_id").to_string();
    // The unit's condition now holds.
    assert_eq!(
        unit_value("forewarn-agent", "ConditionPathExists"),
        format!("{AGENT_STATE}/identity.json")
    );
    // systemd's StateDirectory= on start: the state becomes the user's.
    run_ok(
        "chown",
        &["-R", "forewarn-agent:forewarn-agent", AGENT_STATE],
    );
    let mut agent = run_as_unit("forewarn-agent", &work.join("agent.log"));
    eventually(
        Duration::from_secs(30),
        "installed agent online",
        || async {
            let v = collector.agent(&agent_id).await?;
            (v["status"] == "online").then_some(())
        },
    )
    .await;
    let exit = agent.terminate(Duration::from_secs(10));
    assert!(
        exit.is_some_and(|s| s.success()),
        "agent did not stop cleanly on SIGTERM: {exit:?}\n{}",
        agent.log_text()
    );
}

/// The installed collector's CLI, as its service user, on the packaged
/// config and the default state dir (made as `StateDirectory=` makes it).
fn use_installed_collector() {
    run_ok(
        "install",
        &[
            "-d",
            "-o",
            "forewarn-collector",
            "-g",
            "forewarn-collector",
            "-m",
            "0700",
            COLLECTOR_STATE,
        ],
    );
    let cli = |args: &[&str]| {
        let mut full = vec![
            "-u",
            "forewarn-collector",
            "--",
            "/usr/bin/forewarn-collector",
            "--config",
            COLLECTOR_CONF,
        ];
        full.extend_from_slice(args);
        run_ok("runuser", &full)
    };
    cli(&["tenant", "add", "pkgtest"]);
    assert!(cli(&["tenant", "list"]).contains("pkgtest"));
    let db = format!("{COLLECTOR_STATE}/forewarn.db");
    assert_eq!(owner_mode(&db).0, "forewarn-collector", "{db}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deb_install_enroll_upgrade_remove_purge() {
    let _guard = RootGuard::take();
    let work = tempfile::tempdir().expect("tempdir");
    let (v1, v2) = (
        format!("0.0.1-{TEST_VERSION_MARK}.1"),
        format!("0.0.1-{TEST_VERSION_MARK}.2"),
    );
    let old = build(&work.path().join("v1"), &v1, "deb");
    let new = build(&work.path().join("v2"), &v2, "deb");
    let (deb_v1, deb_v2) = (v1.replace('-', "~") + "-1", v2.replace('-', "~") + "-1");

    // Install: no systemd runs, and nothing prompts.
    dpkg(&[
        "-i",
        &deb(&old, "forewarn-agent"),
        &deb(&old, "forewarn-collector"),
    ]);
    assert_installed(&deb_v1);
    assert_eq!(
        std::fs::read_to_string(AGENT_CONF).expect("agent.toml"),
        repo_file("deploy/agent.example.toml")
    );
    assert_eq!(
        std::fs::read_to_string(COLLECTOR_CONF).expect("collector.toml"),
        repo_file("deploy/collector.example.toml")
    );
    enroll_and_run_installed_agent(work.path()).await;
    use_installed_collector();

    // An admin changes the agent's config; the upgrade keeps it, and the state.
    let changed = format!(
        "{}\n# changed by the admin: kept across upgrades\n",
        std::fs::read_to_string(AGENT_CONF).expect("agent.toml")
    );
    std::fs::write(AGENT_CONF, &changed).expect("change agent.toml");
    dpkg(&[
        "-i",
        &deb(&new, "forewarn-agent"),
        &deb(&new, "forewarn-collector"),
    ]);
    assert_installed(&deb_v2);
    assert_eq!(
        std::fs::read_to_string(AGENT_CONF).expect("agent.toml"),
        changed
    );
    for stray in [".dpkg-dist", ".dpkg-new", ".dpkg-old"] {
        assert!(!Path::new(&format!("{AGENT_CONF}{stray}")).exists());
    }
    assert!(Path::new(&format!("{AGENT_STATE}/identity.json")).exists());

    // Remove: programs and units go; config and state stay.
    dpkg(&["-r", "forewarn-agent", "forewarn-collector"]);
    for package in PACKAGES {
        assert_eq!(
            status(package).as_deref(),
            Some("deinstall ok config-files"),
            "{package}"
        );
        assert!(!Path::new(&format!("/usr/bin/{package}")).exists());
        assert!(!Path::new(&format!("/usr/lib/systemd/system/{package}.service")).exists());
    }
    assert_eq!(
        std::fs::read_to_string(AGENT_CONF).expect("agent.toml kept"),
        changed
    );
    assert!(Path::new(COLLECTOR_CONF).exists());
    assert!(Path::new(&format!("{AGENT_STATE}/identity.json")).exists());
    assert!(Path::new(&format!("{AGENT_STATE}/agent.key")).exists());
    assert!(Path::new(&format!("{COLLECTOR_STATE}/forewarn.db")).exists());

    // Purge: config, state and the unit's enablement go; the users stay.
    dpkg(&["-P", "forewarn-agent", "forewarn-collector"]);
    for package in PACKAGES {
        assert_eq!(status(package), None, "{package} still known to dpkg");
        for gone in [
            format!("/var/lib/{package}"),
            format!("/etc/systemd/system/multi-user.target.wants/{package}.service"),
            format!("/etc/systemd/system/{package}.service"),
        ] {
            assert!(
                std::fs::symlink_metadata(&gone).is_err(),
                "{gone} left after purge"
            );
        }
        assert!(passwd(package).is_some(), "{package} user removed on purge");
    }
    assert!(!Path::new("/etc/forewarn").exists(), "/etc/forewarn left");
}

/// `rpm -qp --qf` over every file of `rpm`: path, mode, owner, group, flags.
fn rpm_files(rpm: &str) -> Vec<String> {
    run_ok(
        "rpm",
        &[
            "-qp",
            "--qf",
            "[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILEFLAGS:fflags}\n]",
            rpm,
        ],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn rpm_contents_and_scriptlets() {
    let work = tempfile::tempdir().expect("tempdir");
    let files = build(work.path(), "0.0.1", "rpm");
    assert_eq!(files.len(), 2, "{files:?}");
    for (package, short) in [
        ("forewarn-agent", "agent"),
        ("forewarn-collector", "collector"),
    ] {
        let rpm = work.path().join(format!("{package}-0.0.1-1.x86_64.rpm"));
        let rpm = rpm.to_str().expect("utf-8 path");
        assert!(files.iter().any(|f| f.to_str() == Some(rpm)), "{files:?}");
        assert_eq!(
            run_ok(
                "rpm",
                &["-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}", rpm]
            ),
            format!("{package} 0.0.1 1 x86_64")
        );
        let listed = run_ok("rpm", &["-qlp", rpm]);
        let mut listed: Vec<&str> = listed.lines().collect();
        listed.sort_unstable();
        let conf = format!("/etc/forewarn/{short}.toml");
        let unit = format!("/usr/lib/systemd/system/{package}.service");
        let bin = format!("/usr/bin/{package}");
        let example = format!("/usr/share/doc/{package}/examples/{short}.example.toml");
        assert_eq!(listed, [&conf, &bin, &unit, &example], "rpm -qlp {rpm}");
        let attrs = rpm_files(rpm);
        for want in [
            format!("{bin} -rwxr-xr-x root root "),
            format!("{unit} -rw-r--r-- root root "),
            // %config(noreplace): an admin's change survives upgrades.
            format!("{conf} -rw-r----- root {package} cn"),
        ] {
            assert!(
                attrs.iter().any(|l| l.starts_with(&want)),
                "no {want:?} in {attrs:#?}"
            );
        }
        // The scriptlets are the ones in deploy/rpm/, one per phase.
        let scripts = run_ok("rpm", &["-qp", "--scripts", rpm]);
        for (phase, file) in [
            ("preinstall", "pre"),
            ("postinstall", "post"),
            ("preuninstall", "preun"),
            ("postuninstall", "postun"),
        ] {
            assert!(
                scripts.contains(&format!("{phase} scriptlet")),
                "no {phase} scriptlet in {rpm}:\n{scripts}"
            );
            let body = repo_file(&format!("deploy/rpm/{package}/{file}.sh"));
            assert!(
                scripts.contains(body.trim_end()),
                "{rpm} {phase} is not deploy/rpm/{package}/{file}.sh:\n{scripts}"
            );
        }
        assert!(scripts.contains(&format!("useradd --system --gid {package}")));
        let requires = run_ok("rpm", &["-qp", "--requires", rpm]);
        assert!(requires.contains("/usr/sbin/useradd"), "{requires}");
    }
}

/// The macOS pieces that can be checked without a Mac: the launchd plist
/// parses (Python's plistlib, as `plutil -lint` would on a Mac) and names
/// the paths docs/macos.md installs; the .pkg scripts are valid sh; the
/// recipe's `sed` finds the one `state_dir` line it rewrites.
#[test]
fn macos_plist_and_pkg_scripts() {
    let plist = repo_root().join("deploy/macos/com.forewarn.agent.plist");
    let json = run_ok(
        "python3",
        &[
            "-c",
            "import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))",
            plist.to_str().expect("utf-8 path"),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&json).expect("plist as json");
    assert_eq!(v["Label"], "com.forewarn.agent");
    assert_eq!(
        v["ProgramArguments"],
        serde_json::json!([
            "/usr/local/bin/forewarn-agent",
            "--config",
            "/etc/forewarn/agent.toml",
            "run"
        ])
    );
    let state_dir = "/Library/Application Support/Forewarn";
    assert_eq!(
        v["KeepAlive"]["PathState"][format!("{state_dir}/identity.json")],
        true,
        "{v}"
    );
    for key in ["StandardOutPath", "StandardErrorPath"] {
        assert_eq!(v[key], "/Library/Logs/Forewarn/agent.log", "{key}");
    }
    let docs = repo_file("docs/macos.md");
    assert!(
        docs.contains(&format!("s|^state_dir = .*|state_dir = \"{state_dir}\"|")),
        "docs/macos.md's recipe sets another state_dir than the plist watches"
    );
    let example = repo_file("deploy/agent.example.toml");
    assert_eq!(
        example
            .lines()
            .filter(|l| l.starts_with("state_dir = "))
            .count(),
        1,
        "the recipe's sed must find exactly one state_dir line"
    );
    for script in ["preinstall", "postinstall"] {
        let path = repo_root().join("deploy/macos/scripts").join(script);
        run_ok("sh", &["-n", path.to_str().expect("utf-8 path")]);
    }
}
