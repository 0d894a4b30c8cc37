//! `[checks.reboot_required]`: WARN when the host waits for a reboot to
//! finish installing updates (Linux and Windows; off by default elsewhere).

use serde::Deserialize;

/// `[checks.reboot_required]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RebootRequiredConfig {
    /// Default: on for Linux and Windows, off elsewhere (not supported there).
    pub enabled: bool,
    pub interval_secs: u64,
}

impl Default for RebootRequiredConfig {
    fn default() -> Self {
        Self {
            enabled: cfg!(any(target_os = "linux", windows)),
            interval_secs: 3600,
        }
    }
}

/// Every bad value of `[checks.reboot_required]`, each naming its key.
pub fn validate_reboot_required(c: &RebootRequiredConfig, p: &mut Vec<String>) {
    if c.interval_secs == 0 {
        p.push("checks.reboot_required.interval_secs must be greater than 0".to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_validation() {
        let c: RebootRequiredConfig = toml::from_str("").expect("parses");
        assert_eq!(c.interval_secs, 3600);
        assert_eq!(c.enabled, cfg!(any(target_os = "linux", windows)));
        let mut p = Vec::new();
        validate_reboot_required(
            &RebootRequiredConfig {
                enabled: true,
                interval_secs: 0,
            },
            &mut p,
        );
        assert_eq!(
            p,
            ["checks.reboot_required.interval_secs must be greater than 0"]
        );
        assert!(toml::from_str::<RebootRequiredConfig>("enable = true").is_err());
    }
}
