//! `[[checks.service]]`: whether a system service (systemd unit, Windows
//! service, launchd daemon) is running and/or enabled. One table per
//! service; the item is the configured name.

use std::fmt;

use serde::Deserialize;

/// `[[checks.service]]`: one watched service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// systemd unit (`nginx` or `nginx.service`), Windows service name
    /// (`Spooler`, not the display name), or launchd label
    /// (`com.openssh.sshd`, in the `system` domain).
    pub name: String,
    #[serde(default)]
    pub expect: Expect,
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
}

fn default_interval_secs() -> u64 {
    5
}

/// What a healthy service looks like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Running now (systemd: active; Windows: RUNNING; launchd: running).
    #[default]
    Running,
    /// Started at boot (systemd: unit file enabled, static, indirect,
    /// generated…; Windows: automatic start; launchd: not disabled).
    Enabled,
    RunningAndEnabled,
}

impl Expect {
    pub fn running(self) -> bool {
        matches!(self, Self::Running | Self::RunningAndEnabled)
    }

    pub fn enabled(self) -> bool {
        matches!(self, Self::Enabled | Self::RunningAndEnabled)
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Enabled => "enabled",
            Self::RunningAndEnabled => "running and enabled",
        })
    }
}

/// Every bad value of `[[checks.service]]`, each naming its key.
pub fn validate_service(list: &[ServiceConfig], p: &mut Vec<String>) {
    for (i, c) in list.iter().enumerate() {
        let key = format!("checks.service[{i}]");
        if c.name.trim().is_empty() {
            p.push(format!("{key}.name must not be empty"));
        } else if c.name.len() > super::process::MAX_ITEM_BYTES {
            p.push(format!(
                "{key}.name must be at most {} bytes",
                super::process::MAX_ITEM_BYTES
            ));
        } else if c.name.starts_with('-') || c.name.chars().any(char::is_control) {
            p.push(format!(
                "{key}.name ({:?}) must not start with '-' or contain control characters",
                c.name
            ));
        }
        if c.interval_secs == 0 {
            p.push(format!("{key}.interval_secs must be greater than 0"));
        }
        if let Some(first) = list[..i].iter().position(|o| o.name == c.name) {
            p.push(format!(
                "{key} watches the same service as checks.service[{first}] ({:?})",
                c.name
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_validation() {
        #[derive(Deserialize)]
        struct Wrapper {
            service: Vec<ServiceConfig>,
        }
        let list = toml::from_str::<Wrapper>(
            r#"
            [[service]]
            name = "nginx"
            [[service]]
            name = "sshd"
            expect = "running_and_enabled"
            interval_secs = 30
            [[service]]
            name = ""
            interval_secs = 0
            [[service]]
            name = "nginx"
            expect = "enabled"
            [[service]]
            name = "--root=/tmp"
            "#,
        )
        .expect("parses")
        .service;
        assert_eq!(list[0].expect, Expect::Running);
        assert_eq!(list[0].interval_secs, 5);
        assert_eq!(list[1].expect, Expect::RunningAndEnabled);
        let mut p = Vec::new();
        validate_service(&list, &mut p);
        let all = p.join("\n");
        for expected in [
            "checks.service[2].name must not be empty",
            "checks.service[2].interval_secs must be greater than 0",
            "checks.service[3] watches the same service as checks.service[0] (\"nginx\")",
            "checks.service[4].name (\"--root=/tmp\") must not start with '-'",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(p.len(), 4, "{all}");
        let err = toml::from_str::<ServiceConfig>("name = \"a\"\nexpect = \"up\"\n")
            .expect_err("bad expect")
            .to_string();
        assert!(err.contains("running_and_enabled"), "{err}");
    }
}
