//! `[[checks.backup]]`: is there a fresh, complete backup? One table per
//! backup set: where its files land, which names count, how old and how
//! small they may be, and an optional status file the backup job writes.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// One watched backup set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// The item the results are about; default: `dir`.
    #[serde(default)]
    pub name: Option<String>,
    /// Where the backup job puts its files.
    pub dir: PathBuf,
    /// File-name pattern of the backup files (`*`, `?`, `[a-z]`).
    #[serde(default = "default_glob")]
    pub glob: String,
    /// CRIT when the newest backup is older than this.
    #[serde(default = "default_max_age_hours")]
    pub max_age_hours: u64,
    /// CRIT when the newest backup is smaller than this.
    #[serde(default = "default_min_bytes")]
    pub min_bytes: u64,
    /// WARN when the newest backup is smaller than the one before by more
    /// than this share.
    #[serde(default = "default_max_shrink_percent")]
    pub max_shrink_percent: f64,
    /// Optional status file written by the backup job (JSON or text).
    #[serde(default)]
    pub status_file: Option<PathBuf>,
    /// Staleness re-check period; new files are seen at once through a
    /// file watch.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
}

fn default_glob() -> String {
    "*".to_owned()
}

fn default_max_age_hours() -> u64 {
    26
}

fn default_min_bytes() -> u64 {
    1
}

fn default_max_shrink_percent() -> f64 {
    50.0
}

fn default_interval_secs() -> u64 {
    300
}

impl BackupConfig {
    /// What the results are about: `name`, else the directory.
    pub fn item(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.dir.display().to_string())
    }

    pub fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_age_hours.saturating_mul(3600))
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs)
    }
}

/// Every bad value of every `[[checks.backup]]` table, each naming its key.
pub fn validate_backup(backups: &[BackupConfig], p: &mut Vec<String>) {
    for (i, b) in backups.iter().enumerate() {
        let key = format!("checks.backup[{i}]");
        if b.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            p.push(format!("{key}.name must not be empty"));
        }
        absolute_path(p, &format!("{key}.dir"), &b.dir);
        if let Some(status) = &b.status_file {
            absolute_path(p, &format!("{key}.status_file"), status);
        }
        if b.glob.is_empty() {
            p.push(format!("{key}.glob must not be empty"));
        } else if b.glob.contains(['/', '\\']) {
            p.push(format!(
                "{key}.glob ({:?}) is matched against file names and must not contain a path separator",
                b.glob
            ));
        } else if let Err(e) = glob::Pattern::new(&b.glob) {
            p.push(format!(
                "{key}.glob ({:?}) is not a valid pattern: {e}",
                b.glob
            ));
        }
        if b.max_age_hours == 0 {
            p.push(format!("{key}.max_age_hours must be greater than 0"));
        }
        if !(0.0..=100.0).contains(&b.max_shrink_percent) {
            p.push(format!(
                "{key}.max_shrink_percent ({}) must be within 0..=100",
                b.max_shrink_percent
            ));
        }
        if b.interval_secs == 0 {
            p.push(format!("{key}.interval_secs must be greater than 0"));
        }
    }
    unique_items(p, "checks.backup", backups.iter().map(BackupConfig::item));
}

/// `key` must be an absolute path (a relative one would depend on the
/// service's working directory).
pub(super) fn absolute_path(p: &mut Vec<String>, key: &str, path: &std::path::Path) {
    if !path.is_absolute() {
        p.push(format!("{key} ({path:?}) must be an absolute path"));
    }
}

/// Instances of one kind must report distinct items, or their results
/// would overwrite each other.
pub(super) fn unique_items(p: &mut Vec<String>, prefix: &str, items: impl Iterator<Item = String>) {
    let mut seen: Vec<String> = Vec::new();
    for (i, item) in items.enumerate() {
        if let Some(first) = seen.iter().position(|s| *s == item) {
            p.push(format!(
                "{prefix}[{i}].name: item {item:?} is already used by {prefix}[{first}] (set a distinct name)"
            ));
        }
        seen.push(item);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn problems(text: &str) -> String {
        Config::parse(text, Path::new("agent.toml"))
            .expect("parses")
            .validate()
            .join("\n")
    }

    #[test]
    fn defaults_fill_everything_but_the_dir() {
        let config = Config::parse(
            "[[checks.backup]]\ndir = \"/srv/backup\"\n",
            Path::new("agent.toml"),
        )
        .expect("parses");
        let b = &config.checks.backup[0];
        assert_eq!(b.item(), "/srv/backup");
        assert_eq!(b.glob, "*");
        assert_eq!(b.max_age_hours, 26);
        assert_eq!(b.min_bytes, 1);
        assert_eq!(b.max_shrink_percent, 50.0);
        assert_eq!(b.status_file, None);
        assert_eq!(b.interval_secs, 300);
        assert!(config.validate().is_empty(), "{:?}", config.validate());
    }

    #[test]
    fn a_missing_dir_names_the_key() {
        let err = Config::parse("[[checks.backup]]\nglob = \"*\"\n", Path::new("agent.toml"))
            .expect_err("dir is required")
            .to_string();
        assert!(
            err.contains("checks.backup") && err.contains("dir"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_their_keys() {
        let all = problems(
            r#"
            [[checks.backup]]
            dir = "/srv/a"
            [[checks.backup]]
            name = ""
            dir = "relative/dir"
            glob = "nightly/[a"
            max_age_hours = 0
            max_shrink_percent = 120.0
            status_file = "status.json"
            interval_secs = 0
            [[checks.backup]]
            dir = "/srv/c"
            glob = "[z"
            [[checks.backup]]
            name = "/srv/a"
            dir = "/srv/d"
            "#,
        );
        for expected in [
            "checks.backup[1].name must not be empty",
            "checks.backup[1].dir (\"relative/dir\") must be an absolute path",
            "checks.backup[1].glob (\"nightly/[a\") is matched against file names",
            "checks.backup[1].max_age_hours must be greater than 0",
            "checks.backup[1].max_shrink_percent (120) must be within 0..=100",
            "checks.backup[1].status_file (\"status.json\") must be an absolute path",
            "checks.backup[1].interval_secs must be greater than 0",
            "checks.backup[2].glob (\"[z\") is not a valid pattern",
            "checks.backup[3].name: item \"/srv/a\" is already used by checks.backup[0]",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }
}
