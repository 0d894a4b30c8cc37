//! `forewarn-collector serve`: wires store, CA, gRPC and HTTP together.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use forewarn_proto::v1::enrollment_server::EnrollmentServer;
use forewarn_proto::v1::ingest_server::IngestServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tracing::{error, info, warn};

use crate::domain::now_millis;
use crate::ingest::{EnrollmentService, IngestService};
use crate::pki::{Ca, Kek};
use crate::store::{Storage, StoreUrl};
use crate::tickets::Service;
use crate::{Config, Error, Result, api};

/// Largest enrollment request (token + CSR + facts).
const MAX_ENROLL_MESSAGE_BYTES: usize = 64 * 1024;
/// How often the ticket engine's clock ticks.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Opens the configured store (creating the data dir) with the configured
/// policy, limits and sink routes (so a ticket changed from the CLI
/// notifies the same sinks as one changed by the server).
pub async fn open_store(cfg: &Config) -> Result<Service> {
    crate::pki::create_private_dir(&cfg.data_dir)?;
    let store = crate::store::open(&cfg.store_url()?).await?;
    let svc = Service::new(store)
        .with_policy(cfg.tickets.clone())
        .with_limits(cfg.limits.clone())
        .with_metric_sample_ms(cfg.retention.metric_sample_ms());
    svc.set_sink_routes(&cfg.sinks.routes()?);
    Ok(svc)
}

/// The CA: with SQLite the one in `<data_dir>/pki/` (made on first use);
/// with PostgreSQL the one every replica shares in the database, its key
/// sealed with `[pki] kek_file` (see `pki/shared.rs`).
pub async fn open_ca(cfg: &Config, store: &dyn Storage) -> Result<Ca> {
    match cfg.store_url()? {
        StoreUrl::Sqlite(_) => Ca::load_or_create(&cfg.pki_dir()),
        StoreUrl::Postgres(_) => {
            let path = cfg
                .pki
                .kek_file
                .as_ref()
                .ok_or_else(|| Error::Config(crate::config::KEK_MISSING.to_string()))?;
            let kek = Kek::read(path)?;
            let ca = crate::pki::load_or_create_shared(store, &kek, &cfg.pki_dir()).await?;
            // The certificate (public) where a single collector keeps it,
            // for operators and installers; the key stays in the database.
            crate::pki::write_ca_cert(&cfg.pki_dir(), ca.cert_pem())?;
            Ok(ca)
        }
    }
}

/// Creates the configured default tenant if the collector has no tenant.
pub async fn ensure_default_tenant(store: &dyn Storage, cfg: &Config) -> Result<()> {
    if store
        .list_tenants(&crate::domain::Scope::All)
        .await?
        .is_empty()
    {
        match store.create_tenant(&cfg.default_tenant).await {
            Ok(t) => info!(tenant = t.name, "created default tenant"),
            Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Logs `[tickets.tenants.<name>]` tables naming no existing tenant (a
/// typo changes nothing, silently, otherwise; a tenant created later is
/// covered as soon as it exists).
async fn warn_unknown_tenant_overrides(store: &dyn Storage, cfg: &Config) -> Result<()> {
    if cfg.tickets.tenants.is_empty() && cfg.limits.tenants.is_empty() {
        return Ok(());
    }
    let known: Vec<String> = store
        .list_tenants(&crate::domain::Scope::All)
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    for tenant in cfg.tickets.unknown_tenants(&known) {
        warn!(
            tenant,
            "[tickets.tenants.<tenant>] names an unknown tenant: its overrides apply once it exists"
        );
    }
    for tenant in cfg.limits.tenants.keys() {
        if !known.contains(tenant) {
            warn!(
                tenant,
                "[limits.tenants.<tenant>] names an unknown tenant: its caps apply once it exists"
            );
        }
    }
    Ok(())
}

/// Names the server certificate is valid for.
pub fn server_names(cfg: &Config) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(crate::config::hostname());
    let ip = cfg.grpc.listen_addr.ip();
    if !ip.is_unspecified() {
        names.push(ip.to_string());
    }
    names.extend(cfg.grpc.server_names.iter().cloned());
    names.sort();
    names.dedup();
    names
}

/// Runs the collector until SIGINT/SIGTERM.
pub async fn serve(cfg: Config) -> Result<()> {
    let svc = open_store(&cfg).await?.serving_since(now_millis());
    info!(store = %cfg.store_url()?.display(), backend = svc.store().backend(), "store open");
    let store = svc.store().clone();
    ensure_default_tenant(store.as_ref(), &cfg).await?;
    warn_unknown_tenant_overrides(store.as_ref(), &cfg).await?;
    let ca = Arc::new(open_ca(&cfg, store.as_ref()).await?);
    let names = server_names(&cfg);
    let (chain, key) = ca.server_identity(&names)?;

    let grpc_listener = TcpListener::bind(cfg.grpc.listen_addr)
        .await
        .map_err(|e| Error::Config(format!("grpc.listen_addr {}: {e}", cfg.grpc.listen_addr)))?;
    let http_listener = TcpListener::bind(cfg.http.listen_addr)
        .await
        .map_err(|e| Error::Config(format!("http.listen_addr {}: {e}", cfg.http.listen_addr)))?;
    let grpc_addr = local(&grpc_listener)?;
    let http_addr = local(&http_listener)?;

    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(chain, key))
        .client_ca_root(Certificate::from_pem(ca.cert_pem()))
        // Enrollment has no client certificate yet; Session insists on one.
        .client_auth_optional(true);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sessions = crate::ingest::Sessions::default();
    // Ticks when this process commits ticket changes: wakes the sinks.
    let (outbox_wake, outbox_wake_rx) = tokio::sync::watch::channel(0u64);
    let max = cfg.grpc.max_message_bytes;
    // Signed agent releases offered to agents (releases/).
    let offers = crate::releases::Offers::from_config(&cfg, svc.store().as_ref()).await?;
    // The install scripts, the CA and the signed downloads, on the same TLS
    // port (see `install/`); token checks limited like enrollments.
    let install = crate::install::InstallState::new(
        svc.clone(),
        ca.cert_pem(),
        offers.releases().clone(),
        cfg.releases.public_key.as_deref(),
        cfg.grpc.enroll_max_failures,
        Duration::from_secs(cfg.grpc.enroll_failure_window_secs),
    );
    let grpc = Server::builder()
        .tls_config(tls)
        .map_err(|e| Error::Pki(format!("server TLS: {e}")))?
        .max_concurrent_streams(cfg.grpc.max_concurrent_streams)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_frame_size(Some(64 * 1024))
        .http2_max_header_list_size(Some(16 * 1024))
        // HTTP/1.1 too, for install scripts (curl.exe, PowerShell).
        .accept_http1(true)
        .add_routes(tonic::service::Routes::from(crate::install::router(
            install,
        )))
        .add_service(
            EnrollmentServer::new(
                EnrollmentService::new(svc.clone(), ca.clone(), cfg.pki.agent_cert_validity())
                    .with_failure_limit(
                        cfg.grpc.enroll_max_failures,
                        Duration::from_secs(cfg.grpc.enroll_failure_window_secs),
                    ),
            )
            .max_decoding_message_size(MAX_ENROLL_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_ENROLL_MESSAGE_BYTES),
        )
        .add_service(
            IngestServer::new(
                IngestService::new(
                    svc.clone(),
                    stop_rx.clone(),
                    sessions.clone(),
                    outbox_wake.clone(),
                )
                .with_renewal(ca.clone(), cfg.pki.agent_cert_validity())
                .with_rate_limits(cfg.grpc.rate_limits())
                .with_offers(offers),
            )
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        );
    let incoming = TcpIncoming::from(grpc_listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));

    let grpc_task = {
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            grpc.serve_with_incoming_shutdown(incoming, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
        })
    };
    let mut access = crate::access::Access::new(
        store.clone(),
        Duration::from_secs(cfg.http.session_idle_secs),
    );
    access.secure_cookies = cfg.http.secure_cookies;
    // The ticket sinks, built once (secrets read, clients made): the outbox
    // delivers with them and the API tests them.
    let sinks = crate::sinks::ops::Running::new(crate::sinks::build_all(
        &cfg.sinks,
        &crate::sinks::SinkContext {
            public_url: cfg.http.public_url(http_addr),
        },
    )?);
    let http_task = {
        let mut rx = stop_rx.clone();
        // The dashboard's one-liners name the agent port and the CA.
        let app = api::router_with_sinks(svc.clone(), access.clone(), sinks.clone()).layer(
            axum::Extension(crate::install::oneliner::AgentPort {
                url: crate::install::oneliner::default_agent_url(&cfg),
                fingerprint: ca.fingerprint(),
            }),
        );
        tokio::spawn(async move {
            axum::serve(
                http_listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
        })
    };
    // This process among the replicas: names its sweeper lease and its
    // outbox claims.
    let replica = crate::sinks::outbox::replica_id();
    // Forgetting old records, on the leader.
    let prune_task = tokio::spawn(crate::retention::run(
        store.clone(),
        cfg.retention.clone(),
        replica.clone(),
    ));

    // The engine's clock: overdue agents, confirmation/recovery timers,
    // escalations. State lives in the store, so a restart loses nothing.
    let sweep_task = {
        let svc = svc.clone();
        let outbox_wake = outbox_wake.clone();
        let replica = replica.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let swept = svc.sweep_if_leader(&replica, now_millis()).await;
                crate::metrics::METRICS
                    .sweeper_leader
                    .set(i64::from(swept.as_ref().is_ok_and(|o| o.leader)));
                // A sweep with nothing to change commits an empty
                // transaction, which succeeds even on a full disk: only a
                // failure, or a sweep that wrote, says anything about writes.
                match &swept {
                    Ok(o) if o.opened + o.resolved + o.escalated + o.overdue > 0 => {
                        crate::health::STORE_HEALTH.record(&swept);
                        let m = &crate::metrics::METRICS;
                        m.ticket_change("opened", o.opened);
                        m.ticket_change("resolved", o.resolved);
                        m.ticket_change("escalated", o.escalated);
                        outbox_wake.send_modify(|n| *n = n.wrapping_add(1));
                        info!(
                            opened = o.opened,
                            resolved = o.resolved,
                            escalated = o.escalated,
                            overdue = o.overdue,
                            "ticket sweep"
                        );
                    }
                    // It did reach the store, though: clears an unreachable-store error.
                    Ok(_) => crate::health::STORE_HEALTH.reached(),
                    Err(error) => {
                        warn!(%error, "ticket sweep failed");
                        crate::health::STORE_HEALTH.record(&swept);
                    }
                }
            }
        })
    };

    // Ticket sinks: deliver the outbox the ticket transactions fill, rows
    // claimed by this replica.
    let sinks_task =
        crate::sinks::outbox::start(&svc, &sinks, &replica, stop_rx.clone(), outbox_wake_rx)
            .await?;

    // Revocations (from the API or the CLI, maybe another process) close
    // the agent's open sessions within a second.
    let revoke_task = {
        let store = store.clone();
        let sessions = sessions.clone();
        tokio::spawn(async move {
            let mut since = now_millis();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = now_millis();
                match store.revoked_since(since).await {
                    Ok(ids) => {
                        for id in ids {
                            let closed = sessions.revoke(&id);
                            if closed > 0 {
                                info!(agent_id = id, closed, "revoked agent's sessions closed");
                            }
                        }
                        // Overlap one tick so a revocation is never missed.
                        since = now - 1000;
                    }
                    Err(error) => warn!(%error, "revocation poll failed"),
                }
            }
        })
    };

    info!(
        grpc = %grpc_addr,
        http = %http_addr,
        ca_fingerprint = ca.fingerprint(),
        replica,
        data_dir = %cfg.data_dir.display(),
        "collector ready"
    );
    // The first msp-admin, once, with a setup link (never a default password).
    first_admin(&access, &cfg.http.public_url(http_addr)).await?;
    // One machine-readable line on stdout for scripts and tests.
    println!("forewarn-collector ready grpc={grpc_addr} http={http_addr}");

    shutdown_signal().await;
    info!("shutting down");
    let _ = stop_tx.send(true);
    prune_task.abort();
    sweep_task.abort();
    // Another replica takes the sweep over at once rather than when the
    // lease expires.
    if let Err(error) = store
        .release_lease(crate::tickets::sweep::SWEEPER_LEASE, &replica)
        .await
    {
        warn!(%error, "could not release the sweeper lease");
    }
    revoke_task.abort();
    // A delivery in flight finishes, so its answer is recorded.
    let _ = tokio::time::timeout(Duration::from_secs(10), sinks_task).await;
    match grpc_task.await {
        Ok(Err(e)) => error!(error = %e, "grpc server failed"),
        Err(e) => error!(error = %e, "grpc task failed"),
        Ok(Ok(())) => {}
    }
    if let Ok(Err(e)) = http_task.await {
        error!(error = %e, "http server failed");
    }
    Ok(())
}

fn local(l: &TcpListener) -> Result<SocketAddr> {
    l.local_addr().map_err(|e| Error::io("listener", e))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Creates the first msp-admin when there is no operator, and prints its
/// one-time setup link to the log and the terminal.
async fn first_admin(access: &crate::access::Access, public_url: &str) -> Result<()> {
    if let Some(invited) = access.ensure_first_admin(now_millis()).await? {
        let url = format!("{}{}", public_url.trim_end_matches('/'), invited.setup_path);
        info!(operator = invited.operator.username, %url, "first msp-admin created: open the setup link to set its password (valid 24 h, once)");
        println!(
            "forewarn-collector first-admin user={} setup={url}",
            invited.operator.username
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CLI's service files ticket events for the configured sinks, like
    /// the server's (routes are config, held in memory).
    #[tokio::test]
    async fn the_opened_service_routes_to_the_configured_sinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = Config::parse(&format!(
            "data_dir = {:?}\n[[sinks.webhook]]\nname = \"psa\"\nurl = \"https://psa.example/hook\"\nsecret = \"k\"\n",
            dir.path()
        ))
        .expect("config");
        let svc = open_store(&cfg).await.expect("open");
        let names: Vec<String> = svc.routes().iter().map(|r| r.name.clone()).collect();
        assert_eq!(names, ["psa"]);
    }
}
