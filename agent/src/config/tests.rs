//! Tests of the agent config: parsing, defaults and the errors that name their key.

use super::*;

fn parse(text: &str) -> Result<Config> {
    Config::parse(text, Path::new("/etc/forewarn/agent.toml"))
}

#[test]
fn defaults_are_valid() {
    assert_eq!(Config::default().validate(), Vec::<String>::new());
    assert_eq!(parse("").expect("empty file parses"), Config::default());
}

#[test]
fn example_file_parses_to_the_defaults() {
    let text = include_str!("../../../deploy/agent.example.toml");
    let config = parse(text).expect("example parses");
    assert_eq!(config.validate(), Vec::<String>::new());
    assert_eq!(config, Config::default());
}

#[test]
fn unknown_key_names_the_key_and_file() {
    let err = parse("[checks.disk]\nwarn_used_procent = 80.0\n")
        .expect_err("unknown key")
        .to_string();
    assert!(err.contains("warn_used_procent"), "{err}");
    assert!(err.contains("/etc/forewarn/agent.toml"), "{err}");
    assert!(err.contains("line 2"), "{err}");

    let err = parse("intervall_secs = 5\n")
        .expect_err("unknown key")
        .to_string();
    assert!(err.contains("intervall_secs"), "{err}");
}

#[test]
fn mistyped_value_names_the_key_path() {
    let err = parse("interval_secs = \"soon\"\n")
        .expect_err("bad type")
        .to_string();
    assert!(err.contains("line 1: interval_secs: invalid type"), "{err}");
    let err = parse("[checks.disk.overrides.\"/var\"]\nwarn_used_percent = \"x\"\n")
        .expect_err("bad type")
        .to_string();
    assert!(
        err.contains("checks.disk.overrides./var.warn_used_percent"),
        "{err}"
    );
    let err = parse("interval_secs = \n")
        .expect_err("bad toml")
        .to_string();
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn unknown_check_kind_lists_known_kinds() {
    let err = parse("[checks.dsk]\n")
        .expect_err("unknown kind")
        .to_string();
    assert!(
        err.contains("dsk") && err.contains("disk") && err.contains("memory"),
        "{err}"
    );
}

#[test]
fn bad_values_are_all_reported_with_their_keys() {
    let config = parse(
        r#"
        interval_secs = 0
        [checks.disk]
        warn_used_percent = 96.0
        crit_used_percent = 95.0
        warn_free_bytes = 10
        crit_free_bytes = 20
        [checks.disk.overrides."/var"]
        crit_used_percent = 101.0
        [checks.cpu]
        sample_interval_secs = 10
        window_secs = 5
        "#,
    )
    .expect("parses");
    let problems = config.validate();
    let all = problems.join("\n");
    for expected in [
        "interval_secs must be greater than 0",
        "checks.disk.warn_used_percent (96) must be below checks.disk.crit_used_percent (95)",
        "checks.disk.warn_free_bytes (10) must be above checks.disk.crit_free_bytes (20)",
        "checks.disk.overrides.\"/var\".crit_used_percent (101) must be within 0..=100",
        "checks.cpu.window_secs (5) must be at least checks.cpu.sample_interval_secs (10)",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
}

#[test]
fn overrides_replace_only_the_given_keys() {
    let config = parse(
        r#"
        [checks.disk]
        warn_free_bytes = 1000
        [checks.disk.overrides."/var"]
        warn_used_percent = 90.0
        "#,
    )
    .expect("parses");
    let t = config.checks.disk.thresholds_for("/var");
    assert_eq!(t.warn_used_percent, 90.0);
    assert_eq!(t.crit_used_percent, 95.0);
    assert_eq!(t.warn_free_bytes, Some(1000));
    assert_eq!(
        config.checks.disk.thresholds_for("/").warn_used_percent,
        85.0
    );
}

#[test]
fn missing_explicit_file_names_the_path() {
    let err = Config::load(Some(Path::new("/nonexistent/forewarn.toml")))
        .expect_err("missing file")
        .to_string();
    assert!(err.contains("/nonexistent/forewarn.toml"), "{err}");
}

#[test]
fn window_sample_count() {
    assert_eq!(CpuConfig::default().window().samples(), 60);
    let w = WindowSettings {
        sample_interval: Duration::from_secs(5),
        window: Duration::from_secs(5),
        warn_percent: 1.0,
        crit_percent: 2.0,
    };
    assert_eq!(w.samples(), 1);
}
