//! Fuzzes what the collector does with the bytes of one agent message on a
//! session: protobuf decoding, then the edge validation in
//! `ingest::convert`. Neither may panic, and whatever validation accepts
//! must be within the documented limits.

#![no_main]

use forewarn_collector::domain::ReportPayload;
use forewarn_collector::ingest::convert;
use forewarn_proto::v1::{AgentMessage, agent_message::Body};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// A fixed "now" (2027-01-15), so runs are reproducible.
const NOW: i64 = 1_800_000_000_000;

fuzz_target!(|bytes: &[u8]| {
    let Ok(message) = AgentMessage::decode(bytes) else {
        return;
    };
    match message.body {
        Some(Body::Hello(hello)) => {
            let _ = convert::boot_id(&hello.boot_id);
            let _ = convert::clock_offset(hello.sent_at.as_ref(), NOW);
            if let Ok(facts) = convert::host_facts(hello.host.as_ref()) {
                assert!(!facts.hostname.is_empty());
                assert!(facts.hostname.len() <= convert::MAX_NAME_LEN);
            }
        }
        Some(Body::Report(report)) => {
            // Once with the agent id the report names, once with another.
            for agent_id in [report.agent_id.as_str(), "agent-1"] {
                let Ok(valid) = convert::report(&report, agent_id, NOW) else {
                    continue;
                };
                assert!(valid.seq >= 1 && valid.seq <= i64::MAX as u64);
                assert!(!valid.boot_id.is_empty() && valid.boot_id.len() <= convert::MAX_ID_LEN);
                assert!(valid.observed_at <= NOW + convert::MAX_CLOCK_SKEW_MS);
                let results = match &valid.payload {
                    ReportPayload::StateChanges(results) => results,
                    ReportPayload::Heartbeat { snapshot, checks } => {
                        assert!(snapshot.disks.len() <= convert::MAX_DISKS);
                        checks
                    }
                };
                assert!(results.len() <= convert::MAX_RESULTS);
                for r in results {
                    assert!(!r.check.is_empty() && r.check.len() <= convert::MAX_CHECK_LEN);
                    assert!(r.message.len() <= convert::MAX_MESSAGE_LEN);
                    assert!(r.metrics.len() <= convert::MAX_METRICS);
                    assert!(r.metrics.iter().all(|m| m.value.is_finite()));
                }
            }
        }
        Some(Body::Goodbye(_)) | None => {}
    }
});
