//! Reports waiting for the collector's acknowledgement: numbered, written to
//! the durable [`spool`](crate::spool) *before* they are sent, resent in
//! order after a reconnect (and after a restart, under their original
//! `(boot_id, seq)`), forgotten only when acknowledged.
//!
//! The spool stores each report as an encoded `forewarn.v1.Report`, so
//! what a restarted agent resends is byte for byte what the earlier run
//! made. Appends and acks run on tokio's blocking pool: a state change
//! waits for its fsync there, and an ack's dead-list append (or segment
//! unlink) stays off the runtime thread too.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use forewarn_proto::v1 as pb;
use prost::Message;
use tracing::{debug, error, warn};

use crate::error::Result;
use crate::report::{Observation, Payload, Report, Stamped};
use crate::spool::{Kind, Losses, Options, Spool};

/// Unacknowledged reports in spool order, with a send cursor for the
/// current connection.
#[derive(Debug)]
pub struct Outbox {
    spool: Arc<Mutex<Spool>>,
    agent_id: String,
    boot_id: Arc<str>,
    next_seq: u64,
    /// Spool position of the last report handed to the current connection.
    sent_upto: u64,
}

impl Outbox {
    /// Opens the spool (reading back what an earlier run left) for this
    /// run's `boot_id`; seq starts at 1.
    pub async fn open(options: Options, agent_id: &str, boot_id: &str) -> Result<Self> {
        let spool = tokio::task::spawn_blocking(move || Spool::open(options)).await?;
        Ok(Self {
            spool: Arc::new(Mutex::new(spool)),
            agent_id: agent_id.to_owned(),
            boot_id: Arc::from(boot_id),
            next_seq: 1,
            sent_upto: 0,
        })
    }

    fn spool(&self) -> MutexGuard<'_, Spool> {
        lock(&self.spool)
    }

    /// Numbers `observation` and spools it; returns its seq. A state change
    /// is fsynced before this returns (unless the disk failed and the
    /// spool runs in memory).
    pub async fn push(&mut self, observation: Observation) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let kind = match observation.payload {
            Payload::StateChanges(_) => Kind::StateChange,
            Payload::Heartbeat { .. } => Kind::Heartbeat,
        };
        let report = Report {
            seq,
            observed_at: observation.observed_at,
            payload: observation.payload,
        };
        let mut wire = wire_report(&self.agent_id, &self.boot_id, &report);
        if let Some(pb::report::Payload::Heartbeat(heartbeat)) = &mut wire.payload {
            heartbeat.spool = Some(self.status());
        }
        let body = wire.encode_to_vec();
        let (spool, boot_id, len) = (self.spool.clone(), self.boot_id.clone(), body.len());
        let appended =
            tokio::task::spawn_blocking(move || lock(&spool).append(kind, &boot_id, seq, &body))
                .await;
        match appended {
            Ok(_) => debug!(seq, kind = kind.as_str(), bytes = len, "report spooled"),
            // Only a panic in the spool gets here; the agent goes on.
            Err(e) => error!(error = %e, seq, "report could not be spooled and is lost"),
        }
        seq
    }

    /// Forgets report `(boot_id, seq)`; false if it was not spooled (a
    /// repeat ack). `boot_id` may be an earlier run's.
    ///
    /// Runs on the blocking pool. Once this returns the report is out of the
    /// spool's memory (this connection never hands it out again) and its
    /// dead mark is written, not fsynced: a restart resends it only if a
    /// crash lost the mark, and the collector drops that repeat.
    pub async fn ack(&mut self, boot_id: &str, seq: u64) -> bool {
        let (spool, boot) = (self.spool.clone(), boot_id.to_owned());
        match tokio::task::spawn_blocking(move || lock(&spool).ack(&boot, seq)).await {
            Ok(acked) => acked,
            // Only a panic in the spool gets here: the report stays queued
            // and is resent, which the collector drops as a repeat.
            Err(e) => {
                error!(error = %e, %boot_id, seq, "ack could not be recorded");
                false
            }
        }
    }

    /// After a reconnect: every unacknowledged report is unsent again.
    pub fn rewind(&mut self) {
        self.sent_upto = 0;
    }

    /// Whether some spooled report has not been handed to this connection.
    pub fn has_unsent(&self) -> bool {
        self.spool().has_after(self.sent_upto)
    }

    /// The oldest report not yet handed to this connection, read back from
    /// the spool and marked as handed.
    pub fn next_unsent(&mut self) -> Option<pb::AgentMessage> {
        let mut spool = lock(&self.spool);
        loop {
            let pending = spool.next_after(self.sent_upto)?;
            self.sent_upto = pending.pos;
            match pb::Report::decode(pending.body.as_slice()) {
                Ok(report) => {
                    return Some(pb::AgentMessage {
                        body: Some(pb::agent_message::Body::Report(report)),
                    });
                }
                Err(error) => {
                    warn!(%error, boot_id = %pending.boot_id, seq = pending.seq, "spooled report does not decode, skipped");
                    spool.discard_unreadable(&pending.boot_id, pending.seq);
                }
            }
        }
    }

    /// Unacknowledged reports.
    pub fn len(&self) -> usize {
        self.spool().len()
    }

    pub fn is_empty(&self) -> bool {
        self.spool().is_empty()
    }

    /// Reports lost since start (dropped by the bound, damaged).
    pub fn losses(&self) -> Losses {
        self.spool().losses()
    }

    /// What a heartbeat tells the collector about the spool.
    fn status(&self) -> pb::SpoolStatus {
        let spool = self.spool();
        let losses = spool.losses();
        pb::SpoolStatus {
            dropped_heartbeats: losses.dropped_heartbeats,
            dropped_state_changes: losses.dropped_state_changes,
            damaged: losses.damaged,
            unreadable: losses.unreadable,
            memory_only: spool.is_memory_only(),
            queued: spool.len() as u64,
        }
    }

    /// Losses not reported yet; called once per session.
    pub fn take_unreported_losses(&mut self) -> Option<Losses> {
        self.spool().take_unreported()
    }

    /// Whether the spool's disk failed and reports are held in memory.
    pub fn is_memory_only(&self) -> bool {
        self.spool().is_memory_only()
    }

    /// Fsyncs heartbeats written since the last fsync (a clean stop).
    pub async fn sync(&self) {
        let spool = self.spool.clone();
        let _ = tokio::task::spawn_blocking(move || lock(&spool).sync()).await;
    }
}

/// A panic while the lock was held leaves the spool consistent enough to
/// go on (every method re-checks what it reads).
fn lock(spool: &Mutex<Spool>) -> MutexGuard<'_, Spool> {
    spool.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The wire form of `report`, as the collector will receive it.
fn wire_report(agent_id: &str, boot_id: &str, report: &Report) -> pb::Report {
    match pb::AgentMessage::from(Stamped {
        agent_id,
        boot_id,
        report,
    })
    .body
    {
        Some(pb::agent_message::Body::Report(r)) => r,
        // `From<Stamped>` always makes a report.
        _ => pb::Report::default(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::host::{HostSnapshot, MemoryUsage};

    fn options(dir: &Path) -> Options {
        Options {
            dir: dir.join("spool"),
            max_bytes: 1 << 20,
            segment_bytes: 64 << 10,
            disk_retry: Duration::from_secs(30),
        }
    }

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

    fn report(m: pb::AgentMessage) -> pb::Report {
        match m.body {
            Some(pb::agent_message::Body::Report(r)) => r,
            other => panic!("not a report: {other:?}"),
        }
    }

    fn drain(outbox: &mut Outbox) -> Vec<u64> {
        std::iter::from_fn(|| outbox.next_unsent().map(|m| report(m).seq)).collect()
    }

    async fn open(dir: &Path, boot: &str) -> Outbox {
        Outbox::open(options(dir), "agent-1", boot)
            .await
            .expect("open")
    }

    #[tokio::test]
    async fn seq_starts_at_one_and_reports_are_stamped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut o = open(tmp.path(), "boot-1").await;
        assert_eq!((o.push(change()).await, o.push(heartbeat()).await), (1, 2));
        let first = report(o.next_unsent().expect("first"));
        assert_eq!(
            (first.agent_id.as_str(), first.boot_id.as_str(), first.seq),
            ("agent-1", "boot-1", 1)
        );
        assert!(matches!(
            first.payload,
            Some(pb::report::Payload::StateChanges(_))
        ));
        assert_eq!(drain(&mut o), [2]);
        assert!(!o.has_unsent());
    }

    #[tokio::test]
    async fn acked_reports_are_not_resent_and_the_rest_are_in_order() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut o = open(tmp.path(), "b").await;
        for _ in 0..5 {
            o.push(change()).await;
        }
        assert_eq!(drain(&mut o), [1, 2, 3, 4, 5]);
        assert!(o.ack("b", 2).await);
        assert!(o.ack("b", 4).await);
        assert!(!o.ack("b", 4).await, "repeat ack");
        assert!(!o.ack("other-boot", 1).await, "another boot's seq");
        // disconnect: queued while offline, then resent after reconnect
        o.push(change()).await;
        o.rewind();
        assert_eq!(drain(&mut o), [1, 3, 5, 6]);
        for seq in [1, 3, 5, 6] {
            o.ack("b", seq).await;
        }
        assert!(o.is_empty());
    }

    #[tokio::test]
    async fn heartbeats_tell_the_collector_about_the_spool() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut o = open(tmp.path(), "b").await;
        o.push(change()).await;
        o.push(heartbeat()).await;
        let reports: Vec<_> = std::iter::from_fn(|| o.next_unsent().map(report)).collect();
        assert!(matches!(
            reports[0].payload,
            Some(pb::report::Payload::StateChanges(_))
        ));
        let Some(pb::report::Payload::Heartbeat(h)) = &reports[1].payload else {
            panic!("not a heartbeat: {:?}", reports[1]);
        };
        let spool = h.spool.as_ref().expect("spool status");
        assert_eq!(spool.queued, 1, "the state change waits for its ack");
        assert_eq!(
            (spool.dropped_heartbeats, spool.dropped_state_changes),
            (0, 0)
        );
        assert!(!spool.memory_only);
    }

    #[tokio::test]
    async fn new_reports_follow_while_connected() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut o = open(tmp.path(), "b").await;
        o.push(change()).await;
        assert_eq!(drain(&mut o), [1]);
        o.push(change()).await;
        assert!(o.has_unsent());
        assert_eq!(drain(&mut o), [2]);
    }

    #[tokio::test]
    async fn a_restart_resends_the_earlier_runs_reports_under_their_ids() {
        let tmp = tempfile::tempdir().expect("tempdir");
        {
            let mut o = open(tmp.path(), "boot-1").await;
            o.push(change()).await;
            o.push(heartbeat()).await;
            o.push(change()).await;
            assert!(o.ack("boot-1", 1).await);
            // dropped without a clean stop, like kill -9
        }
        let mut o = open(tmp.path(), "boot-2").await;
        o.push(change()).await;
        let sent: Vec<(String, u64)> = std::iter::from_fn(|| o.next_unsent())
            .map(report)
            .map(|r| (r.boot_id, r.seq))
            .collect();
        assert_eq!(
            sent,
            [
                ("boot-1".to_owned(), 2),
                ("boot-1".to_owned(), 3),
                ("boot-2".to_owned(), 1)
            ]
        );
        for (boot, seq) in [("boot-1", 2), ("boot-1", 3), ("boot-2", 1)] {
            assert!(o.ack(boot, seq).await, "{boot} {seq}");
        }
        assert!(o.is_empty());
        drop(o);
        assert!(open(tmp.path(), "boot-3").await.is_empty());
    }

    #[tokio::test]
    async fn acks_are_on_disk_when_ack_returns() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // A few records per segment: acks delete whole closed segments and
        // dead-list single records, in closed segments and the open one.
        let small = Options {
            segment_bytes: 256,
            ..options(tmp.path())
        };
        let segments = || {
            let dir = std::fs::read_dir(tmp.path().join("spool")).expect("spool");
            dir.flatten()
                .filter(|f| f.path().extension().is_some_and(|e| e == "seg"))
                .count()
        };
        {
            let mut o = Outbox::open(small.clone(), "agent-1", "boot-1")
                .await
                .expect("open");
            for _ in 0..12 {
                o.push(change()).await;
            }
            let before = segments();
            assert!(before >= 3, "{before} segments");
            for seq in [1, 2, 3, 4, 5, 7, 12] {
                assert!(o.ack("boot-1", seq).await, "{seq}");
            }
            assert!(segments() < before, "a fully acked segment is deleted");
            assert_eq!(drain(&mut o), [6, 8, 9, 10, 11]);
            // dropped without a clean stop (no sync), like kill -9
        }
        let mut o = Outbox::open(small, "agent-1", "boot-2")
            .await
            .expect("reopen");
        assert_eq!(drain(&mut o), [6, 8, 9, 10, 11]);
    }
}
