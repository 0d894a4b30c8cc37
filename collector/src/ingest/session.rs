//! `Ingest/Session`: the long-lived mTLS stream of one agent.
//!
//! Identity comes from the verified client certificate only. Each report is
//! validated, committed through the group-commit writer
//! ([`crate::tickets::writer`]) and only then acknowledged; a store failure ends the stream with UNAVAILABLE so the
//! agent reconnects and resends what was not acknowledged.
//!
//! Limits at the edge, cheapest first: a session open over the agent's rate
//! (`rate.rs`) or over its session cap is refused with RESOURCE_EXHAUSTED
//! before the store is touched; reports over the agent's rate are delayed
//! (flow control pushes back), never dropped. Every refusal is counted in
//! `forewarn_rejected_total{reason}`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use forewarn_proto::v1 as pb;
use forewarn_proto::v1::ingest_server::Ingest;
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use super::convert;
use super::rate::{Limiters, RateLimits, retry_secs};
use super::sessions::{MAX_SESSIONS_PER_AGENT, Registration, Sessions};
use crate::domain::Millis;
use crate::domain::now_millis;
use crate::metrics::METRICS;
use crate::pki::{PeerIdentity, peer_identity};
use crate::store::Audit;
use crate::tickets::Service;
use crate::tickets::writer::{Write, Writer};
use crate::{Error, Result};

/// How long a new session may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The ingest service.
pub struct IngestService {
    pub(super) svc: Service,
    /// Group commit of hellos, reports and session ends.
    writer: Writer,
    shutdown: watch::Receiver<bool>,
    sessions: Sessions,
    outbox_wake: watch::Sender<u64>,
    /// CA and certificate lifetime for `Renew`; `None` refuses renewals.
    pub(super) renewal: Option<super::renew::Renewal>,
    /// Per-agent rates of session opens, renewals and reports.
    pub(super) limits: Arc<Limiters>,
    /// Agent update offers and downloads (`update.rs`); `None`: none.
    pub(super) offers: Option<Arc<crate::releases::Offers>>,
}

impl IngestService {
    /// `shutdown` turning true ends every open session (UNAVAILABLE), so a
    /// stopping collector does not wait for agents to hang up; `sessions`
    /// lets a revocation close an agent's open streams.
    /// `outbox_wake` ticks after a report changed tickets, so the sinks
    /// deliver at once.
    pub fn new(
        svc: Service,
        shutdown: watch::Receiver<bool>,
        sessions: Sessions,
        outbox_wake: watch::Sender<u64>,
    ) -> Self {
        let writer = Writer::start(&svc, Writer::lanes_for(svc.store().backend()));
        Self {
            svc,
            writer,
            shutdown,
            sessions,
            outbox_wake,
            renewal: None,
            limits: Arc::new(Limiters::new(RateLimits::default())),
            offers: None,
        }
    }

    /// Per-agent request rates (`[grpc] session_rate_*`, `renew_rate_*`,
    /// `report_rate_*`); [`RateLimits::default`] otherwise.
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.limits = Arc::new(Limiters::new(limits));
        self
    }

    /// The verified client certificate's identity, then the store's word
    /// on it (known, same tenant, not revoked). Refusals are counted.
    pub(super) async fn authenticate<T>(&self, request: &Request<T>) -> Result<PeerIdentity> {
        let id = certificate_identity(request).inspect_err(count_refusal)?;
        self.authorize(&id).await?;
        Ok(id)
    }

    /// Whether the store knows `id` as a live agent of its tenant; a
    /// refusal is counted.
    async fn authorize(&self, id: &PeerIdentity) -> Result<()> {
        let auth = self.svc.store().agent_auth(&id.agent_id).await?;
        let refusal = match auth {
            None => Some(("permission_denied", "unknown agent")),
            Some(a) if a.tenant_id != id.tenant_id => Some((
                "permission_denied",
                "certificate tenant does not match the agent",
            )),
            Some(a) if a.revoked => Some(("revoked", "agent is revoked")),
            Some(_) => None,
        };
        match refusal {
            None => Ok(()),
            Some((reason, message)) => {
                METRICS.rejected(reason);
                Err(Error::PermissionDenied(message.into()))
            }
        }
    }
}

/// The identity in the client certificate the TLS layer verified: no store
/// access, so limits keyed by agent can run before any.
pub(super) fn certificate_identity<T>(request: &Request<T>) -> Result<PeerIdentity> {
    let certs = request.peer_certs().ok_or_else(|| {
        Error::Unauthenticated("a client certificate is required; enroll first".into())
    })?;
    let leaf = certs
        .first()
        .ok_or_else(|| Error::Unauthenticated("empty client certificate chain".into()))?;
    peer_identity(leaf)
}

/// Counts a refusal by the kind of error (validation, identity); other
/// errors (the store failing) are no refusal.
pub(super) fn count_refusal(error: &Error) {
    match error {
        Error::Unauthenticated(_) => METRICS.rejected("unauthenticated"),
        Error::PermissionDenied(_) => METRICS.rejected("permission_denied"),
        Error::InvalidArgument(_) => METRICS.rejected("invalid_argument"),
        _ => {}
    }
}

/// An error the agent caused: counted, then returned.
fn invalid(message: impl Into<String>) -> Error {
    METRICS.rejected("invalid_argument");
    Error::InvalidArgument(message.into())
}

type Outbound = mpsc::Sender<std::result::Result<pb::CollectorMessage, Status>>;

#[tonic::async_trait]
impl Ingest for IngestService {
    type SessionStream = ReceiverStream<std::result::Result<pb::CollectorMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> std::result::Result<Response<Self::SessionStream>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let refused = |error: Error| {
            warn!(%error, peer, "session refused");
            METRICS.session_refused(match error {
                Error::Unauthenticated(_) => "unauthenticated",
                Error::PermissionDenied(_) => "permission_denied",
                _ => "error",
            });
            Status::from(error)
        };
        // Cheapest first: the certificate, the agent's rate and session
        // cap (memory only), then the store.
        let id = certificate_identity(&request)
            .inspect_err(count_refusal)
            .map_err(refused)?;
        if let Err(wait) = self.limits.sessions.check(&id.agent_id) {
            let retry_after_secs = retry_secs(wait);
            warn!(
                agent_id = id.agent_id,
                peer, retry_after_secs, "session refused: too many session opens from this agent"
            );
            METRICS.rejected("session_rate");
            METRICS.session_refused("rate_limited");
            return Err(Status::resource_exhausted(format!(
                "too many session opens from this agent: back off and retry in {retry_after_secs} s"
            )));
        }
        let Some(registration) = self.sessions.register(&id.agent_id) else {
            warn!(
                agent_id = id.agent_id,
                peer, "session refused: too many open sessions for this agent"
            );
            return Err(Status::resource_exhausted(format!(
                "at most {MAX_SESSIONS_PER_AGENT} concurrent sessions per agent: retry once \
                 stale ones have closed; if this persists, another machine may share this \
                 agent's identity (a cloned disk or copied state dir)"
            )));
        };
        self.authorize(&id).await.map_err(refused)?;
        let (tx, rx) = mpsc::channel(64);
        let svc = self.svc.clone();
        let writer = self.writer.clone();
        let inbound = request.into_inner();
        let mut shutdown = self.shutdown.clone();
        let mut revoked = registration.revoked.clone();
        let outbox_wake = self.outbox_wake.clone();
        let limits = self.limits.clone();
        let offers = self.offers.clone();
        tokio::spawn(async move {
            let agent_id = id.agent_id.clone();
            let started = OnceLock::new();
            let link = Link {
                writer: &writer,
                started: &started,
                tx: &tx,
                outbox_wake: &outbox_wake,
                registration: &registration,
                limits: &limits,
                offers: offers.as_deref(),
            };
            let result = tokio::select! {
                r = run(svc.clone(), id.clone(), inbound, link) => r,
                () = async { let _ = revoked.wait_for(|r| *r).await; } => {
                    warn!(agent_id, "agent revoked: closing its session");
                    METRICS.rejected("revoked");
                    end_session(&writer, &id, started.get(), false).await;
                    let _ = tx.send(Err(Status::permission_denied("agent is revoked"))).await;
                    return;
                }
                () = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                    end_session(&writer, &id, started.get(), false).await;
                    let _ = tx.send(Err(Status::unavailable("collector shutting down"))).await;
                    return;
                }
            };
            if let Err(error) = result {
                warn!(%error, agent_id, peer, "session ended with error");
                let _ = tx.send(Err(error.into())).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn renew(
        &self,
        request: Request<pb::RenewRequest>,
    ) -> std::result::Result<Response<pb::RenewResponse>, Status> {
        super::renew::renew(self, request).await
    }

    type DownloadStream = super::update::DownloadStream;

    async fn download(
        &self,
        request: Request<pb::DownloadRequest>,
    ) -> std::result::Result<Response<Self::DownloadStream>, Status> {
        super::update::download(self, request).await
    }
}

/// The inbound stream failed. Input the agent got wrong is answered, so it
/// learns why: a message over `[grpc] max_message_bytes` (tonic says
/// OUT_OF_RANGE or RESOURCE_EXHAUSTED) with that status; bytes the decoder
/// refused (tonic's INTERNAL without an underlying transport error: bad
/// protobuf, nesting past prost's recursion limit, a bad frame flag, a
/// message cut short) with INVALID_ARGUMENT. Anything else is the peer or
/// the connection going away.
async fn refuse_broken(tx: &Outbound, status: Status, agent_id: &str) {
    use std::error::Error as _;
    match status.code() {
        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted => {
            warn!(%status, agent_id, "message over the size limit: closing the session");
            METRICS.rejected("oversized");
            let _ = tx.send(Err(status)).await;
        }
        tonic::Code::Internal if status.source().is_none() => {
            warn!(%status, agent_id, "undecodable message: closing the session");
            METRICS.rejected("undecodable");
            let _ = tx
                .send(Err(Status::invalid_argument(format!(
                    "undecodable message: {}",
                    status.message()
                ))))
                .await;
        }
        _ => debug!(%status, agent_id, "stream closed"),
    }
}

/// Records the end of the session that started at `started` (none: it
/// never got past its hello, so there is nothing to end).
async fn end_session(writer: &Writer, id: &PeerIdentity, started: Option<&Millis>, clean: bool) {
    let Some(&started_at) = started else { return };
    let end = Write::End {
        tenant_id: id.tenant_id.clone(),
        agent_id: id.agent_id.clone(),
        started_at,
        clean,
        now: now_millis(),
    };
    if let Err(error) = writer.apply(end).await {
        warn!(%error, agent_id = id.agent_id, "could not record session end");
    }
}

/// What a session's loop talks to besides the store.
#[derive(Clone, Copy)]
struct Link<'a> {
    writer: &'a Writer,
    /// When the session's start was recorded (names it in the store).
    started: &'a OnceLock<Millis>,
    tx: &'a Outbound,
    outbox_wake: &'a watch::Sender<u64>,
    registration: &'a Registration,
    limits: &'a Limiters,
    offers: Option<&'a crate::releases::Offers>,
}

async fn run(
    svc: Service,
    id: PeerIdentity,
    mut inbound: Streaming<pb::AgentMessage>,
    link: Link<'_>,
) -> Result<()> {
    let Link {
        writer,
        started,
        tx,
        outbox_wake,
        registration,
        limits,
        offers,
    } = link;
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.next()).await {
        Err(_) => return Err(invalid("no hello within 10 s")),
        Ok(None) => return Ok(()),
        Ok(Some(Err(status))) => {
            refuse_broken(tx, status, &id.agent_id).await;
            return Ok(());
        }
        Ok(Some(Ok(pb::AgentMessage {
            body: Some(pb::agent_message::Body::Hello(h)),
        }))) => h,
        Ok(Some(Ok(_))) => return Err(invalid("first message must be hello")),
    };
    if hello.agent_id != id.agent_id {
        METRICS.rejected("permission_denied");
        return Err(Error::PermissionDenied(
            "hello agent_id does not match the client certificate".into(),
        ));
    }
    let boot_id = convert::boot_id(&hello.boot_id).inspect_err(count_refusal)?;
    registration.set_boot(&boot_id);
    let facts = convert::host_facts(hello.host.as_ref()).inspect_err(count_refusal)?;
    let received = now_millis();
    let clock_offset_ms =
        convert::clock_offset(hello.sent_at.as_ref(), received).inspect_err(count_refusal)?;
    writer
        .apply(Write::Hello {
            tenant_id: id.tenant_id.clone(),
            agent_id: id.agent_id.clone(),
            boot_id: boot_id.clone(),
            facts: facts.clone(),
            interval_secs: hello.interval_secs.clamp(1, 3600),
            clock_offset_ms,
            now: received,
        })
        .await?;
    let _ = started.set(received);
    info!(
        agent_id = id.agent_id,
        hostname = facts.hostname,
        boot_id,
        clock_offset_ms,
        "agent session started"
    );
    if let Some(offer) = super::update::offer_for(offers, &id, &hello).await
        && tx.send(Ok(offer)).await.is_err()
    {
        end_session(writer, &id, started.get(), false).await;
        return Ok(());
    }

    let mut clean = false;
    let result = loop {
        let msg = match inbound.next().await {
            None => break Ok(()),
            Some(Err(status)) => {
                refuse_broken(tx, status, &id.agent_id).await;
                break Ok(());
            }
            Some(Ok(m)) => m,
        };
        match msg.body {
            Some(pb::agent_message::Body::Report(r)) => {
                // Over the agent's report rate: wait, reading nothing more
                // meanwhile, so flow control slows the agent down.
                if limits.reports.until_ready(&id.agent_id).await {
                    METRICS.rejected("report_throttled");
                }
                let now = now_millis();
                if let Some(other_boot) = registration.reported(std::time::Instant::now()) {
                    // Two running processes share this identity: a cloned
                    // machine (or a copied state dir). Flag it loudly.
                    warn!(
                        agent_id = id.agent_id,
                        boot_id,
                        other_boot_id = other_boot,
                        "possible cloned machine: one agent identity reporting from two processes"
                    );
                    let _ = svc
                        .store()
                        .record_audit(Audit {
                            tenant_id: Some(&id.tenant_id),
                            at: now,
                            actor: "collector",
                            source: "",
                            action: "agent.clone_suspected",
                            target: &format!("agent/{}", id.agent_id),
                            detail: &format!(
                                "boot ids {boot_id} and {other_boot} report at the same time"
                            ),
                        })
                        .await;
                }
                let report = match convert::report(&r, &id.agent_id, now) {
                    Ok(r) => r,
                    Err(e) => {
                        count_refusal(&e);
                        METRICS.report("rejected");
                        break Err(e);
                    }
                };
                let (boot, seq) = (report.boot_id.clone(), report.seq);
                let applied = writer
                    .apply(Write::Report {
                        tenant_id: id.tenant_id.clone(),
                        agent_id: id.agent_id.clone(),
                        report,
                        now,
                    })
                    .await;
                crate::health::STORE_HEALTH.record(&applied);
                let outcome = match applied {
                    Ok(o) => o,
                    Err(e) => {
                        METRICS.report("rejected");
                        break Err(e);
                    }
                };
                METRICS.report(if outcome.duplicate {
                    "duplicate"
                } else {
                    "committed"
                });
                METRICS.ticket_change("opened", outcome.opened);
                METRICS.ticket_change("updated", outcome.updated);
                METRICS.ticket_change("resolved", outcome.resolved);
                crate::limits::series_dropped(
                    svc.store().as_ref(),
                    &id.tenant_id,
                    &id.agent_id,
                    outcome.series_dropped,
                    now,
                )
                .await;
                if outcome.opened + outcome.updated + outcome.resolved > 0 {
                    outbox_wake.send_modify(|n| *n = n.wrapping_add(1));
                    info!(
                        agent_id = id.agent_id,
                        seq,
                        opened = outcome.opened,
                        updated = outcome.updated,
                        resolved = outcome.resolved,
                        "tickets changed"
                    );
                }
                if tx.send(Ok(convert::ack(&boot, seq))).await.is_err() {
                    break Ok(());
                }
            }
            Some(pb::agent_message::Body::Goodbye(g)) => {
                info!(
                    agent_id = id.agent_id,
                    reason = g.reason,
                    "agent said goodbye"
                );
                clean = true;
                break Ok(());
            }
            Some(pb::agent_message::Body::UpdateResult(r)) => {
                super::update::record_result(svc.store().as_ref(), &id, &r).await;
            }
            Some(pb::agent_message::Body::Hello(_)) => break Err(invalid("hello sent twice")),
            None => break Err(invalid("empty message")),
        }
    };
    end_session(writer, &id, started.get(), clean).await;
    if !clean {
        info!(agent_id = id.agent_id, "agent session closed");
    }
    result
}
