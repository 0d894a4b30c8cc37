//! Forewarn collector: agent-facing mTLS gRPC ingest, the store, the ticket
//! engine and the operator HTTP API.
//!
//! Data flow: `ingest` (validates and converts wire messages) →
//! `tickets::Service::apply_report` (dedup + check state + the ticket
//! engine, one transaction over a `store::Storage` backend) →
//! acknowledgement to the agent. `api` reads the store, scoped by the
//! caller's API key. `pki` owns the CA and peer identity.

#![forbid(unsafe_code)]

pub mod access;
pub mod api;
pub mod commands;
pub mod config;
#[cfg(test)]
mod conformance;
pub mod dashboard;
pub mod domain;
mod error;
pub mod health;
pub mod history;
pub mod ingest;
pub mod install;
pub mod limits;
pub mod live;
pub mod maintenance;
pub mod metrics;
pub mod pki;
pub mod releases;
pub mod retention;
pub mod secrets;
pub mod serve;
pub mod sinks;
pub mod store;
pub mod tickets;
pub mod token_cli;

pub use config::Config;
pub use error::{Error, Result};
