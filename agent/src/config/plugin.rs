//! `[[checks.plugin]]`: Nagios / Monitoring Plugins compatible programs the
//! agent runs (`agent/src/checks/plugin/`). One table per plugin; the item
//! is its `name`.

use std::collections::BTreeMap;

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
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    /// Extra environment variables, on top of the agent's own.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_timeout_secs() -> u64 {
    10
}

fn default_interval_secs() -> u64 {
    60
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
        if c.interval_secs == 0 {
            p.push(format!("{prefix}.interval_secs must be greater than 0"));
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
        assert_eq!((p.timeout_secs, p.interval_secs), (10, 60));
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
            interval_secs: 60,
            env: BTreeMap::new(),
        }
    }

    #[test]
    fn validation_names_every_bad_key() {
        let mut bad = config(&[], 0);
        bad.interval_secs = 0;
        bad.env.insert("A=B".into(), "x".into());
        let mut dup = config(&[""], 5);
        dup.name = "test".into();
        let mut p = Vec::new();
        validate_plugin(&[bad, dup], &mut p);
        let all = p.join("\n");
        for expected in [
            "checks.plugin[0].command must name a program",
            "checks.plugin[0].timeout_secs must be greater than 0",
            "checks.plugin[0].interval_secs must be greater than 0",
            "checks.plugin[0].env.\"A=B\"",
            "checks.plugin[1].name (\"test\") is used twice",
            "checks.plugin[1].command[0] must not be empty",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        let mut p = Vec::new();
        validate_plugin(&[config(&["/bin/true"], 10)], &mut p);
        assert_eq!(p, Vec::<String>::new());
    }
}
