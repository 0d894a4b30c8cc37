//! One simulated agent: a task holding its own mTLS connection and
//! `Ingest/Session` stream, as agent/src/session.rs does.
//!
//! Hello, then a heartbeat at once and every interval (the real agent's
//! resync heartbeat after a reconnect, then its schedule), and state
//! changes at random times: a check raised to WARN/CRIT, later back to OK.
//! Every report's send → ack time is recorded. A lost session reconnects
//! with the agent's own backoff (`forewarn_agent::backoff`: full jitter,
//! 0–1 s doubling to 0–30 s, reset after a session that got an ack).
//! With several collector URLs agent i starts on URL i mod n and moves on
//! to the next one after a session that never got an ack (failed connect).
//!
//! Unlike the real agent it keeps no spool: what would be observed while
//! disconnected is not sent later, so a reconnect costs the collector only
//! the session open and one heartbeat.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use forewarn_agent::backoff::Backoff;
use forewarn_agent::endpoint::{self, CollectorUrl, Tls};
use forewarn_proto::v1 as pb;
use forewarn_proto::v1::ingest_client::IngestClient;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior, sleep, sleep_until};
use tokio_stream::wrappers::ReceiverStream;

use crate::checks::{self, CheckSet, Raised};
use crate::enroll::{AgentSpec, StateDir};
use crate::stats::{Kind, Stats};

/// Same as the real agent's buffer between its loop and the stream.
const OUTBOUND_BUFFER: usize = 16;
/// How long a stopping agent waits for the collector to close after Goodbye.
const STOP_CLOSE_WAIT: Duration = Duration::from_secs(2);

/// What every agent shares.
pub struct Shared {
    /// One or more (replicas); never empty.
    pub urls: Vec<CollectorUrl>,
    pub server_name: String,
    pub ca_pem: String,
    pub state: StateDir,
    pub checks: CheckSet,
    pub interval: Duration,
    /// Mean seconds between raised checks per agent (`None`: no changes).
    pub raise_every_secs: Option<f64>,
    pub problem_secs: f64,
    pub ack_timeout: Duration,
    /// Boot ids are `<run id>-<agent index>`: one process start per run.
    pub run_id: String,
    pub stats: Stats,
}

/// A check currently raised.
#[derive(Debug, Clone, Copy)]
struct Problem {
    check: u8,
    state: Raised,
    since_ms: i64,
    until: Instant,
}

/// An agent's state across sessions: small on purpose.
struct Agent {
    spec: AgentSpec,
    /// Index into `Shared::urls` of the collector it reports to.
    url: usize,
    hostname: String,
    boot_id: String,
    seq: u64,
    started_ms: i64,
    /// Last time each check went back to OK: (check, ms).
    cleared: Vec<(u8, i64)>,
    problems: Vec<Problem>,
    next_raise: Option<Instant>,
}

/// A report waiting for its ack.
struct Pending {
    seq: u64,
    sent: Instant,
    kind: Kind,
    timed_out: bool,
}

/// Why a session ended.
enum End {
    Stopped,
    Lost { worked: bool },
}

/// Runs agent `spec` until `stop` turns true: first connect at `start`.
pub async fn run(
    spec: AgentSpec,
    start: Instant,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    let mut stop = stop;
    let hostname = shared
        .state
        .load(spec.index)
        .map(|f| f.hostname)
        .unwrap_or_default();
    let mut agent = Agent {
        boot_id: format!("{}-{}", shared.run_id, spec.index),
        url: spec.index % shared.urls.len(),
        spec,
        hostname,
        seq: 0,
        started_ms: checks::now_ms(),
        cleared: Vec::new(),
        problems: Vec::new(),
        next_raise: None,
    };
    agent.schedule_raise(&shared);
    tokio::select! {
        _ = sleep_until(start) => {}
        () = stopped(&mut stop) => return,
    }
    let mut backoff = Backoff::default();
    loop {
        match agent.session(&shared, &mut stop).await {
            End::Stopped => return,
            End::Lost { worked } => {
                if worked {
                    backoff.reset();
                } else {
                    agent.url = next_url(agent.url, shared.urls.len());
                }
            }
        }
        tokio::select! {
            _ = sleep(backoff.next_delay()) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

// === impl Agent ===

impl Agent {
    fn schedule_raise(&mut self, shared: &Shared) {
        self.next_raise = shared.raise_every_secs.map(|mean| {
            // Exponential gaps: raises arrive as a Poisson process.
            let u: f64 = rand::random::<f64>().max(f64::MIN_POSITIVE);
            Instant::now() + Duration::from_secs_f64((-u.ln() * mean).min(1e9))
        });
    }

    /// Connects, says Hello and runs the session until it ends.
    async fn session(&mut self, shared: &Shared, stop: &mut watch::Receiver<bool>) -> End {
        let (tx, inbound) = match self.open(shared).await {
            Ok(link) => link,
            Err(label) => {
                shared.stats.error(&label);
                return End::Lost { worked: false };
            }
        };
        let mut inbound = inbound;
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut worked = false;
        let mut heartbeat = tokio::time::interval(shared.interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let lost = |worked: bool| {
            if worked {
                shared.stats.link_down();
            }
            End::Lost { worked }
        };
        loop {
            let next_change = self.next_change();
            let ack_deadline = pending
                .iter()
                .find(|p| !p.timed_out)
                .map(|p| p.sent + shared.ack_timeout);
            tokio::select! {
                biased;
                () = stopped(stop) => {
                    goodbye(tx, inbound).await;
                    if worked {
                        shared.stats.link_down();
                    }
                    return End::Stopped;
                }
                message = inbound.message() => match message {
                    Ok(Some(pb::CollectorMessage { body: Some(pb::collector_message::Body::Ack(a)) })) => {
                        if a.boot_id != self.boot_id {
                            continue;
                        }
                        if let Some(i) = pending.iter().position(|p| p.seq == a.seq)
                            && let Some(p) = pending.remove(i)
                        {
                            shared.stats.ack(p.kind, p.sent.elapsed());
                        }
                        if !worked {
                            worked = true;
                            if let Some((n, secs)) = shared.stats.link_up() {
                                println!("reconnected {n} agents in {secs:.2} s");
                            }
                        }
                    }
                    // Policy pushes (a new interval) are not applied: the
                    // run keeps the interval it was given.
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        shared.stats.error("stream_closed");
                        return lost(worked);
                    }
                    Err(status) => {
                        shared.stats.error(&format!("{:?}", status.code()));
                        return lost(worked);
                    }
                },
                _ = heartbeat.tick() => {
                    let msg = self.heartbeat(shared);
                    if !self.send(&tx, msg, Kind::Heartbeat, &mut pending, shared) {
                        return lost(worked);
                    }
                }
                _ = sleep_until(next_change.unwrap_or_else(far_future)), if next_change.is_some() => {
                    if let Some(msg) = self.change(shared)
                        && !self.send(&tx, msg, Kind::Change, &mut pending, shared)
                    {
                        return lost(worked);
                    }
                }
                _ = sleep_until(ack_deadline.unwrap_or_else(far_future)), if ack_deadline.is_some() => {
                    if let Some(p) = pending.iter_mut().find(|p| !p.timed_out) {
                        p.timed_out = true;
                        shared.stats.error("ack_timeout");
                    }
                }
            }
        }
    }

    /// Connection, stream and Hello, as agent/src/session.rs `open` does;
    /// `Err` is the error label.
    async fn open(
        &self,
        shared: &Shared,
    ) -> Result<
        (
            mpsc::Sender<pb::AgentMessage>,
            tonic::Streaming<pb::CollectorMessage>,
        ),
        String,
    > {
        // Key and certificate are read at each connect, not kept per agent.
        let path = shared.state.agent_path(self.spec.index);
        let text = tokio::fs::read(&path)
            .await
            .map_err(|_| "state_file".to_string())?;
        let file: crate::enroll::AgentFile =
            serde_json::from_slice(&text).map_err(|_| "state_file".to_string())?;
        let tls = Tls {
            ca_pem: &shared.ca_pem,
            server_name: &shared.server_name,
            client: Some((&file.chain_pem, &file.key_pem)),
        };
        let channel = endpoint::connect(&shared.urls[self.url], &tls)
            .await
            .map_err(|_| "connect".to_string())?;
        let (tx, rx) = mpsc::channel(OUTBOUND_BUFFER);
        let hello = pb::AgentMessage {
            body: Some(pb::agent_message::Body::Hello(pb::Hello {
                agent_id: self.spec.agent_id.to_string(),
                boot_id: self.boot_id.clone(),
                host: Some(checks::facts(&self.hostname)),
                interval_secs: u32::try_from(shared.interval.as_secs()).unwrap_or(u32::MAX),
                sent_at: Some(checks::timestamp(checks::now_ms())),
            })),
        };
        // Cannot fail: `rx` is alive and the buffer is empty.
        let _ = tx.try_send(hello);
        let inbound = IngestClient::new(channel)
            .session(ReceiverStream::new(rx))
            .await
            .map_err(|status| format!("{:?}", status.code()))?
            .into_inner();
        Ok((tx, inbound))
    }

    /// Queues a report; false if the stream is gone. A full buffer means
    /// the collector has not read the last 16 reports: counted, not sent.
    fn send(
        &mut self,
        tx: &mpsc::Sender<pb::AgentMessage>,
        payload: pb::report::Payload,
        kind: Kind,
        pending: &mut VecDeque<Pending>,
        shared: &Shared,
    ) -> bool {
        self.seq += 1;
        let msg = pb::AgentMessage {
            body: Some(pb::agent_message::Body::Report(pb::Report {
                agent_id: self.spec.agent_id.to_string(),
                boot_id: self.boot_id.clone(),
                seq: self.seq,
                observed_at: Some(checks::timestamp(checks::now_ms())),
                payload: Some(payload),
            })),
        };
        match tx.try_send(msg) {
            Ok(()) => {
                pending.push_back(Pending {
                    seq: self.seq,
                    sent: Instant::now(),
                    kind,
                    timed_out: false,
                });
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                shared.stats.error("send_buffer_full");
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                shared.stats.error("stream_closed");
                false
            }
        }
    }

    fn heartbeat(&self, shared: &Shared) -> pb::report::Payload {
        let set = shared.checks;
        let index = self.spec.index;
        let checks = (0..set.len())
            .map(|i| {
                let raised = self.problems.iter().find(|p| usize::from(p.check) == i);
                let since = raised.map_or_else(|| self.ok_since(i), |p| p.since_ms);
                set.result(index, i, raised.map(|p| p.state), since)
            })
            .collect();
        let uptime = u64::try_from((checks::now_ms() - self.started_ms) / 1000).unwrap_or(0);
        pb::report::Payload::Heartbeat(pb::Heartbeat {
            snapshot: Some(set.snapshot(index, 86_400 + uptime)),
            checks,
            spool: Some(pb::SpoolStatus::default()),
        })
    }

    fn ok_since(&self, check: usize) -> i64 {
        self.cleared
            .iter()
            .find(|(c, _)| usize::from(*c) == check)
            .map_or(self.started_ms, |&(_, ms)| ms)
    }

    /// When the next raise or clear is due.
    fn next_change(&self) -> Option<Instant> {
        let clear = self.problems.iter().map(|p| p.until).min();
        match (self.next_raise, clear) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The due change as a `StateChanges` report, if there is one to send.
    fn change(&mut self, shared: &Shared) -> Option<pb::report::Payload> {
        let now = Instant::now();
        let set = shared.checks;
        let now_ms = checks::now_ms();
        if let Some(i) = self.problems.iter().position(|p| p.until <= now) {
            let p = self.problems.swap_remove(i);
            self.cleared.retain(|(c, _)| *c != p.check);
            self.cleared.push((p.check, now_ms));
            let r = set.result(self.spec.index, usize::from(p.check), None, now_ms);
            return Some(state_changes(r));
        }
        if self.next_raise.is_some_and(|t| t <= now) {
            self.schedule_raise(shared);
            let free: Vec<u8> = (0..set.len().min(usize::from(u8::MAX)))
                .map(|c| c as u8)
                .filter(|c| !self.problems.iter().any(|p| p.check == *c))
                .collect();
            if free.is_empty() {
                return None;
            }
            let check = free[rand::random_range(0..free.len())];
            let state = if rand::random::<bool>() {
                Raised::Crit
            } else {
                Raised::Warn
            };
            let lasts = shared.problem_secs * rand::random_range(0.5..1.5);
            self.problems.push(Problem {
                check,
                state,
                since_ms: now_ms,
                until: now + Duration::from_secs_f64(lasts),
            });
            let r = set.result(self.spec.index, usize::from(check), Some(state), now_ms);
            return Some(state_changes(r));
        }
        None
    }
}

fn state_changes(r: pb::CheckResult) -> pb::report::Payload {
    pb::report::Payload::StateChanges(pb::StateChanges { results: vec![r] })
}

/// The URL after `i` of `n`, round and round.
fn next_url(i: usize, n: usize) -> usize {
    (i + 1) % n.max(1)
}

/// Resolves once the run stops (the `watch::Ref` is not kept: not `Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// Clean stop: Goodbye, end the request stream, let the collector close.
async fn goodbye(
    tx: mpsc::Sender<pb::AgentMessage>,
    mut inbound: tonic::Streaming<pb::CollectorMessage>,
) {
    let bye = pb::AgentMessage {
        body: Some(pb::agent_message::Body::Goodbye(pb::Goodbye {
            reason: "loadgen stopping".to_string(),
        })),
    };
    let _ = tokio::time::timeout(STOP_CLOSE_WAIT, tx.send(bye)).await;
    drop(tx);
    let _ = tokio::time::timeout(STOP_CLOSE_WAIT, async {
        while let Ok(Some(_)) = inbound.message().await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::next_url;

    #[test]
    fn urls_rotate() {
        assert_eq!(next_url(0, 1), 0);
        assert_eq!(next_url(0, 2), 1);
        assert_eq!(next_url(1, 2), 0);
        assert_eq!(next_url(2, 3), 0);
    }
}
