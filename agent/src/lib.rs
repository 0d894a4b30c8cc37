//! forewarn-agent: watches the health of the machine it runs on, evaluates
//! checks locally and reports to a Forewarn collector over mutual TLS gRPC.
//!
//! Data flow: [`host`] reads the machine → [`checks`] decide OK / WARN /
//! CRIT / UNKNOWN → [`scheduler`] turns results into state changes and
//! heartbeats → [`outbox`] numbers and keeps them until acknowledged →
//! [`session`] streams them to the collector ([`collectors`]: which of
//! several, in what order). [`enroll`] and [`pin`] set up
//! the identity that [`identity`] keeps in the state dir and [`renew`]
//! renews before it expires; [`convert`] is the
//! only module that knows the wire types; [`run`] wires it all for `main`; [`update`] takes signed
//! updates the collector offers.

#![forbid(unsafe_code)]

pub mod backoff;
pub mod checks;
pub mod collectors;
pub mod config;
pub mod convert;
pub mod endpoint;
pub mod enroll;
pub mod error;
mod files;
pub mod host;
pub mod identity;
pub mod outbox;
pub mod pin;
pub mod platform;
pub mod reload;
pub mod renew;
pub mod report;
pub mod run;
pub mod scheduler;
pub mod session;
pub mod signals;
pub mod spool;
pub mod update;

/// The version this agent reports and compares offered updates with: the
/// crate's, or `FOREWARN_VERSION` at build time.
pub const VERSION: &str = match option_env!("FOREWARN_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// The Rust target triple this agent was built for (`build.rs`): which
/// self-update binary fits it.
pub const TARGET: &str = env!("FOREWARN_TARGET");

/// The release signing key compiled in (`FOREWARN_RELEASE_PUBLIC_KEY` at
/// build time); `[update] public_key` replaces it.
pub const RELEASE_PUBLIC_KEY: Option<&str> = option_env!("FOREWARN_RELEASE_PUBLIC_KEY");

pub use error::{Error, Result};
