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
//! only module that knows the wire types; [`run`] wires it all for `main`.

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

pub use error::{Error, Result};
