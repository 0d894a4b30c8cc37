//! The trusted comment every release signature carries (the signer is the
//! collector's `release sign`, the verifiers the collector's release scan and
//! the agent's self-update):
//! `file:<artifact file name> version:<semver>`. It is covered by the
//! signature, so it binds the signed bytes to one file name and one
//! version: a signed 1.2.0 cannot be renamed into a 1.3.0, nor a `.deb`
//! into a self-update binary.

use std::fmt;

use semver::Version;

/// The parsed trusted comment of a release signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedComment {
    pub file: String,
    pub version: Version,
}

impl TrustedComment {
    /// Parses `file:<name> version:<semver>` (fields in any order,
    /// separated by spaces or tabs; unknown fields such as minisign's
    /// `timestamp:` are ignored).
    pub fn parse(comment: &str) -> Result<Self, String> {
        let mut file = None;
        let mut version = None;
        for field in comment.split([' ', '\t']).filter(|f| !f.is_empty()) {
            if let Some(v) = field.strip_prefix("file:") {
                file = Some(v.to_owned());
            } else if let Some(v) = field.strip_prefix("version:") {
                version = Some(
                    Version::parse(v).map_err(|e| format!("trusted comment version {v:?}: {e}"))?,
                );
            }
        }
        match (file, version) {
            (Some(file), Some(version)) if !file.is_empty() => Ok(Self { file, version }),
            _ => Err(format!(
                "trusted comment {comment:?} does not name the file and version \
                 (expected `file:<name> version:<semver>`)"
            )),
        }
    }
}

impl fmt::Display for TrustedComment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file:{} version:{}", self.file, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_other_fields() {
        let c = TrustedComment::parse(
            "timestamp:1\tfile:forewarn-agent-1.2.0-x86_64-unknown-linux-gnu version:1.2.0",
        )
        .expect("parses");
        assert_eq!(c.file, "forewarn-agent-1.2.0-x86_64-unknown-linux-gnu");
        assert_eq!(c.version, Version::new(1, 2, 0));
        assert_eq!(
            TrustedComment::parse(&c.to_string()).expect("round trip"),
            c
        );
    }

    #[test]
    fn refuses_missing_or_bad_fields() {
        assert!(TrustedComment::parse("timestamp:1633700835").is_err());
        assert!(TrustedComment::parse("file:x").is_err());
        assert!(TrustedComment::parse("file: version:1.0.0").is_err());
        let e = TrustedComment::parse("file:x version:1.x").expect_err("bad semver");
        assert!(e.contains("1.x"), "{e}");
    }
}
