//! Reports waiting for the collector's acknowledgement: numbered, kept in
//! seq order, resent after a reconnect, forgotten only when acknowledged.
//!
//! This is the in-memory outbox. The on-disk spool (survives `kill -9`,
//! bounded in bytes) replaces it behind the same methods — `push`, `ack`,
//! `rewind`, `next_unsent` — so the session does not change.

use std::collections::VecDeque;
use std::time::SystemTime;

use tracing::warn;

use crate::report::{Observation, Payload, Report};

/// The default bound on queued reports (at a 15 s interval: ~40 h of
/// heartbeats during an outage).
pub const MAX_QUEUED_REPORTS: usize = 10_000;

/// Unacknowledged reports in seq order, with a send cursor for the current
/// connection.
#[derive(Debug)]
pub struct Outbox {
    reports: VecDeque<Report>,
    capacity: usize,
    next_seq: u64,
    /// Highest seq handed to the current connection.
    sent_upto: u64,
    dropped: u64,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` reports; seq starts at 1.
    pub fn new(capacity: usize) -> Self {
        Self {
            reports: VecDeque::new(),
            capacity: capacity.max(1),
            next_seq: 1,
            sent_upto: 0,
            dropped: 0,
        }
    }

    /// Numbers `observation` and queues it. When full, the oldest heartbeat
    /// makes room (state changes matter more), else the oldest report.
    pub fn push(&mut self, observation: Observation) -> u64 {
        if self.reports.len() >= self.capacity {
            let victim = self
                .reports
                .iter()
                .position(|r| matches!(r.payload, Payload::Heartbeat { .. }))
                .unwrap_or(0);
            if let Some(report) = self.reports.remove(victim) {
                self.dropped += 1;
                // One line on the first drop and every hundredth: an outage
                // long enough to fill the outbox should not flood the log.
                if self.dropped % 100 == 1 {
                    warn!(
                        seq = report.seq,
                        kind = report.payload.kind(),
                        dropped_total = self.dropped,
                        capacity = self.capacity,
                        "outbox full, dropped the oldest report"
                    );
                }
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.reports.push_back(Report {
            seq,
            observed_at: observation.observed_at,
            payload: observation.payload,
        });
        seq
    }

    /// Forgets report `seq`; false if it was not queued (a repeat ack).
    pub fn ack(&mut self, seq: u64) -> bool {
        match self.reports.binary_search_by_key(&seq, |r| r.seq) {
            Ok(index) => {
                self.reports.remove(index);
                true
            }
            Err(_) => false,
        }
    }

    /// After a reconnect: every unacknowledged report is unsent again.
    pub fn rewind(&mut self) {
        self.sent_upto = 0;
    }

    /// Whether some queued report has not been handed to this connection.
    pub fn has_unsent(&self) -> bool {
        self.reports.back().is_some_and(|r| r.seq > self.sent_upto)
    }

    /// The lowest-seq report not yet handed to this connection, marked as
    /// handed.
    pub fn next_unsent(&mut self) -> Option<&Report> {
        let index = self.reports.partition_point(|r| r.seq <= self.sent_upto);
        let report = self.reports.get(index)?;
        self.sent_upto = report.seq;
        Some(report)
    }

    pub fn len(&self) -> usize {
        self.reports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    /// Reports dropped because the outbox was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// When the oldest queued report was observed.
    pub fn oldest(&self) -> Option<SystemTime> {
        self.reports.front().map(|r| r.observed_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{HostSnapshot, MemoryUsage};

    fn change() -> Observation {
        Observation {
            observed_at: SystemTime::UNIX_EPOCH,
            payload: Payload::StateChanges(Vec::new()),
        }
    }

    fn heartbeat() -> Observation {
        Observation {
            observed_at: SystemTime::UNIX_EPOCH,
            payload: Payload::Heartbeat {
                snapshot: HostSnapshot {
                    uptime_secs: 1,
                    cpu_percent: 0.0,
                    memory: MemoryUsage::default(),
                    swap_used_bytes: 0,
                    swap_total_bytes: 0,
                    load1: 0.0,
                    load5: 0.0,
                    load15: 0.0,
                    disks: Vec::new(),
                },
                checks: Vec::new(),
            },
        }
    }

    fn drain(outbox: &mut Outbox) -> Vec<u64> {
        std::iter::from_fn(|| outbox.next_unsent().map(|r| r.seq)).collect()
    }

    #[test]
    fn seq_starts_at_one_and_increases() {
        let mut o = Outbox::new(10);
        assert_eq!((o.push(change()), o.push(heartbeat())), (1, 2));
        assert_eq!(drain(&mut o), [1, 2]);
        assert!(!o.has_unsent());
    }

    #[test]
    fn acked_reports_are_not_resent_and_the_rest_are_in_order() {
        let mut o = Outbox::new(10);
        for _ in 0..5 {
            o.push(change());
        }
        assert_eq!(drain(&mut o), [1, 2, 3, 4, 5]);
        assert!(o.ack(2));
        assert!(o.ack(4));
        assert!(!o.ack(4), "repeat ack");
        // disconnect: queued while offline, then resent after reconnect
        o.push(change());
        o.rewind();
        assert_eq!(drain(&mut o), [1, 3, 5, 6]);
        for seq in [1, 3, 5, 6] {
            o.ack(seq);
        }
        assert!(o.is_empty());
    }

    #[test]
    fn new_reports_follow_while_connected() {
        let mut o = Outbox::new(10);
        o.push(change());
        assert_eq!(drain(&mut o), [1]);
        o.push(change());
        assert!(o.has_unsent());
        assert_eq!(drain(&mut o), [2]);
    }

    #[test]
    fn full_outbox_drops_the_oldest_heartbeat_first() {
        let mut o = Outbox::new(3);
        o.push(change()); // 1
        o.push(heartbeat()); // 2
        o.push(heartbeat()); // 3
        o.push(change()); // 4: drops 2
        o.push(change()); // 5: drops 3
        o.push(change()); // 6: no heartbeat left, drops 1
        assert_eq!(o.len(), 3);
        assert_eq!(o.dropped(), 3);
        assert_eq!(drain(&mut o), [4, 5, 6]);
    }
}
