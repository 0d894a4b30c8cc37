//! Bad config files: a clear error that names the key, and no process left running.

mod common;

use std::process::Command;

use common::bin;

fn run(binary: &str, config_text: &str, args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, config_text).expect("write");
    let out = Command::new(bin(binary))
        .arg("--config")
        .arg(&path)
        .args(args)
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn collector_names_unknown_and_bad_keys() {
    let (code, err) = run(
        "forewarn-collector",
        "[http]\nlisten = \"127.0.0.1:9\"\n",
        &["serve"],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown field") && err.contains("listen"),
        "{err}"
    );
    let (code, err) = run(
        "forewarn-collector",
        "[grpc]\nmax_message_bytes = 3\n",
        &["serve"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("grpc.max_message_bytes"), "{err}");
}

#[test]
fn agent_names_unknown_and_bad_keys() {
    let (code, err) = run(
        "forewarn-agent",
        "[checks.disk]\ncrit_percent = 5.0\n",
        &["check", "--once"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("crit_percent"), "{err}");
    let (code, err) = run(
        "forewarn-agent",
        "[checks.disk]\nwarn_used_percent = 99.0\ncrit_used_percent = 95.0\n",
        &["check", "--once"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("checks.disk.warn_used_percent"), "{err}");
    let (code, err) = run(
        "forewarn-agent",
        "interval_secs = \"soon\"\n",
        &["check", "--once"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("interval_secs"), "{err}");
}

#[test]
fn missing_config_file_is_named() {
    let out = Command::new(bin("forewarn-collector"))
        .args(["--config", "/nonexistent/forewarn.toml", "serve"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/forewarn.toml"));
}

#[test]
fn collector_names_a_bad_or_unreachable_store() {
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = format!("data_dir = {:?}\n", data.path());
    // Not a store url: the key is named, and the password is not echoed.
    let (code, err) = run(
        "forewarn-collector",
        &format!("{data_dir}[store]\nurl = \"mysql://me:hunter2@db/f\"\n"),
        &["serve"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("[store] url"), "{err}");
    assert!(!err.contains("hunter2"), "password in the error: {err}");
    // Nothing listens on port 1: the error names the host and port.
    let kek = data.path().join("kek");
    let (code, err) = run(
        "forewarn-collector",
        &format!(
            "{data_dir}[pki]\nkek_file = {kek:?}\n\
             [store]\nurl = \"postgres://forewarn@127.0.0.1:1/forewarn\"\n"
        ),
        &["serve"],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("127.0.0.1:1") && err.contains("PostgreSQL"),
        "{err}"
    );
}

#[test]
fn a_postgres_store_needs_a_kek_file_and_the_cli_makes_one() {
    let data = tempfile::tempdir().expect("tempdir");
    let postgres = format!(
        "data_dir = {:?}\n[store]\nurl = \"postgres://forewarn@127.0.0.1:1/forewarn\"\n",
        data.path()
    );
    // No kek_file: the key is named, and how to make one.
    let (code, err) = run("forewarn-collector", &postgres, &["serve"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("[pki] kek_file") && err.contains("ca kek-create"),
        "{err}"
    );
    // `ca kek-create` works before the config does, and never overwrites.
    let kek = data.path().join("kek");
    let kek_arg = kek.to_str().expect("utf-8 path");
    let (code, err) = run(
        "forewarn-collector",
        &postgres,
        &["ca", "kek-create", kek_arg],
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&kek).expect("kek written");
    assert_eq!(text.trim().len(), 64, "{text}");
    assert!(text.trim().chars().all(|c| c.is_ascii_hexdigit()), "{text}");
    let (code, _) = run(
        "forewarn-collector",
        &postgres,
        &["ca", "kek-create", kek_arg],
    );
    assert_ne!(
        code, 0,
        "an existing key-encryption key must not be overwritten"
    );
    assert_eq!(std::fs::read_to_string(&kek).expect("kek"), text);
}
