//! Signed agent releases: the offline signing commands (`release keygen`,
//! `release sign`), the scan of `[releases] dir` that verifies every
//! artifact against `[releases] public_key` before anything is served or
//! offered, and the rollout (which version an agent is offered).
//!
//! Signatures are minisign's: `<artifact>.minisig` next to the artifact,
//! trusted comment `file:<artifact file name> version:<semver>`. The
//! collector never holds the secret key: signing is an offline step, and
//! an artifact whose signature does not verify is neither served nor
//! offered (the agent verifies again with its own pinned key).

pub mod cli;
pub mod name;
pub mod offer;
pub mod rollout;
pub mod scan;
pub mod sign;

pub use forewarn_proto::release::TrustedComment;
pub use name::{ArtifactName, Kind};
pub use offer::Offers;
pub use scan::{Artifact, Rejected, Releases, Scan};

/// Suffix of the signature file next to each artifact.
pub const SIGNATURE_SUFFIX: &str = ".minisig";
