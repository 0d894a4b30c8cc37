//! The agent's side of `Ingest/Session`: one long-lived mutual-TLS stream.
//! Says Hello, resends every unacknowledged report in spool order (an
//! earlier run's first, under their own boot id), then forwards
//! observations as numbered reports — each spooled before it is sent — and
//! forgets each one only when the collector acknowledges it. When a session
//! fails or cannot open, the next collector address is tried at once
//! (`collectors.rs`), with backoff between full rounds of addresses;
//! observations made while disconnected wait in the spool, and whatever the
//! last collector did not acknowledge is resent to the next one.
//! On stop: waits briefly for pending acks, says Goodbye. When the
//! certificate was renewed, the stream is closed gracefully (collected acks
//! first) and reopened at once with the new identity.

use std::sync::Arc;
use std::time::Duration;

use forewarn_proto::v1 as pb;
use forewarn_proto::v1::ingest_client::IngestClient;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, sleep, sleep_until};
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::collectors::{Collectors, Rotation, Step, Target};
use crate::endpoint::{self, Tls};
use crate::error::{Error, Result, chain};
use crate::host::HostFacts;
use crate::identity::Credentials;
use crate::outbox::Outbox;
use crate::report::{CollectorEvent, Goodbye, Hello, Observation};

/// Messages buffered between the session loop and the gRPC stream. Small:
/// the spool is the real queue, and a small buffer keeps the send cursor
/// honest about what was handed over.
const OUTBOUND_BUFFER: usize = 16;

/// How long a stopping agent waits for acks of what it already sent.
const STOP_ACK_WAIT: Duration = Duration::from_secs(2);
/// How long it then waits for the collector to close after Goodbye.
const STOP_CLOSE_WAIT: Duration = Duration::from_secs(1);
/// How long a session closing for a renewed certificate waits for the
/// collector to acknowledge what it has and close.
const RENEW_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Who connects where, with what.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Every collector address; one session at a time.
    pub collectors: Collectors,
    pub server_name: String,
    pub credentials: Credentials,
    pub boot_id: String,
    pub facts: HostFacts,
}

/// The session's inputs and outputs, besides its config.
pub struct SessionIo {
    /// Observations from the scheduler.
    pub observations: mpsc::Receiver<Observation>,
    /// The effective heartbeat interval; the collector's policy may change it.
    pub interval: watch::Sender<Duration>,
    /// Becomes true when the agent is asked to stop.
    pub shutdown: watch::Receiver<bool>,
    /// The current credentials; a change (a renewed certificate) makes the
    /// session reconnect with them.
    pub credentials: watch::Receiver<Credentials>,
    /// Notified when a session opens after an earlier one was lost: the
    /// scheduler then sends a heartbeat with every check's current state at
    /// once, so the collector never keeps acting on what it saw before the
    /// link went down (even if the spool had to drop reports meanwhile).
    pub resync: Arc<Notify>,
    /// Update offers go to the update task (`update/`).
    pub offers: mpsc::Sender<crate::update::Offer>,
    /// Update results from the update task, sent as they come.
    pub update_results: mpsc::Receiver<crate::update::UpdateReport>,
}

/// An open stream.
struct Link {
    tx: mpsc::Sender<pb::AgentMessage>,
    inbound: tonic::Streaming<pb::CollectorMessage>,
}

/// Why a connected session ended.
enum End {
    Stopped,
    Renewed,
    Lost { error: String, worked: bool },
}

/// Runs sessions until shutdown; every connection failure is retried, at
/// the next collector address first.
pub async fn run(mut config: SessionConfig, mut outbox: Outbox, mut io: SessionIo) {
    let mut backoff = Backoff::default();
    let mut rotation = Rotation::default();
    let mut first_session = true;
    loop {
        {
            let latest = io.credentials.borrow_and_update();
            if *latest != config.credentials {
                config.credentials = latest.clone();
            }
        }
        if rotation.needs_round() {
            let round = config.collectors.round(rotation.last_failed());
            let Some(round) = queue_while(round, &mut outbox, &mut io).await else {
                return stopped_offline(&outbox).await;
            };
            rotation.start_round(round);
        }
        let step = match rotation.take_next() {
            None => {
                warn!(collectors = %config.collectors, "no collector address resolved");
                Step::Backoff
            }
            Some(target) => {
                let Some(step) = attempt(
                    &config,
                    target,
                    &mut rotation,
                    &mut backoff,
                    &mut outbox,
                    &mut io,
                    &mut first_session,
                )
                .await
                else {
                    return;
                };
                step
            }
        };
        if step == Step::Now {
            continue;
        }
        let delay = backoff.next_delay();
        debug!(?delay, "reconnecting after delay");
        if queue_while(sleep(delay), &mut outbox, &mut io)
            .await
            .is_none()
        {
            return stopped_offline(&outbox).await;
        }
    }
}

/// One session at `target`, from connecting to its end; `None` when the
/// agent stopped, else what to do next.
async fn attempt(
    config: &SessionConfig,
    target: Target,
    rotation: &mut Rotation,
    backoff: &mut Backoff,
    outbox: &mut Outbox,
    io: &mut SessionIo,
    first_session: &mut bool,
) -> Option<Step> {
    let open = open(config, &target, *io.interval.borrow());
    let Some(opened) = queue_while(open, outbox, io).await else {
        stopped_offline(outbox).await;
        return None;
    };
    let link = match opened {
        Ok(link) => link,
        Err(e) => {
            warn!(error = %chain(&e), collector = %target, "cannot open session");
            return Some(rotation.failed(&target, false));
        }
    };
    info!(collector = %target, queued = outbox.len(), "session open");
    report_losses(outbox);
    if !std::mem::take(first_session) {
        io.resync.notify_one();
    }
    match serve(config, link, outbox, io).await {
        End::Stopped => None,
        End::Renewed => {
            info!(collector = %target, "reconnecting with the renewed certificate");
            backoff.reset();
            rotation.again(target);
            Some(Step::Now)
        }
        End::Lost { error, worked } => {
            if worked {
                backoff.reset();
            }
            warn!(%error, collector = %target, queued = outbox.len(), "session lost");
            Some(rotation.failed(&target, worked))
        }
    }
}

async fn stopped_offline(outbox: &Outbox) {
    outbox.sync().await;
    if outbox.is_empty() {
        info!("stopping");
    } else if outbox.is_memory_only() {
        warn!(
            undelivered = outbox.len(),
            "stopping while disconnected with the spool in memory only: reports not on disk are lost"
        );
    } else {
        info!(
            undelivered = outbox.len(),
            "stopping while disconnected, reports stay in the spool"
        );
    }
}

/// Once per session: what the spool lost since the last one (its bound,
/// damaged records). The wire has no field for it; the log line is the
/// report.
fn report_losses(outbox: &mut Outbox) {
    if let Some(l) = outbox.take_unreported_losses() {
        let total = outbox.losses();
        warn!(
            dropped_heartbeats = l.dropped_heartbeats,
            dropped_state_changes = l.dropped_state_changes,
            damaged = l.damaged,
            unreadable = l.unreadable,
            lost_total = total.total(),
            "reports lost before this session (spool full or damaged)"
        );
    }
}

/// Drives `fut` to completion while queueing observations; `None` if the
/// agent is asked to stop first.
async fn queue_while<F: Future>(
    fut: F,
    outbox: &mut Outbox,
    io: &mut SessionIo,
) -> Option<F::Output> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Some(out),
            Some(observation) = io.observations.recv() => {
                outbox.push(observation).await;
            }
            _ = io.shutdown.changed() => return None,
        }
    }
}

/// Connects, opens the stream and queues Hello as its first message.
async fn open(config: &SessionConfig, target: &Target, interval: Duration) -> Result<Link> {
    let c = &config.credentials;
    let channel = endpoint::connect(
        &target.dial(),
        &Tls {
            ca_pem: &c.ca_pem,
            server_name: &config.server_name,
            client: Some((&c.chain_pem, &c.key_pem)),
        },
    )
    .await?;
    let hello = Hello {
        agent_id: c.identity.agent_id.clone(),
        boot_id: config.boot_id.clone(),
        facts: config.facts.clone(),
        interval_secs: u32::try_from(interval.as_secs()).unwrap_or(u32::MAX),
        // Stamped right before it goes out: the collector reads the clock
        // offset from it.
        sent_at: std::time::SystemTime::now(),
    };
    let (tx, rx) = mpsc::channel(OUTBOUND_BUFFER);
    // Cannot fail: `rx` is alive and the buffer is empty.
    let _ = tx.try_send(pb::AgentMessage::from(&hello));
    let inbound = IngestClient::new(channel)
        .session(ReceiverStream::new(rx))
        .await
        .map_err(|status| Error::rejected("session", &status))?
        .into_inner();
    Ok(Link { tx, inbound })
}

/// The connected loop: sends unsent reports in seq order, applies acks and
/// policy, queues new observations.
async fn serve(config: &SessionConfig, link: Link, outbox: &mut Outbox, io: &mut SessionIo) -> End {
    let Link { tx, mut inbound } = link;
    outbox.rewind();
    let mut worked = false;
    let renewed = loop {
        tokio::select! {
            biased;
            _ = io.shutdown.changed() => break false,
            Ok(()) = io.credentials.changed() => break true,
            message = inbound.message() => match message {
                Ok(Some(message)) => {
                    worked |= apply(config, message.into(), outbox, &io.interval, &io.offers).await;
                }
                Ok(None) => return End::Lost { error: "collector closed the session".to_owned(), worked },
                Err(status) => {
                    let error = format!("{} (grpc status {:?})", status.message(), status.code());
                    return End::Lost { error, worked };
                }
            },
            Some(observation) = io.observations.recv() => {
                outbox.push(observation).await;
            }
            Some(result) = io.update_results.recv() => {
                if tx.send(pb::AgentMessage::from(&result)).await.is_err() {
                    return End::Lost { error: "request stream closed".to_owned(), worked };
                }
            }
            permit = tx.reserve(), if outbox.has_unsent() => match permit {
                Ok(permit) => send_next(permit, outbox),
                Err(_) => return End::Lost { error: "request stream closed".to_owned(), worked },
            },
        }
    };
    if renewed {
        close_for_renewal(config, tx, inbound, outbox, io).await;
        return End::Renewed;
    }
    stop(config, tx, inbound, outbox, io).await;
    End::Stopped
}

/// Ends the request stream without Goodbye (the agent is not going away)
/// and applies acks until the collector closes, so it has recorded the end
/// of this session before the next one starts. Unacknowledged reports are
/// resent on the next session.
async fn close_for_renewal(
    config: &SessionConfig,
    tx: mpsc::Sender<pb::AgentMessage>,
    mut inbound: tonic::Streaming<pb::CollectorMessage>,
    outbox: &mut Outbox,
    io: &mut SessionIo,
) {
    drop(tx);
    let closed = tokio::time::timeout(RENEW_CLOSE_WAIT, async {
        loop {
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(message)) => {
                        apply(config, message.into(), outbox, &io.interval, &io.offers).await;
                    }
                    _ => break,
                },
                Some(observation) = io.observations.recv() => {
                    outbox.push(observation).await;
                }
            }
        }
    })
    .await;
    debug!(
        closed = closed.is_ok(),
        unacknowledged = outbox.len(),
        "session closed for the renewed certificate"
    );
}

fn send_next(permit: mpsc::Permit<'_, pb::AgentMessage>, outbox: &mut Outbox) {
    if let Some(message) = outbox.next_unsent() {
        permit.send(message);
    }
}

/// Applies a collector message; true if it acknowledged one of our reports.
async fn apply(
    config: &SessionConfig,
    event: CollectorEvent,
    outbox: &mut Outbox,
    interval: &watch::Sender<Duration>,
    offers: &mpsc::Sender<crate::update::Offer>,
) -> bool {
    match event {
        // An earlier run's boot id too: its spooled reports are resent
        // under their own (boot_id, seq).
        CollectorEvent::Ack { boot_id, seq } => {
            if outbox.ack(&boot_id, seq).await {
                debug!(%boot_id, seq, "report acknowledged");
            } else {
                debug!(%boot_id, seq, current_boot = %config.boot_id, "repeated ack");
            }
            true
        }
        CollectorEvent::Policy { interval_secs } => {
            if let Some(secs) = interval_secs {
                let new = Duration::from_secs(u64::from(secs));
                if interval.send_if_modified(|current| std::mem::replace(current, new) != new) {
                    info!(
                        interval_secs = secs,
                        "collector policy: heartbeat interval changed"
                    );
                }
            }
            false
        }
        CollectorEvent::UpdateOffer(offer) => {
            // One attempt at a time: an offer while one runs is dropped
            // (the next session offers again).
            if offers.try_send(offer).is_err() {
                debug!("update offer ignored: an update is already in progress");
            }
            false
        }
        CollectorEvent::Unknown => {
            debug!("unknown collector message ignored");
            false
        }
    }
}

/// Clean stop on an open session: hand over what is queued, wait up to
/// `STOP_ACK_WAIT` for acks, say Goodbye, let the stream close.
async fn stop(
    config: &SessionConfig,
    tx: mpsc::Sender<pb::AgentMessage>,
    mut inbound: tonic::Streaming<pb::CollectorMessage>,
    outbox: &mut Outbox,
    io: &mut SessionIo,
) {
    while let Ok(observation) = io.observations.try_recv() {
        outbox.push(observation).await;
    }
    let deadline = Instant::now() + STOP_ACK_WAIT;
    while !outbox.is_empty() {
        tokio::select! {
            _ = sleep_until(deadline) => break,
            message = inbound.message() => match message {
                Ok(Some(message)) => {
                    apply(config, message.into(), outbox, &io.interval, &io.offers).await;
                }
                _ => break,
            },
            permit = tx.reserve(), if outbox.has_unsent() => match permit {
                Ok(permit) => send_next(permit, outbox),
                Err(_) => break,
            },
        }
    }
    let goodbye = Goodbye {
        reason: "agent stopping".to_owned(),
    };
    let sent =
        tokio::time::timeout(STOP_CLOSE_WAIT, tx.send(pb::AgentMessage::from(&goodbye))).await;
    // Ending the request stream lets the collector finish; reading to the
    // end makes sure Goodbye left before the process exits.
    drop(tx);
    let _ = tokio::time::timeout(STOP_CLOSE_WAIT, async {
        while let Ok(Some(message)) = inbound.message().await {
            apply(config, message.into(), outbox, &io.interval, &io.offers).await;
        }
    })
    .await;
    outbox.sync().await;
    if outbox.is_empty() {
        info!(goodbye = matches!(sent, Ok(Ok(()))), "session closed");
    } else {
        warn!(
            unacknowledged = outbox.len(),
            memory_only = outbox.is_memory_only(),
            "session closed with unacknowledged reports (kept in the spool unless memory only)"
        );
    }
}
