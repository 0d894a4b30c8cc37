//! Group commit for the ingest path: the hellos, reports and session ends
//! of every connected agent go through a few writer tasks, each of which
//! applies whatever has queued up meanwhile in one write transaction and
//! answers each request only after that transaction committed.
//!
//! Why: with one transaction per report, SQLite's writers queue for its one
//! write lock through busy-wait sleeps and the lock sits idle while they
//! sleep; every commit also pays its own fsync. One writer that batches
//! keeps the lock busy, pays one commit per batch, and needs no waiting at
//! all. On PostgreSQL concurrent transactions are fine, so there are a few
//! lanes (an agent always uses the same one, so its writes stay in order),
//! and batching still saves a commit per report.
//!
//! A batch fails as a whole (a request refused for its own reason, such as
//! a revoked agent, or the database failing): it is rolled back and its
//! requests are applied again one by one, each in its own transaction, so
//! one request never fails or delays the others' answer by more than that.
//! Nothing is acknowledged that was not committed.

use std::hash::BuildHasher;

use tokio::sync::{mpsc, oneshot};

use super::report::{Hello, SessionEnd};
use super::service::{Desk, Service};
use crate::domain::{ApplyOutcome, HostFacts, Millis, Report, ReportPayload};
use crate::live::Kind;
use crate::{Error, Result};

/// Most requests applied in one transaction: bounds the time one commit
/// makes the earliest of them wait.
const MAX_BATCH: usize = 256;

/// Requests waiting per lane before senders wait (back-pressure reaches
/// the agents through their streams).
const QUEUE: usize = 4096;

/// One ingest write, owned so it can wait in the queue.
#[derive(Debug)]
pub enum Write {
    Hello {
        tenant_id: String,
        agent_id: String,
        boot_id: String,
        facts: HostFacts,
        interval_secs: u32,
        clock_offset_ms: Option<i64>,
        now: Millis,
    },
    Report {
        tenant_id: String,
        agent_id: String,
        report: Report,
        now: Millis,
    },
    End {
        tenant_id: String,
        agent_id: String,
        started_at: Millis,
        clean: bool,
        now: Millis,
    },
}

impl Write {
    fn agent_id(&self) -> &str {
        match self {
            Write::Hello { agent_id, .. }
            | Write::Report { agent_id, .. }
            | Write::End { agent_id, .. } => agent_id,
        }
    }
}

struct Request {
    write: Write,
    reply: oneshot::Sender<Result<ApplyOutcome>>,
}

/// The handle the ingest sessions write through; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    lanes: Vec<mpsc::Sender<Request>>,
    hasher: std::hash::RandomState,
}

impl Writer {
    /// Starts `lanes` writer tasks over `svc` (at least one). They stop
    /// when every handle is dropped.
    pub fn start(svc: &Service, lanes: usize) -> Self {
        let lanes = (0..lanes.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(run(svc.clone(), rx));
                tx
            })
            .collect();
        Self {
            lanes,
            hasher: std::hash::RandomState::new(),
        }
    }

    /// The lanes a store's backend is best served by: one for SQLite's
    /// single writer, a few for PostgreSQL.
    pub fn lanes_for(backend: &str) -> usize {
        if backend == "postgres" { 4 } else { 1 }
    }

    /// Applies `write` with the others queued meanwhile; returns once it is
    /// committed (a report's outcome; the default outcome otherwise).
    pub async fn apply(&self, write: Write) -> Result<ApplyOutcome> {
        let hash = self.hasher.hash_one(write.agent_id());
        let lane = usize::try_from(hash % self.lanes.len() as u64).unwrap_or(0);
        let (reply, answer) = oneshot::channel();
        self.lanes[lane]
            .send(Request { write, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::Unavailable("the collector's writer has stopped".into())
}

async fn run(svc: Service, mut rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        crate::metrics::METRICS.write_batch(batch.len());
        apply_batch(&svc, &mut batch).await;
        batch.clear();
    }
}

/// Applies `batch` in one transaction and answers each request; on any
/// failure, applies them one by one instead. When the store is unreachable
/// the requests still waiting are answered at once with that error rather
/// than each waiting out its own connection timeout.
async fn apply_batch(svc: &Service, batch: &mut Vec<Request>) {
    if batch.len() > 1 {
        match together(svc, batch).await {
            Ok(outcomes) => {
                for (req, outcome) in batch.drain(..).zip(outcomes) {
                    let _ = req.reply.send(Ok(outcome));
                }
                return;
            }
            Err(error) if error.is_unavailable() => {
                return refuse_all(batch, &error);
            }
            Err(_) => {}
        }
    }
    let mut requests = batch.drain(..);
    while let Some(req) = requests.next() {
        let result = alone(svc, &req.write).await;
        let down = result
            .as_ref()
            .err()
            .filter(|e| e.is_unavailable())
            .map(ToString::to_string);
        let _ = req.reply.send(result);
        if let Some(error) = down {
            for req in requests.by_ref() {
                let _ = req.reply.send(Err(Error::Unavailable(error.clone())));
            }
        }
    }
}

fn refuse_all(batch: &mut Vec<Request>, error: &Error) {
    for req in batch.drain(..) {
        let _ = req.reply.send(Err(Error::Unavailable(error.to_string())));
    }
}

async fn together(svc: &Service, batch: &[Request]) -> Result<Vec<ApplyOutcome>> {
    let mut desk = svc.begin().await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for req in batch {
        outcomes.push(apply_in(svc, &mut desk, &req.write).await?);
    }
    desk.commit().await?;
    Ok(outcomes)
}

async fn alone(svc: &Service, write: &Write) -> Result<ApplyOutcome> {
    let mut desk = svc.begin().await?;
    let outcome = apply_in(svc, &mut desk, write).await?;
    desk.commit().await?;
    Ok(outcome)
}

async fn apply_in(svc: &Service, desk: &mut Desk<'_>, write: &Write) -> Result<ApplyOutcome> {
    match write {
        Write::Hello {
            tenant_id,
            agent_id,
            boot_id,
            facts,
            interval_secs,
            clock_offset_ms,
            now,
        } => {
            let hello = Hello {
                tenant_id,
                agent_id,
                boot_id,
                facts,
                interval_secs: *interval_secs,
                clock_offset_ms: *clock_offset_ms,
            };
            svc.start_session_in(desk, &hello, *now).await?;
            desk.changed(tenant_id, Kind::Agent);
            Ok(ApplyOutcome::default())
        }
        Write::Report {
            tenant_id,
            agent_id,
            report,
            now,
        } => {
            let outcome = svc
                .apply_report_in(desk, tenant_id, agent_id, report, *now)
                .await?;
            // A heartbeat repeats states (a changed one opens or resolves a
            // ticket, which publishes itself); state changes show at once.
            if !outcome.duplicate && matches!(report.payload, ReportPayload::StateChanges(_)) {
                desk.changed(tenant_id, Kind::Agent);
            }
            Ok(outcome)
        }
        Write::End {
            tenant_id,
            agent_id,
            started_at,
            clean,
            now,
        } => {
            let end = SessionEnd {
                tenant_id,
                agent_id,
                started_at: *started_at,
                clean: *clean,
            };
            svc.end_session_in(desk, &end, *now).await?;
            desk.changed(tenant_id, Kind::Agent);
            Ok(ApplyOutcome::default())
        }
    }
}
