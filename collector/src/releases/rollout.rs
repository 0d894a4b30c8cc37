//! Which agent version the collector offers to which agent: `[releases.rollout]`.
//!
//! A version for everyone, optionally a newer one for canary agents first,
//! and per-tenant tables that replace the fleet-wide one for that tenant:
//!
//! ```toml
//! [releases.rollout]
//! version = "1.2.0"              # offered to every agent (unset: no offer)
//! canary_version = "1.3.0"       # offered first to the canary agents
//! canary_agents = ["web-01", "0b6f…"]   # hostnames or agent ids
//!
//! [releases.rollout.tenants.acme]
//! version = "1.1.0"
//! ```
//!
//! An agent is offered only a self-update binary for its own target triple
//! with a version strictly higher than the one it runs: never a downgrade,
//! never the same version again. The choice is pure ([`choose`]); the
//! session asks it once per session open.

use std::collections::BTreeMap;

use semver::Version;
use serde::Deserialize;

use super::{Artifact, Kind, Scan};

/// One rollout rule: a version for everyone and one for the canaries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ring {
    /// Offered to every agent the rule covers.
    #[serde(default)]
    pub version: Option<String>,
    /// Offered to the canary agents instead (usually newer).
    #[serde(default)]
    pub canary_version: Option<String>,
    /// Canary agents, by hostname or agent id.
    #[serde(default)]
    pub canary_agents: Vec<String>,
}

/// `[releases.rollout]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// Offered to every agent (of tenants without their own rule).
    #[serde(default)]
    pub version: Option<String>,
    /// Offered to the canary agents instead.
    #[serde(default)]
    pub canary_version: Option<String>,
    /// Canary agents, by hostname or agent id.
    #[serde(default)]
    pub canary_agents: Vec<String>,
    /// Per tenant (by name): replaces the fleet-wide rule for that tenant.
    #[serde(default)]
    pub tenants: BTreeMap<String, Ring>,
}

/// Who asks: what the agent said in its hello.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub tenant: &'a str,
    pub agent_id: &'a str,
    pub hostname: &'a str,
    /// The version the agent runs.
    pub version: &'a str,
    /// The agent's Rust target triple (empty from older agents: no offer).
    pub target: &'a str,
}

impl Ring {
    fn problems(&self, key: &str, out: &mut Vec<String>) {
        for (field, v) in [
            ("version", &self.version),
            ("canary_version", &self.canary_version),
        ] {
            if let Some(v) = v
                && let Err(e) = Version::parse(v)
            {
                out.push(format!("{key}.{field} {v:?} is not a SemVer version: {e}"));
            }
        }
        if self.canary_version.is_some() && self.canary_agents.is_empty() {
            out.push(format!(
                "{key}.canary_agents: empty, but {key}.canary_version is set"
            ));
        }
    }

    /// The version this rule gives `asker`.
    fn version_for(&self, asker: &Asker<'_>) -> Option<Version> {
        let canary = self
            .canary_agents
            .iter()
            .any(|a| a == asker.agent_id || a.eq_ignore_ascii_case(asker.hostname));
        let v = match (&self.canary_version, canary) {
            (Some(v), true) => v,
            _ => self.version.as_ref()?,
        };
        Version::parse(v).ok()
    }
}

impl Rollout {
    /// The fleet-wide rule.
    fn fleet(&self) -> Ring {
        Ring {
            version: self.version.clone(),
            canary_version: self.canary_version.clone(),
            canary_agents: self.canary_agents.clone(),
        }
    }

    /// Every bad key, named.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.fleet().problems("releases.rollout", &mut out);
        for (name, ring) in &self.tenants {
            ring.problems(&format!("releases.rollout.tenants.{name}"), &mut out);
        }
        out
    }

    /// The version the rollout gives `asker` (before looking at what exists).
    pub fn version_for(&self, asker: &Asker<'_>) -> Option<Version> {
        match self.tenants.get(asker.tenant) {
            Some(ring) => ring.version_for(asker),
            None => self.fleet().version_for(asker),
        }
    }

    /// Whether any rule offers anything.
    pub fn is_empty(&self) -> bool {
        self.version.is_none()
            && self.canary_version.is_none()
            && self
                .tenants
                .values()
                .all(|r| r.version.is_none() && r.canary_version.is_none())
    }
}

/// The self-update binary to offer `asker`, if any: the rollout's version,
/// for its target, strictly newer than what it runs.
pub fn choose<'s>(rollout: &Rollout, scan: &'s Scan, asker: &Asker<'_>) -> Option<&'s Artifact> {
    let wanted = rollout.version_for(asker)?;
    let running = Version::parse(asker.version).ok()?;
    if wanted <= running || asker.target.is_empty() {
        return None;
    }
    scan.artifacts.iter().find(|a| {
        a.kind == Kind::Binary && a.version == wanted && a.target.as_deref() == Some(asker.target)
    })
}

impl crate::config::ReleasesConfig {
    /// Every bad `[releases]` key, named.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(k) = &self.public_key
            && let Err(e) = super::scan::public_key(k)
        {
            out.push(e.to_string().trim_start_matches("config: ").to_owned());
        }
        out.extend(self.rollout.problems());
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const LINUX: &str = "x86_64-unknown-linux-gnu";

    fn artifact(version: &str, target: &str) -> Artifact {
        Artifact {
            file: format!("forewarn-agent-{version}-{target}"),
            path: PathBuf::new(),
            version: Version::parse(version).expect("v"),
            kind: Kind::Binary,
            os: "linux".into(),
            arch: "x86_64".into(),
            target: Some(target.into()),
            size: 1,
            sha256: String::new(),
            signature: String::new(),
        }
    }

    fn scan() -> Scan {
        Scan {
            artifacts: vec![
                artifact("1.1.0", LINUX),
                artifact("1.2.0", LINUX),
                artifact("1.3.0", LINUX),
                artifact("1.3.0", "x86_64-pc-windows-gnu"),
            ],
            rejected: vec![],
        }
    }

    fn asker<'a>(tenant: &'a str, host: &'a str, version: &'a str) -> Asker<'a> {
        Asker {
            tenant,
            agent_id: "id-1",
            hostname: host,
            version,
            target: LINUX,
        }
    }

    fn rollout(toml_text: &str) -> Rollout {
        toml::from_str(toml_text).expect("rollout")
    }

    fn offered(r: &Rollout, a: &Asker<'_>) -> Option<String> {
        let s = scan();
        choose(r, &s, a).map(|a| a.file.clone())
    }

    #[test]
    fn offers_the_fleet_version_only_as_an_upgrade() {
        let r = rollout(r#"version = "1.2.0""#);
        assert_eq!(
            offered(&r, &asker("t", "h", "1.1.0")).as_deref(),
            Some("forewarn-agent-1.2.0-x86_64-unknown-linux-gnu")
        );
        // Same version, or newer than offered: nothing (never a downgrade).
        assert_eq!(offered(&r, &asker("t", "h", "1.2.0")), None);
        assert_eq!(offered(&r, &asker("t", "h", "1.3.0")), None);
        // An unparsable running version or no target: nothing.
        assert_eq!(offered(&r, &asker("t", "h", "dev")), None);
        let mut a = asker("t", "h", "1.1.0");
        a.target = "";
        assert_eq!(offered(&r, &a), None);
    }

    #[test]
    fn canaries_first_then_everyone_and_tenants_apart() {
        let r = rollout(
            r#"
            version = "1.2.0"
            canary_version = "1.3.0"
            canary_agents = ["canary-01"]
            [tenants.acme]
            version = "1.1.0"
            "#,
        );
        assert!(
            offered(&r, &asker("t", "canary-01", "1.0.0")).is_some_and(|f| f.contains("1.3.0"))
        );
        assert!(
            offered(&r, &asker("t", "CANARY-01", "1.0.0")).is_some_and(|f| f.contains("1.3.0"))
        );
        assert!(offered(&r, &asker("t", "web-01", "1.0.0")).is_some_and(|f| f.contains("1.2.0")));
        // The tenant's rule replaces the fleet's, canaries included.
        assert!(
            offered(&r, &asker("acme", "canary-01", "1.0.0")).is_some_and(|f| f.contains("1.1.0"))
        );
        // A version with no artifact for the target: nothing.
        let r = rollout(r#"version = "1.4.0""#);
        assert_eq!(offered(&r, &asker("t", "h", "1.0.0")), None);
    }

    #[test]
    fn bad_keys_are_named() {
        let r = rollout(
            r#"
            version = "1.x"
            canary_version = "2.0.0"
            [tenants.acme]
            canary_version = "nope"
            canary_agents = ["a"]
            "#,
        );
        let p = r.problems().join("; ");
        assert!(p.contains("releases.rollout.version \"1.x\""), "{p}");
        assert!(p.contains("releases.rollout.canary_agents"), "{p}");
        assert!(
            p.contains("releases.rollout.tenants.acme.canary_version"),
            "{p}"
        );
    }
}
