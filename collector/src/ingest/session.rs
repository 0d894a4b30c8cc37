//! `Ingest/Session`: the long-lived mTLS stream of one agent.
//!
//! Identity comes from the verified client certificate only. Each report is
//! validated, committed through [`Store::apply_report`] and only then
//! acknowledged; a store failure ends the stream with UNAVAILABLE so the
//! agent reconnects and resends what was not acknowledged.

use std::sync::Arc;
use std::time::Duration;

use forewarn_proto::v1 as pb;
use forewarn_proto::v1::ingest_server::Ingest;
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use super::convert;
use super::sessions::{MAX_SESSIONS_PER_AGENT, Registration, Sessions};
use crate::domain::now_millis;
use crate::metrics::METRICS;
use crate::pki::{PeerIdentity, peer_identity};
use crate::store::Store;
use crate::{Error, Result};

/// How long a new session may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The ingest service.
pub struct IngestService {
    pub(super) store: Arc<dyn Store>,
    shutdown: watch::Receiver<bool>,
    sessions: Sessions,
    outbox_wake: watch::Sender<u64>,
    /// CA and certificate lifetime for `Renew`; `None` refuses renewals.
    pub(super) renewal: Option<super::renew::Renewal>,
}

impl IngestService {
    /// `shutdown` turning true ends every open session (UNAVAILABLE), so a
    /// stopping collector does not wait for agents to hang up; `sessions`
    /// lets a revocation close an agent's open streams.
    /// `outbox_wake` ticks after a report changed tickets, so the sinks
    /// deliver at once.
    pub fn new(
        store: Arc<dyn Store>,
        shutdown: watch::Receiver<bool>,
        sessions: Sessions,
        outbox_wake: watch::Sender<u64>,
    ) -> Self {
        Self {
            store,
            shutdown,
            sessions,
            outbox_wake,
            renewal: None,
        }
    }

    pub(super) async fn authenticate<T>(&self, request: &Request<T>) -> Result<PeerIdentity> {
        let certs = request.peer_certs().ok_or_else(|| {
            Error::Unauthenticated("a client certificate is required; enroll first".into())
        })?;
        let leaf = certs
            .first()
            .ok_or_else(|| Error::Unauthenticated("empty client certificate chain".into()))?;
        let id = peer_identity(leaf)?;
        let auth = self
            .store
            .agent_auth(&id.agent_id)
            .await?
            .ok_or_else(|| Error::PermissionDenied("unknown agent".into()))?;
        if auth.tenant_id != id.tenant_id {
            return Err(Error::PermissionDenied(
                "certificate tenant does not match the agent".into(),
            ));
        }
        if auth.revoked {
            return Err(Error::PermissionDenied("agent is revoked".into()));
        }
        Ok(id)
    }
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
        let id = match self.authenticate(&request).await {
            Ok(id) => id,
            Err(error) => {
                warn!(%error, peer, "session refused");
                METRICS.session_refused(match error {
                    Error::Unauthenticated(_) => "unauthenticated",
                    Error::PermissionDenied(_) => "permission_denied",
                    _ => "error",
                });
                return Err(error.into());
            }
        };
        let (tx, rx) = mpsc::channel(64);
        let store = self.store.clone();
        let inbound = request.into_inner();
        let mut shutdown = self.shutdown.clone();
        let Some(registration) = self.sessions.register(&id.agent_id) else {
            warn!(
                agent_id = id.agent_id,
                peer, "session refused: too many open sessions for this agent"
            );
            return Err(Status::resource_exhausted(format!(
                "at most {MAX_SESSIONS_PER_AGENT} concurrent sessions per agent"
            )));
        };
        let mut revoked = registration.revoked.clone();
        let outbox_wake = self.outbox_wake.clone();
        tokio::spawn(async move {
            let agent_id = id.agent_id.clone();
            let result = tokio::select! {
                r = run(store.clone(), id.clone(), inbound, &tx, &outbox_wake, &registration) => r,
                () = async { let _ = revoked.wait_for(|r| *r).await; } => {
                    warn!(agent_id, "agent revoked: closing its session");
                    let _ = store.end_session(&id.tenant_id, &id.agent_id, false, now_millis()).await;
                    let _ = tx.send(Err(Status::permission_denied("agent is revoked"))).await;
                    return;
                }
                () = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                    let _ = store.end_session(&id.tenant_id, &id.agent_id, false, now_millis()).await;
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
}

/// The inbound stream failed: a message over `[grpc] max_message_bytes`
/// (tonic says OUT_OF_RANGE or RESOURCE_EXHAUSTED) is answered with that
/// status, so the agent learns why; anything else is the peer going away.
async fn refuse_over_limit(tx: &Outbound, status: Status, agent_id: &str) {
    if matches!(
        status.code(),
        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
    ) {
        warn!(%status, agent_id, "message over the size limit: closing the session");
        let _ = tx.send(Err(status)).await;
    } else {
        debug!(%status, agent_id, "stream closed");
    }
}

async fn run(
    store: Arc<dyn Store>,
    id: PeerIdentity,
    mut inbound: Streaming<pb::AgentMessage>,
    tx: &Outbound,
    outbox_wake: &watch::Sender<u64>,
    registration: &Registration,
) -> Result<()> {
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.next()).await {
        Err(_) => return Err(Error::InvalidArgument("no hello within 10 s".into())),
        Ok(None) => return Ok(()),
        Ok(Some(Err(status))) => {
            refuse_over_limit(tx, status, &id.agent_id).await;
            return Ok(());
        }
        Ok(Some(Ok(pb::AgentMessage {
            body: Some(pb::agent_message::Body::Hello(h)),
        }))) => h,
        Ok(Some(Ok(_))) => {
            return Err(Error::InvalidArgument("first message must be hello".into()));
        }
    };
    if hello.agent_id != id.agent_id {
        return Err(Error::PermissionDenied(
            "hello agent_id does not match the client certificate".into(),
        ));
    }
    let boot_id = convert::boot_id(&hello.boot_id)?;
    registration.set_boot(&boot_id);
    let facts = convert::host_facts(hello.host.as_ref())?;
    store
        .start_session(
            &id.tenant_id,
            &id.agent_id,
            &boot_id,
            &facts,
            hello.interval_secs.clamp(1, 3600),
            now_millis(),
        )
        .await?;
    info!(
        agent_id = id.agent_id,
        hostname = facts.hostname,
        boot_id,
        "agent session started"
    );

    let mut clean = false;
    let result = loop {
        let msg = match inbound.next().await {
            None => break Ok(()),
            Some(Err(status)) => {
                refuse_over_limit(tx, status, &id.agent_id).await;
                break Ok(());
            }
            Some(Ok(m)) => m,
        };
        match msg.body {
            Some(pb::agent_message::Body::Report(r)) => {
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
                    let _ = store
                        .record_audit(
                            Some(&id.tenant_id),
                            "collector",
                            "agent.clone_suspected",
                            &format!("agent/{}", id.agent_id),
                            &format!("boot ids {boot_id} and {other_boot} report at the same time"),
                            now,
                        )
                        .await;
                }
                let report = match convert::report(&r, &id.agent_id, now) {
                    Ok(r) => r,
                    Err(e) => {
                        METRICS.report("rejected");
                        break Err(e);
                    }
                };
                let outcome = match store
                    .apply_report(&id.tenant_id, &id.agent_id, &report, now)
                    .await
                {
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
                if outcome.opened + outcome.updated + outcome.resolved > 0 {
                    outbox_wake.send_modify(|n| *n = n.wrapping_add(1));
                    info!(
                        agent_id = id.agent_id,
                        seq = report.seq,
                        opened = outcome.opened,
                        updated = outcome.updated,
                        resolved = outcome.resolved,
                        "tickets changed"
                    );
                }
                if tx
                    .send(Ok(convert::ack(&report.boot_id, report.seq)))
                    .await
                    .is_err()
                {
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
            Some(pb::agent_message::Body::Hello(_)) => {
                break Err(Error::InvalidArgument("hello sent twice".into()));
            }
            None => break Err(Error::InvalidArgument("empty message".into())),
        }
    };
    if let Err(error) = store
        .end_session(&id.tenant_id, &id.agent_id, clean, now_millis())
        .await
    {
        warn!(%error, agent_id = id.agent_id, "could not record session end");
    }
    if !clean {
        info!(agent_id = id.agent_id, "agent session closed");
    }
    result
}
