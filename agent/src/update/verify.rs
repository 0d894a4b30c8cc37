//! The pure checks of a self-update: what an offer must say before it is
//! downloaded, and what the verified signature must say after. A refusal
//! names the reason; nothing here touches the disk or the network.
//!
//! The trusted comment (`file:<name> version:<semver>`) is covered by the
//! release signature, so once the signature verifies it binds the bytes to
//! one file name and one version: the agent takes only the binary named for
//! its own target and a version strictly higher than its own.

use forewarn_proto::release::TrustedComment;
use semver::Version;

/// An update the collector offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub file: String,
    pub version: String,
    pub size: u64,
    pub sha256: String,
    /// The `.minisig` text.
    pub signature: String,
}

/// What became of an attempt (the wire's `UpdateResult.Outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Updated,
    RolledBack,
    Refused,
    Failed,
}

/// Why an attempt stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Stopped {
    pub outcome: Outcome,
    pub message: String,
}

impl Stopped {
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Refused,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Failed,
            message: message.into(),
        }
    }
}

/// The self-update binary's name for `version` on `target`.
pub fn binary_file_name(version: &Version, target: &str) -> String {
    let exe = if target.contains("-windows") {
        ".exe"
    } else {
        ""
    };
    format!("forewarn-agent-{version}-{target}{exe}")
}

/// Checks an offer before downloading: a version higher than `running`,
/// the file named for that version and `target`, a size within `max_bytes`.
pub fn check_offer(
    offer: &Offer,
    running: &Version,
    target: &str,
    max_bytes: u64,
) -> Result<Version, Stopped> {
    let version = Version::parse(&offer.version)
        .map_err(|e| Stopped::refused(format!("offered version {:?}: {e}", offer.version)))?;
    if version <= *running {
        return Err(Stopped::refused(format!(
            "offered version {version} is not higher than the running {running}: a downgrade or \
             reinstall is never taken"
        )));
    }
    let expected = binary_file_name(&version, target);
    if offer.file != expected {
        return Err(Stopped::refused(format!(
            "offered file {:?} is not this agent's binary {expected:?}",
            offer.file
        )));
    }
    if offer.size == 0 || offer.size > max_bytes {
        return Err(Stopped::refused(format!(
            "offered size {} bytes is outside 1..={max_bytes} ([update] max_download_bytes)",
            offer.size
        )));
    }
    Ok(version)
}

/// After the signature verified: its trusted comment must name the offered
/// file and version, higher than `running`.
pub fn check_signed(
    comment: &str,
    offer: &Offer,
    offered: &Version,
    running: &Version,
) -> Result<(), Stopped> {
    let signed = TrustedComment::parse(comment).map_err(Stopped::refused)?;
    if signed.file != offer.file {
        return Err(Stopped::refused(format!(
            "signature is for {:?}, not the offered {:?}",
            signed.file, offer.file
        )));
    }
    if signed.version != *offered {
        return Err(Stopped::refused(format!(
            "signature is for version {}, not the offered {offered}",
            signed.version
        )));
    }
    if signed.version <= *running {
        return Err(Stopped::refused(format!(
            "signed version {} is not higher than the running {running}",
            signed.version
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX: &str = "x86_64-unknown-linux-gnu";

    fn v(s: &str) -> Version {
        Version::parse(s).expect("version")
    }

    fn offer(version: &str) -> Offer {
        Offer {
            file: binary_file_name(&v(version), LINUX),
            version: version.into(),
            size: 100,
            sha256: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn versions_order_as_semver() {
        assert!(v("0.10.0") > v("0.9.9"));
        assert!(v("1.0.0") > v("1.0.0-rc.2"));
        assert!(v("1.0.0-rc.10") > v("1.0.0-rc.9"));
    }

    #[test]
    fn takes_only_an_upgrade_named_for_this_target() {
        assert_eq!(
            check_offer(&offer("1.2.0"), &v("1.1.0"), LINUX, 1000),
            Ok(v("1.2.0"))
        );
        for running in ["1.2.0", "1.3.0"] {
            let e = check_offer(&offer("1.2.0"), &v(running), LINUX, 1000).expect_err("downgrade");
            assert_eq!(e.outcome, Outcome::Refused);
            assert!(e.message.contains("not higher"), "{e}");
        }
        let e = check_offer(&offer("1.2.0"), &v("1.1.0"), "x86_64-pc-windows-gnu", 1000)
            .expect_err("other target");
        assert!(
            e.message
                .contains("forewarn-agent-1.2.0-x86_64-pc-windows-gnu.exe"),
            "{e}"
        );
        let e = check_offer(&offer("1.2.0"), &v("1.1.0"), LINUX, 99).expect_err("too big");
        assert!(e.message.contains("max_download_bytes"), "{e}");
        let mut bad = offer("1.2.0");
        bad.version = "latest".into();
        assert!(check_offer(&bad, &v("1.1.0"), LINUX, 1000).is_err());
    }

    #[test]
    fn the_signed_comment_must_match_the_offer() {
        let o = offer("1.2.0");
        let ok = format!("file:{} version:1.2.0", o.file);
        assert_eq!(check_signed(&ok, &o, &v("1.2.0"), &v("1.1.0")), Ok(()));
        // A signature for another file (a renamed older release).
        let other = "file:forewarn-agent-1.0.0-x86_64-unknown-linux-gnu version:1.0.0";
        assert!(check_signed(other, &o, &v("1.2.0"), &v("1.1.0")).is_err());
        // The name claims 1.2.0, the signature says 1.0.0 (a downgrade in disguise).
        let disguised = format!("file:{} version:1.0.0", o.file);
        let e = check_signed(&disguised, &o, &v("1.2.0"), &v("1.1.0")).expect_err("disguised");
        assert!(e.message.contains("version 1.0.0"), "{e}");
        // Signed and offered agree but are not higher than what runs.
        assert!(check_signed(&ok, &o, &v("1.2.0"), &v("1.2.0")).is_err());
        // Minisign's default comment names neither.
        assert!(check_signed("timestamp:1633700835", &o, &v("1.2.0"), &v("1.1.0")).is_err());
    }
}
