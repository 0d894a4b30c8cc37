//! What the agent and the collector say to each other on a session, as
//! domain types. `convert` maps them to and from `forewarn.v1`.

use std::time::SystemTime;

use crate::checks::CheckResult;
use crate::host::{HostFacts, HostSnapshot};

/// First message of every session.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    pub agent_id: String,
    pub boot_id: String,
    pub facts: HostFacts,
    pub interval_secs: u32,
    /// This host's clock when the hello is sent: the collector compares it
    /// with its own to flag a skewed clock.
    pub sent_at: SystemTime,
}

/// Something observed on the host, not yet numbered for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub observed_at: SystemTime,
    pub payload: Payload,
}

/// What a report carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Results whose state changed, sent the moment the agent sees it.
    StateChanges(Vec<CheckResult>),
    /// Periodic liveness + metrics snapshot + every check's current result.
    Heartbeat {
        snapshot: HostSnapshot,
        checks: Vec<CheckResult>,
    },
}

impl Payload {
    /// `state_changes` or `heartbeat`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::StateChanges(_) => "state_changes",
            Self::Heartbeat { .. } => "heartbeat",
        }
    }
}

/// An observation numbered for delivery: `seq` is unique per boot and
/// increases by one per report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub seq: u64,
    pub observed_at: SystemTime,
    pub payload: Payload,
}

/// A report as it goes on the wire: stamped with who sent it and when the
/// process started.
#[derive(Debug, Clone, Copy)]
pub struct Stamped<'a> {
    pub agent_id: &'a str,
    pub boot_id: &'a str,
    pub report: &'a Report,
}

/// Sent when the agent stops cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goodbye {
    pub reason: String,
}

/// What the collector says on a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectorEvent {
    /// A signed update to try (`update/`).
    UpdateOffer(crate::update::Offer),
    /// Report `seq` of `boot_id` is committed; forget it.
    Ack { boot_id: String, seq: u64 },
    /// New heartbeat interval; `None` = keep the configured one.
    Policy { interval_secs: Option<u32> },
    /// A message this agent does not understand (a newer collector).
    Unknown,
}
