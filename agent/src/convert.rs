//! The only place that knows `forewarn.v1`: conversions between the wire
//! types and the agent's domain types. Everything else works on domain
//! types; the session builds wire messages through these `From` impls.

use std::time::SystemTime;

use forewarn_proto::Timestamp;
use forewarn_proto::v1 as pb;

use crate::checks::plugin::range::Range;
use crate::checks::{CheckResult, CheckState, Metric};
use crate::enroll::{EnrollRequest, Enrolled};
use crate::error::Error;
use crate::host::{DiskUsage, HostFacts, HostSnapshot};
use crate::report::{CollectorEvent, Goodbye, Hello, Payload, Stamped};

fn timestamp(t: SystemTime) -> Option<Timestamp> {
    Some(Timestamp::from(t))
}

// === host ===

impl From<&HostFacts> for pb::HostFacts {
    fn from(f: &HostFacts) -> Self {
        Self {
            hostname: f.hostname.clone(),
            os_name: f.os_name.clone(),
            os_version: f.os_version.clone(),
            kernel_version: f.kernel_version.clone(),
            arch: f.arch.clone(),
            agent_version: f.agent_version.clone(),
            cpu_count: f.cpu_count,
            memory_total_bytes: f.memory_total_bytes,
            target: f.target.clone(),
        }
    }
}

impl From<&DiskUsage> for pb::DiskUsage {
    fn from(d: &DiskUsage) -> Self {
        Self {
            mount_point: d.mount_point.clone(),
            fs_type: d.fs_type.clone(),
            total_bytes: d.total_bytes,
            available_bytes: d.available_bytes,
        }
    }
}

impl From<&HostSnapshot> for pb::HostSnapshot {
    fn from(s: &HostSnapshot) -> Self {
        Self {
            uptime_secs: s.uptime_secs,
            cpu_percent: s.cpu_percent,
            memory_used_bytes: s.memory.used_bytes,
            memory_total_bytes: s.memory.total_bytes,
            swap_used_bytes: s.swap_used_bytes,
            swap_total_bytes: s.swap_total_bytes,
            load1: s.load1,
            load5: s.load5,
            load15: s.load15,
            disks: s.disks.iter().map(Into::into).collect(),
        }
    }
}

// === checks ===

impl From<CheckState> for pb::CheckState {
    fn from(s: CheckState) -> Self {
        match s {
            CheckState::Ok => Self::Ok,
            CheckState::Warn => Self::Warn,
            CheckState::Crit => Self::Crit,
            CheckState::Unknown => Self::Unknown,
        }
    }
}

/// An infinite bound is an absent one on the wire.
impl From<Range> for pb::Threshold {
    fn from(r: Range) -> Self {
        Self {
            start: r.start.is_finite().then_some(r.start),
            end: r.end.is_finite().then_some(r.end),
            inside: r.inside,
        }
    }
}

impl From<&Metric> for pb::Metric {
    fn from(m: &Metric) -> Self {
        let t = m.thresholds.as_deref().copied().unwrap_or_default();
        Self {
            name: m.name.to_string(),
            value: m.value,
            unit: m.unit.to_string(),
            warn: t.warn.map(Into::into),
            crit: t.crit.map(Into::into),
            min: t.min,
            max: t.max,
        }
    }
}

impl From<&CheckResult> for pb::CheckResult {
    fn from(r: &CheckResult) -> Self {
        Self {
            check: r.check.to_owned(),
            item: r.item.clone(),
            state: pb::CheckState::from(r.state).into(),
            message: r.message.clone(),
            metrics: r.metrics.iter().map(Into::into).collect(),
            since: timestamp(r.since),
        }
    }
}

// === session ===

impl From<&Hello> for pb::AgentMessage {
    fn from(h: &Hello) -> Self {
        Self {
            body: Some(pb::agent_message::Body::Hello(pb::Hello {
                agent_id: h.agent_id.clone(),
                boot_id: h.boot_id.clone(),
                host: Some((&h.facts).into()),
                interval_secs: h.interval_secs,
                sent_at: timestamp(h.sent_at),
            })),
        }
    }
}

impl From<&Payload> for pb::report::Payload {
    fn from(p: &Payload) -> Self {
        match p {
            Payload::StateChanges(results) => Self::StateChanges(pb::StateChanges {
                results: results.iter().map(Into::into).collect(),
            }),
            Payload::Heartbeat { snapshot, checks } => Self::Heartbeat(pb::Heartbeat {
                snapshot: Some(snapshot.into()),
                checks: checks.iter().map(Into::into).collect(),
                // Filled in by the outbox, which knows the spool.
                spool: None,
            }),
        }
    }
}

impl From<Stamped<'_>> for pb::AgentMessage {
    fn from(s: Stamped<'_>) -> Self {
        Self {
            body: Some(pb::agent_message::Body::Report(pb::Report {
                agent_id: s.agent_id.to_owned(),
                boot_id: s.boot_id.to_owned(),
                seq: s.report.seq,
                observed_at: timestamp(s.report.observed_at),
                payload: Some((&s.report.payload).into()),
            })),
        }
    }
}

impl From<&Goodbye> for pb::AgentMessage {
    fn from(g: &Goodbye) -> Self {
        Self {
            body: Some(pb::agent_message::Body::Goodbye(pb::Goodbye {
                reason: g.reason.clone(),
            })),
        }
    }
}

impl From<pb::CollectorMessage> for CollectorEvent {
    fn from(m: pb::CollectorMessage) -> Self {
        match m.body {
            Some(pb::collector_message::Body::Ack(a)) => Self::Ack {
                boot_id: a.boot_id,
                seq: a.seq,
            },
            Some(pb::collector_message::Body::Policy(p)) => Self::Policy {
                interval_secs: (p.interval_secs > 0).then_some(p.interval_secs),
            },
            Some(pb::collector_message::Body::UpdateOffer(o)) => {
                Self::UpdateOffer(crate::update::Offer {
                    file: o.file,
                    version: o.version,
                    size: o.size,
                    sha256: o.sha256,
                    signature: o.signature,
                })
            }
            None => Self::Unknown,
        }
    }
}

// === enrollment ===

impl From<&EnrollRequest> for pb::EnrollRequest {
    fn from(r: &EnrollRequest) -> Self {
        Self {
            token: r.token.clone(),
            csr_pem: r.csr_pem.clone(),
            host: Some((&r.facts).into()),
        }
    }
}

impl TryFrom<pb::EnrollResponse> for Enrolled {
    type Error = Error;

    fn try_from(r: pb::EnrollResponse) -> Result<Self, Error> {
        let missing = |field: &str| Error::Protocol(format!("enroll response without {field}"));
        if r.agent_id.is_empty() {
            return Err(missing("agent_id"));
        }
        if r.certificate_chain_pem.is_empty() {
            return Err(missing("certificate_chain_pem"));
        }
        Ok(Self {
            agent_id: r.agent_id,
            tenant_id: r.tenant_id,
            tenant_name: r.tenant_name,
            site: r.site,
            certificate_chain_pem: r.certificate_chain_pem,
            ca_pem: r.ca_pem,
            not_after: r.not_after.and_then(|t| SystemTime::try_from(t).ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::plugin::perfdata::Thresholds;
    use crate::report::Report;

    #[test]
    fn report_carries_ids_seq_and_state() {
        let result = CheckResult {
            check: "disk",
            item: "/".into(),
            state: CheckState::Crit,
            message: "full".into(),
            metrics: vec![Metric::new("used_percent", 99.0, "percent")],
            since: SystemTime::UNIX_EPOCH,
        };
        let report = Report {
            seq: 7,
            observed_at: SystemTime::UNIX_EPOCH,
            payload: Payload::StateChanges(vec![result]),
        };
        let msg = pb::AgentMessage::from(Stamped {
            agent_id: "a",
            boot_id: "b",
            report: &report,
        });
        let Some(pb::agent_message::Body::Report(r)) = msg.body else {
            panic!("not a report");
        };
        assert_eq!(
            (r.agent_id.as_str(), r.boot_id.as_str(), r.seq),
            ("a", "b", 7)
        );
        let Some(pb::report::Payload::StateChanges(c)) = r.payload else {
            panic!("not state changes");
        };
        assert_eq!(c.results[0].state, pb::CheckState::Crit as i32);
        assert_eq!(c.results[0].metrics[0].unit, "percent");
    }

    #[test]
    fn plugin_thresholds_go_on_the_wire_with_open_bounds_absent() {
        let range = |text: &str| Some(text.parse::<Range>().expect("range"));
        let mut metric = Metric::new("procs", 97.0, "");
        metric.thresholds = Some(Box::new(Thresholds {
            warn: range("~:10"),
            crit: range("@20:"),
            min: Some(0.0),
            max: None,
        }));
        let m = pb::Metric::from(&metric);
        let warn = m.warn.expect("warn");
        assert_eq!(
            (warn.start, warn.end, warn.inside),
            (None, Some(10.0), false)
        );
        let crit = m.crit.expect("crit");
        assert_eq!(
            (crit.start, crit.end, crit.inside),
            (Some(20.0), None, true)
        );
        assert_eq!((m.min, m.max), (Some(0.0), None));
        // The agent's own metrics carry none.
        let plain = pb::Metric::from(&Metric::new("used_percent", 1.0, "percent"));
        assert_eq!(
            (plain.warn, plain.crit, plain.min, plain.max),
            (None, None, None, None)
        );
    }

    #[test]
    fn policy_zero_means_keep() {
        let m = pb::CollectorMessage {
            body: Some(pb::collector_message::Body::Policy(pb::PolicyPush {
                interval_secs: 0,
            })),
        };
        assert_eq!(
            CollectorEvent::from(m),
            CollectorEvent::Policy {
                interval_secs: None
            }
        );
    }
}
