//! Release artifact file names and what they say: kind, version, OS and
//! architecture. The names are fixed by the packaging tools:
//!
//! - self-update binaries `forewarn-agent-<version>-<rust target triple>`
//!   (`.exe` on Windows);
//! - cargo-deb's `forewarn-agent_<version>-1_<deb arch>.deb`;
//! - cargo-generate-rpm's `forewarn-agent-<version>-1.<rpm arch>.rpm`;
//! - the MSI `forewarn-agent-<version>-x64.msi`.
//!
//! A name is read against the version its signature's trusted comment
//! names, so versions with a pre-release part (`1.0.0-rc.1`) are never
//! ambiguous.

use std::fmt;

use semver::Version;
use serde::Serialize;

const PREFIX: &str = "forewarn-agent";

/// What an artifact is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A bare agent binary: what self-update offers.
    Binary,
    Deb,
    Rpm,
    Msi,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Binary => "binary",
            Kind::Deb => "deb",
            Kind::Rpm => "rpm",
            Kind::Msi => "msi",
        })
    }
}

/// A parsed artifact name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactName {
    pub kind: Kind,
    /// `linux`, `windows`, `macos` (Rust's `std::env::consts::OS` names).
    pub os: String,
    /// `x86_64`, `aarch64`, … (Rust's `std::env::consts::ARCH` names).
    pub arch: String,
    /// The Rust target triple, for binaries only.
    pub target: Option<String>,
}

/// The self-update binary's file name for `version` and `target`.
pub fn binary_file_name(version: &Version, target: &str) -> String {
    let exe = if target.contains("-windows") {
        ".exe"
    } else {
        ""
    };
    format!("{PREFIX}-{version}-{target}{exe}")
}

impl ArtifactName {
    /// Reads `file` as an artifact of `version`; the error says why not.
    pub fn parse(file: &str, version: &Version) -> Result<Self, String> {
        let v = version.to_string();
        if let Some(arch) = file
            .strip_prefix(&format!("{PREFIX}_{v}-1_"))
            .and_then(|rest| rest.strip_suffix(".deb"))
        {
            return Ok(Self::package(Kind::Deb, "linux", deb_arch(arch)?));
        }
        if let Some(arch) = file
            .strip_prefix(&format!("{PREFIX}-{v}-1."))
            .and_then(|rest| rest.strip_suffix(".rpm"))
        {
            return Ok(Self::package(Kind::Rpm, "linux", rpm_arch(arch)?));
        }
        if file == format!("{PREFIX}-{v}-x64.msi") {
            return Ok(Self::package(Kind::Msi, "windows", "x86_64"));
        }
        if let Some(target) = file.strip_prefix(&format!("{PREFIX}-{v}-")) {
            let target = target.strip_suffix(".exe").unwrap_or(target);
            let (os, arch) = triple_os_arch(target)?;
            if binary_file_name(version, target) != file {
                return Err(format!(
                    "{file}: a {os} binary is named {}",
                    binary_file_name(version, target)
                ));
            }
            return Ok(Self {
                kind: Kind::Binary,
                os: os.to_owned(),
                arch: arch.to_owned(),
                target: Some(target.to_owned()),
            });
        }
        Err(format!(
            "{file}: not a release artifact name for version {v} (expected \
             {PREFIX}-{v}-<target triple>[.exe], {PREFIX}_{v}-1_<arch>.deb, \
             {PREFIX}-{v}-1.<arch>.rpm or {PREFIX}-{v}-x64.msi)"
        ))
    }

    fn package(kind: Kind, os: &str, arch: &str) -> Self {
        Self {
            kind,
            os: os.to_owned(),
            arch: arch.to_owned(),
            target: None,
        }
    }
}

fn deb_arch(arch: &str) -> Result<&'static str, String> {
    match arch {
        "amd64" => Ok("x86_64"),
        "arm64" => Ok("aarch64"),
        other => Err(format!("unknown Debian architecture {other:?}")),
    }
}

fn rpm_arch(arch: &str) -> Result<&'static str, String> {
    match arch {
        "x86_64" => Ok("x86_64"),
        "aarch64" => Ok("aarch64"),
        other => Err(format!("unknown RPM architecture {other:?}")),
    }
}

/// OS and architecture of a Rust target triple (`x86_64-unknown-linux-gnu`,
/// `x86_64-pc-windows-gnu`, `aarch64-apple-darwin`).
pub fn triple_os_arch(target: &str) -> Result<(&'static str, &'static str), String> {
    let mut parts = target.split('-');
    let arch = match parts.next() {
        Some("x86_64") => "x86_64",
        Some("aarch64") => "aarch64",
        _ => return Err(format!("unknown target triple {target:?}")),
    };
    let rest: Vec<&str> = parts.collect();
    let os = match rest.as_slice() {
        [_, "linux", ..] => "linux",
        [_, "windows", ..] => "windows",
        ["apple", "darwin"] => "macos",
        _ => return Err(format!("unknown target triple {target:?}")),
    };
    Ok((os, arch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("version")
    }

    #[test]
    fn reads_every_kind() {
        let b = ArtifactName::parse("forewarn-agent-1.2.0-x86_64-unknown-linux-gnu", &v("1.2.0"))
            .expect("binary");
        assert_eq!(
            (b.kind, b.os.as_str(), b.arch.as_str()),
            (Kind::Binary, "linux", "x86_64")
        );
        assert_eq!(b.target.as_deref(), Some("x86_64-unknown-linux-gnu"));
        let w = ArtifactName::parse(
            "forewarn-agent-1.0.0-rc.1-x86_64-pc-windows-gnu.exe",
            &v("1.0.0-rc.1"),
        )
        .expect("windows binary with a pre-release version");
        assert_eq!(
            (w.os.as_str(), w.target.as_deref()),
            ("windows", Some("x86_64-pc-windows-gnu"))
        );
        let d = ArtifactName::parse("forewarn-agent_1.2.0-1_amd64.deb", &v("1.2.0")).expect("deb");
        assert_eq!((d.kind, d.arch.as_str()), (Kind::Deb, "x86_64"));
        let r =
            ArtifactName::parse("forewarn-agent-1.2.0-1.aarch64.rpm", &v("1.2.0")).expect("rpm");
        assert_eq!((r.kind, r.arch.as_str()), (Kind::Rpm, "aarch64"));
        let m = ArtifactName::parse("forewarn-agent-1.2.0-x64.msi", &v("1.2.0")).expect("msi");
        assert_eq!((m.kind, m.os.as_str()), (Kind::Msi, "windows"));
        let mac = ArtifactName::parse("forewarn-agent-1.2.0-aarch64-apple-darwin", &v("1.2.0"))
            .expect("mac");
        assert_eq!(mac.os, "macos");
    }

    #[test]
    fn refuses_other_names_and_versions() {
        // The name must carry the signed version.
        assert!(
            ArtifactName::parse("forewarn-agent-1.3.0-x86_64-unknown-linux-gnu", &v("1.2.0"))
                .is_err()
        );
        assert!(ArtifactName::parse("forewarn-collector_1.2.0-1_amd64.deb", &v("1.2.0")).is_err());
        // A Windows binary has .exe, others do not.
        assert!(
            ArtifactName::parse("forewarn-agent-1.2.0-x86_64-pc-windows-gnu", &v("1.2.0")).is_err()
        );
        assert!(
            ArtifactName::parse(
                "forewarn-agent-1.2.0-x86_64-unknown-linux-gnu.exe",
                &v("1.2.0")
            )
            .is_err()
        );
        assert!(
            ArtifactName::parse("forewarn-agent-1.2.0-sparc-sun-solaris", &v("1.2.0")).is_err()
        );
    }
}
