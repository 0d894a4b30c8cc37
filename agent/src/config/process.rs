//! `[[checks.process]]`: how many processes match a name or a command-line
//! pattern, with a minimum and an optional maximum. One table per watched
//! program; the item is the name or the pattern, as written.

use serde::Deserialize;

/// `[[checks.process]]`: one watched program.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    /// Matches the process name exactly (on Linux the kernel's `comm`; on
    /// Windows `.exe` may be left out).
    #[serde(default)]
    pub name: Option<String>,
    /// Matches when this substring occurs in the command line (arguments
    /// joined by spaces, as `ps -o args` shows them).
    #[serde(default)]
    pub cmdline: Option<String>,
    /// CRIT when fewer are running.
    #[serde(default = "default_min_count")]
    pub min_count: u64,
    /// WARN when more are running.
    #[serde(default)]
    pub max_count: Option<u64>,
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
}

/// Longest name or pattern: it is the item, which the collector caps.
pub const MAX_ITEM_BYTES: usize = 256;

fn default_min_count() -> u64 {
    1
}

fn default_interval_secs() -> u64 {
    10
}

impl ProcessConfig {
    /// What the results are about: the name or the pattern, as configured.
    pub fn item(&self) -> &str {
        self.name
            .as_deref()
            .or(self.cmdline.as_deref())
            .unwrap_or_default()
    }
}

/// Every bad value of `[[checks.process]]`, each naming its key.
pub fn validate_process(list: &[ProcessConfig], p: &mut Vec<String>) {
    for (i, c) in list.iter().enumerate() {
        let key = format!("checks.process[{i}]");
        match (&c.name, &c.cmdline) {
            (None, None) => p.push(format!("{key} needs one of name or cmdline")),
            (Some(_), Some(_)) => p.push(format!("{key} must set only one of name and cmdline")),
            _ => {}
        }
        for (field, value) in [("name", &c.name), ("cmdline", &c.cmdline)] {
            match value.as_deref() {
                Some(v) if v.trim().is_empty() => {
                    p.push(format!("{key}.{field} must not be empty"));
                }
                Some(v) if v.len() > MAX_ITEM_BYTES => p.push(format!(
                    "{key}.{field} must be at most {MAX_ITEM_BYTES} bytes (it names the item)"
                )),
                _ => {}
            }
        }
        if let Some(max) = c.max_count
            && max < c.min_count
        {
            p.push(format!(
                "{key}.max_count ({max}) must be at least {key}.min_count ({})",
                c.min_count
            ));
        }
        if c.interval_secs == 0 {
            p.push(format!("{key}.interval_secs must be greater than 0"));
        }
        if let Some(first) = list[..i].iter().position(|o| o.item() == c.item())
            && !c.item().is_empty()
        {
            p.push(format!(
                "{key} watches the same item as checks.process[{first}] ({:?})",
                c.item()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> Vec<ProcessConfig> {
        #[derive(Deserialize)]
        struct Wrapper {
            process: Vec<ProcessConfig>,
        }
        toml::from_str::<Wrapper>(toml_text)
            .expect("parses")
            .process
    }

    #[test]
    fn config_defaults_and_items() {
        let list = config(
            r#"
            [[process]]
            name = "nginx"
            [[process]]
            cmdline = "java -jar app.jar"
            min_count = 2
            max_count = 4
            interval_secs = 30
            "#,
        );
        assert_eq!(list[0].min_count, 1);
        assert_eq!(list[0].max_count, None);
        assert_eq!(list[0].interval_secs, 10);
        assert_eq!(list[0].item(), "nginx");
        assert_eq!(list[1].item(), "java -jar app.jar");
        let mut p = Vec::new();
        validate_process(&list, &mut p);
        assert_eq!(p, Vec::<String>::new());
        assert_eq!(list[1].max_count, Some(4));
    }

    #[test]
    fn bad_entries_name_their_keys() {
        let list = config(
            &r#"
            [[process]]
            min_count = 1
            [[process]]
            name = "a"
            cmdline = "b"
            [[process]]
            name = " "
            min_count = 3
            max_count = 2
            interval_secs = 0
            [[process]]
            name = "a"
            [[process]]
            cmdline = "LONG"
            "#
            .replace("LONG", &"x".repeat(300)),
        );
        let mut p = Vec::new();
        validate_process(&list, &mut p);
        let all = p.join("\n");
        for expected in [
            "checks.process[0] needs one of name or cmdline",
            "checks.process[1] must set only one of name and cmdline",
            "checks.process[2].name must not be empty",
            "checks.process[2].max_count (2) must be at least checks.process[2].min_count (3)",
            "checks.process[2].interval_secs must be greater than 0",
            "checks.process[3] watches the same item as checks.process[1] (\"a\")",
            "checks.process[4].cmdline must be at most 256 bytes",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert!(
            toml::from_str::<ProcessConfig>("nmae = \"x\"").is_err(),
            "unknown keys are errors"
        );
    }
}
