//! `[[checks.plugin]]`: Nagios / Monitoring Plugins compatible programs the
//! agent runs (`agent/src/checks/plugin/`). One table per plugin; the item
//! is its `name`. The run interval is `interval_secs` or, for a sub-second
//! one, `interval_ms` (one of them).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::checks::limits::validate_name;

/// `[[checks.plugin]]`: one plugin to run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The item the results are reported under.
    pub name: String,
    /// Program and arguments, run directly (no shell).
    pub command: Vec<String>,
    /// Killed and reported UNKNOWN after this long.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Run every this many seconds (default 60); or set `interval_ms`.
    #[serde(default)]
    pub interval_secs: Option<u64>,
    /// Run every this many milliseconds, at least [`MIN_INTERVAL_MS`]: for a
    /// plugin whose failure must be seen within a second. Each run is a
    /// fork and exec (about a millisecond of CPU for a small program, more
    /// for an interpreter), so 250 ms costs four of them a second.
    #[serde(default)]
    pub interval_ms: Option<u64>,
    /// Extra environment variables, on top of the agent's own.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_timeout_secs() -> u64 {
    10
}

/// The run interval when neither key is set.
const DEFAULT_INTERVAL_SECS: u64 = 60;

/// The shortest `interval_ms`: below it the fork/exec cost of the runs
/// themselves becomes what the agent spends its CPU on.
pub const MIN_INTERVAL_MS: u64 = 100;

impl PluginConfig {
    /// How often the plugin runs.
    pub fn interval(&self) -> Duration {
        match (self.interval_ms, self.interval_secs) {
            (Some(ms), _) => Duration::from_millis(ms),
            (None, Some(secs)) => Duration::from_secs(secs),
            (None, None) => Duration::from_secs(DEFAULT_INTERVAL_SECS),
        }
    }
}

/// Every problem in `[[checks.plugin]]`, each naming its key.
pub fn validate_plugin(plugins: &[PluginConfig], p: &mut Vec<String>) {
    let mut seen = Vec::new();
    for (i, c) in plugins.iter().enumerate() {
        let prefix = format!("checks.plugin[{i}]");
        validate_name(&prefix, &c.name, &mut seen, p);
        match c.command.first() {
            None => p.push(format!("{prefix}.command must name a program")),
            Some(program) if program.is_empty() => {
                p.push(format!("{prefix}.command[0] must not be empty"));
            }
            Some(_) => {}
        }
        if c.command.iter().any(|a| a.contains('\0')) {
            p.push(format!("{prefix}.command must not contain NUL bytes"));
        }
        if c.timeout_secs == 0 {
            p.push(format!("{prefix}.timeout_secs must be greater than 0"));
        }
        match (c.interval_secs, c.interval_ms) {
            (Some(_), Some(_)) => p.push(format!(
                "{prefix} must set only one of interval_secs and interval_ms"
            )),
            (Some(0), None) => p.push(format!("{prefix}.interval_secs must be greater than 0")),
            (None, Some(ms)) if ms < MIN_INTERVAL_MS => p.push(format!(
                "{prefix}.interval_ms ({ms}) must be at least {MIN_INTERVAL_MS}"
            )),
            _ => {}
        }
        for (key, value) in &c.env {
            if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
                p.push(format!(
                    "{prefix}.env.{key:?} must be a non-empty name without '=' or NUL"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// The commented `[[checks.plugin]]`, `tcp`, `http` and `certificate`
    /// examples in deploy/agent.example.toml, uncommented.
    fn example_blocks() -> String {
        let text = include_str!("../../../deploy/agent.example.toml");
        let mut out = String::new();
        let mut inside = false;
        for line in text.lines() {
            let kind = line.strip_prefix("# [[checks.");
            if let Some(kind) = kind {
                inside = ["plugin]]", "tcp]]", "http]]", "certificate]]"].contains(&kind);
            }
            match line.strip_prefix("# ") {
                Some(toml) if inside && !line.is_empty() => {
                    out.push_str(toml);
                    out.push('\n');
                }
                _ => inside = false,
            }
        }
        out
    }

    #[test]
    fn example_blocks_parse_and_validate() {
        let text = example_blocks();
        let config = Config::parse(&text, std::path::Path::new("example")).expect("parses");
        assert_eq!(config.validate(), Vec::<String>::new(), "{text}");
        let c = &config.checks;
        assert_eq!(
            (
                c.plugin.len(),
                c.tcp.len(),
                c.http.len(),
                c.certificate.len()
            ),
            (1, 1, 1, 1),
            "{text}"
        );
        assert_eq!(c.plugin[0].timeout_secs, default_timeout_secs());
        assert_eq!(c.plugin[0].env.get("LC_ALL").map(String::as_str), Some("C"));
    }

    #[test]
    fn defaults_fill_everything_but_name_and_command() {
        let text = "[[checks.plugin]]\nname = \"x\"\ncommand = [\"/bin/true\"]\n";
        let config = Config::parse(text, std::path::Path::new("t")).expect("parses");
        let p = &config.checks.plugin[0];
        assert_eq!(p.timeout_secs, 10);
        assert_eq!(p.interval(), Duration::from_secs(60));
        assert!(p.env.is_empty());
        let err = Config::parse(
            "[[checks.plugin]]\nname = \"x\"\ncomand = []\n",
            std::path::Path::new("t"),
        )
        .expect_err("typo")
        .to_string();
        assert!(err.contains("comand"), "{err}");
    }

    fn config(command: &[&str], timeout_secs: u64) -> PluginConfig {
        PluginConfig {
            name: "test".into(),
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            timeout_secs,
            interval_secs: Some(60),
            interval_ms: None,
            env: BTreeMap::new(),
        }
    }

    #[test]
    fn validation_names_every_bad_key() {
        let mut bad = config(&[], 0);
        bad.interval_secs = Some(0);
        bad.env.insert("A=B".into(), "x".into());
        let mut dup = config(&[""], 5);
        dup.name = "test".into();
        dup.interval_ms = Some(500);
        let mut fast = config(&["/bin/true"], 1);
        fast.name = "fast".into();
        fast.interval_secs = None;
        fast.interval_ms = Some(MIN_INTERVAL_MS - 1);
        let mut p = Vec::new();
        validate_plugin(&[bad, dup, fast], &mut p);
        let all = p.join("\n");
        for expected in [
            "checks.plugin[0].command must name a program",
            "checks.plugin[0].timeout_secs must be greater than 0",
            "checks.plugin[0].interval_secs must be greater than 0",
            "checks.plugin[0].env.\"A=B\"",
            "checks.plugin[1].name (\"test\") is used twice",
            "checks.plugin[1].command[0] must not be empty",
            "checks.plugin[1] must set only one of interval_secs and interval_ms",
            "checks.plugin[2].interval_ms (99) must be at least 100",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(p.len(), 8, "{all}");
        let mut p = Vec::new();
        validate_plugin(&[config(&["/bin/true"], 10)], &mut p);
        assert_eq!(p, Vec::<String>::new());
    }

    #[test]
    fn interval_ms_gives_a_sub_second_interval() {
        let text =
            "[[checks.plugin]]\nname = \"x\"\ncommand = [\"/bin/true\"]\ninterval_ms = 250\n";
        let config = Config::parse(text, std::path::Path::new("t")).expect("parses");
        assert_eq!(config.validate(), Vec::<String>::new());
        assert_eq!(
            config.checks.plugin[0].interval(),
            Duration::from_millis(250)
        );
        let text =
            "[[checks.plugin]]\nname = \"x\"\ncommand = [\"/bin/true\"]\ninterval_secs = 5\n";
        let config = Config::parse(text, std::path::Path::new("t")).expect("parses");
        assert_eq!(config.checks.plugin[0].interval(), Duration::from_secs(5));
        let err = Config::parse(
            "[[checks.plugin]]\nname = \"x\"\ncommand = [\"/bin/true\"]\ninterval_ms = 0.5\n",
            std::path::Path::new("t"),
        )
        .expect_err("fractional ms")
        .to_string();
        assert!(err.contains("interval_ms"), "{err}");
    }
}
