//! `[[checks.log]]`: a pattern in a log file. One table per (file, pattern):
//! a matching line raises WARN or CRIT, which holds for `hold_secs` after
//! the last match and then returns to OK.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::backup::{absolute_path, unique_items};

/// One followed log file and the pattern that raises it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The item the results are about; default: `path`.
    #[serde(default)]
    pub name: Option<String>,
    /// The log file, followed like `tail -F` (rotation-safe).
    pub path: PathBuf,
    /// A regular expression (Rust `regex` syntax) matched against each line.
    pub pattern: String,
    /// The state a match raises.
    #[serde(default)]
    pub state: LogMatchState,
    /// How long a match keeps the state raised.
    #[serde(default = "default_hold_secs")]
    pub hold_secs: u64,
    /// Re-check period (hold expiry, a file that appears or rotates
    /// unseen); appended lines are read at once through a file watch.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
}

/// `state = "warn" | "crit"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogMatchState {
    Warn,
    #[default]
    Crit,
}

fn default_hold_secs() -> u64 {
    600
}

fn default_interval_secs() -> u64 {
    10
}

impl LogConfig {
    /// What the results are about: `name`, else the file's path.
    pub fn item(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// The compiled pattern, its size bounded (a pathological pattern is
    /// a config error, not a memory hog).
    pub fn regex(&self) -> Result<regex::Regex, regex::Error> {
        regex::RegexBuilder::new(&self.pattern)
            .size_limit(1 << 20)
            .dfa_size_limit(256 << 10)
            .build()
    }

    pub fn hold(&self) -> Duration {
        Duration::from_secs(self.hold_secs)
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs)
    }
}

/// Every bad value of every `[[checks.log]]` table, each naming its key.
pub fn validate_log(logs: &[LogConfig], p: &mut Vec<String>) {
    for (i, l) in logs.iter().enumerate() {
        let key = format!("checks.log[{i}]");
        if l.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            p.push(format!("{key}.name must not be empty"));
        }
        absolute_path(p, &format!("{key}.path"), &l.path);
        if l.pattern.is_empty() {
            p.push(format!("{key}.pattern must not be empty"));
        } else if let Err(e) = l.regex() {
            // regex's own message spans lines (it draws a caret).
            let e = e.to_string().replace('\n', " ");
            p.push(format!("{key}.pattern is not a valid regex: {e}"));
        }
        if l.hold_secs == 0 {
            p.push(format!("{key}.hold_secs must be greater than 0"));
        }
        if l.interval_secs == 0 {
            p.push(format!("{key}.interval_secs must be greater than 0"));
        }
    }
    unique_items(p, "checks.log", logs.iter().map(LogConfig::item));
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    #[test]
    fn defaults_fill_everything_but_path_and_pattern() {
        let config = Config::parse(
            "[[checks.log]]\npath = \"/var/log/syslog\"\npattern = \"I/O error\"\n",
            Path::new("agent.toml"),
        )
        .expect("parses");
        let l = &config.checks.log[0];
        assert_eq!(l.item(), "/var/log/syslog");
        assert_eq!(l.state, LogMatchState::Crit);
        assert_eq!(l.hold_secs, 600);
        assert_eq!(l.interval_secs, 10);
        assert!(config.validate().is_empty(), "{:?}", config.validate());
    }

    #[test]
    fn an_oversized_pattern_is_a_config_error() {
        let mut l = Config::parse(
            "[[checks.log]]\npath = \"/x\"\npattern = \"\\\\w{1000}\"\n",
            Path::new("agent.toml"),
        )
        .expect("parses")
        .checks
        .log
        .remove(0);
        let e = l.regex().expect_err("too big").to_string();
        assert!(e.contains("size limit"), "{e}");
        l.pattern = r"FATAL|(?i)out of memory|status=5\d\d".to_owned();
        assert!(l.regex().is_ok());
    }

    #[test]
    fn state_must_be_warn_or_crit() {
        let err = Config::parse(
            "[[checks.log]]\npath = \"/x\"\npattern = \"e\"\nstate = \"critical\"\n",
            Path::new("agent.toml"),
        )
        .expect_err("bad state")
        .to_string();
        assert!(
            err.contains("checks.log[0].state") && err.contains("crit"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_their_keys() {
        let config = Config::parse(
            r#"
            [[checks.log]]
            name = " "
            path = "app.log"
            pattern = "(unclosed"
            hold_secs = 0
            interval_secs = 0
            [[checks.log]]
            path = "/var/log/a"
            pattern = ""
            [[checks.log]]
            path = "/var/log/a"
            pattern = "x"
            "#,
            Path::new("agent.toml"),
        )
        .expect("parses");
        let all = config.validate().join("\n");
        for expected in [
            "checks.log[0].name must not be empty",
            "checks.log[0].path (\"app.log\") must be an absolute path",
            "checks.log[0].pattern is not a valid regex",
            "checks.log[0].hold_secs must be greater than 0",
            "checks.log[0].interval_secs must be greater than 0",
            "checks.log[1].pattern must not be empty",
            "checks.log[2].name: item \"/var/log/a\" is already used by checks.log[1]",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        // One line per problem: regex's multi-line message is flattened.
        assert_eq!(all.lines().count(), 7, "{all}");
    }
}
