//! The Forewarn wire contract: package `forewarn.v1`, generated at build time
//! from `proto/forewarn/v1/*.proto`.
//!
//! Only the `convert` modules of the agent and the collector use these types;
//! everything else works on domain types.

#![forbid(unsafe_code)]

/// `forewarn.v1`: enrollment, the agent session stream and their messages.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("forewarn.v1");
}

/// The release signature's trusted comment, shared by signer and verifiers.
pub mod release;

/// Re-exported so callers convert timestamps without a direct dependency.
pub use prost_types::Timestamp;
