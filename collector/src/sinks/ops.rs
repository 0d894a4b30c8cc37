//! What an operator does with the sinks, shared by the API, the dashboard
//! and the CLI: see each sink with its last health check and its backlog,
//! test one now, and send parked or given-up deliveries again (audited).
//!
//! The sinks are the ones the outbox delivers with ([`Running`]): built
//! once at start, so a test runs against the real configured receiver and
//! its real credentials.

use std::sync::Arc;

use serde::Serialize;

use super::Built;
use super::health::{Health, HealthRegistry};
use crate::domain::{ApiCaller, Millis, Scope, rfc3339};
use crate::store::{Audit, OutboxState, Storage};
use crate::{Error, Result};

/// The sinks this process built, and their last health checks.
#[derive(Clone, Default)]
pub struct Running {
    built: Arc<[Built]>,
    /// Last health check per sink name.
    pub health: HealthRegistry,
}

impl Running {
    /// Wraps the sinks [`super::build_all`] built.
    pub fn new(built: Vec<Built>) -> Self {
        Self {
            built: built.into(),
            health: HealthRegistry::default(),
        }
    }

    /// Every configured sink, in config order.
    pub fn all(&self) -> &[Built] {
        &self.built
    }

    /// The sink named `name`; an unknown name is `NotFound` listing the
    /// configured ones.
    pub fn find(&self, name: &str) -> Result<&Built> {
        find(&self.built, name)
    }

    /// Runs `b`'s health check now and records it.
    pub async fn check(&self, b: &Built, now: Millis) -> Health {
        let health = Health::of(b.sink.health().await, now);
        self.health.record(&b.settings.name, health.clone());
        health
    }

    /// Runs the health check of the sink named `name` now and records it.
    pub async fn test(&self, name: &str, now: Millis) -> Result<Health> {
        let b = self.find(name)?.clone();
        Ok(self.check(&b, now).await)
    }
}

/// The sink named `name` among `built`, or `NotFound` listing the names.
pub fn find<'a>(built: &'a [Built], name: &str) -> Result<&'a Built> {
    built
        .iter()
        .find(|b| b.settings.name == name)
        .ok_or_else(|| unknown_sink(name, built.iter().map(|b| b.settings.name.as_str())))
}

/// No sink named `name`: `NotFound`, listing the configured `names`.
pub fn unknown_sink<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> Error {
    let names: Vec<&str> = names.collect();
    Error::NotFound(if names.is_empty() {
        format!("sink {name:?}: no sinks are configured ([[sinks.<kind>]])")
    } else {
        format!(
            "sink {name:?}: the configured sinks are {}",
            names.join(", ")
        )
    })
}

/// One sink's deliveries still owed or waiting for an operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Backlog {
    /// Waiting to be delivered (including retries).
    pub pending: i64,
    /// When the oldest pending delivery's event happened.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub oldest_pending_at: Option<Millis>,
    /// Parked (refused: fix, then send again) or given up (retry horizon
    /// passed).
    pub failed: i64,
}

/// A sink as operators see it: never its secrets or its own config keys.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SinkStatus {
    pub name: String,
    /// `webhook`, `email`, `pagerduty`, …
    pub kind: String,
    /// Tenants routed here; empty = every tenant.
    pub tenants: Vec<String>,
    /// Tiers routed here; empty = every tier.
    pub tiers: Vec<u8>,
    /// The last health check this collector ran, if any.
    pub health: Option<Health>,
    pub backlog: Backlog,
}

/// Every configured sink with its last health check and its backlog
/// (the whole store's: every replica's deliveries).
pub async fn statuses(running: &Running, store: &dyn Storage) -> Result<Vec<SinkStatus>> {
    let depth = store.outbox_depth().await?;
    Ok(running
        .all()
        .iter()
        .map(|b| {
            let name = &b.settings.name;
            let backlog = depth
                .iter()
                .find(|d| &d.sink == name)
                .map(|d| Backlog {
                    pending: d.pending,
                    oldest_pending_at: d.oldest_pending_at,
                    failed: d.failed,
                })
                .unwrap_or_default();
            SinkStatus {
                name: name.clone(),
                kind: b.kind.to_string(),
                tenants: b.settings.tenants.clone(),
                tiers: b.settings.tiers.clone(),
                health: running.health.get(name),
                backlog,
            }
        })
        .collect())
}

/// Sends one failed delivery (parked or given up) again, audited as
/// `caller`. Another tenant's row is `NotFound`; a row that is pending or
/// delivered is a `Conflict` (nothing to send again).
pub async fn retry_one(
    store: &dyn Storage,
    caller: &ApiCaller,
    id: i64,
    now: Millis,
) -> Result<u64> {
    caller.require_write()?;
    let entry = store
        .outbox_entry(&caller.scope, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("outbox row {id}")))?;
    if entry.state != OutboxState::Failed {
        return Err(Error::Conflict(format!(
            "outbox row {id} is {}: only parked or given-up deliveries are sent again",
            entry.state.as_str()
        )));
    }
    let n = store
        .outbox_requeue(&caller.scope, None, Some(id), now)
        .await?;
    audit(
        store,
        caller,
        Some(&entry.tenant_id),
        &format!("outbox/{id}"),
        &format!("sink {}: {n} delivery sent again", entry.sink),
        now,
    )
    .await?;
    Ok(n)
}

/// Sends every failed delivery of `sink` again (of one tenant if given:
/// `tenant_id`, already resolved and in `caller`'s scope), audited.
pub async fn retry_sink(
    store: &dyn Storage,
    caller: &ApiCaller,
    sink: &str,
    tenant_id: Option<&str>,
    now: Millis,
) -> Result<u64> {
    caller.require_write()?;
    let scope = match tenant_id {
        Some(t) if caller.scope.allows(t) => Scope::Tenant(t.to_string()),
        Some(t) => return Err(Error::NotFound(format!("tenant {t}"))),
        None => caller.scope.clone(),
    };
    let n = store.outbox_requeue(&scope, Some(sink), None, now).await?;
    audit(
        store,
        caller,
        tenant_id,
        &format!("sink/{sink}"),
        &format!("{n} deliveries sent again"),
        now,
    )
    .await?;
    Ok(n)
}

async fn audit(
    store: &dyn Storage,
    caller: &ApiCaller,
    tenant_id: Option<&str>,
    target: &str,
    detail: &str,
    now: Millis,
) -> Result<()> {
    store
        .record_audit(Audit {
            tenant_id,
            at: now,
            actor: &caller.name,
            source: &caller.source,
            action: "outbox.requeued",
            target,
            detail,
        })
        .await
}

/// A tenant named by id or name, within `scope`: its id (another
/// tenant's is `NotFound`, like every read).
pub async fn tenant_in_scope(store: &dyn Storage, scope: &Scope, tenant: &str) -> Result<String> {
    store
        .list_tenants(scope)
        .await?
        .into_iter()
        .find(|t| t.id == tenant || t.name == tenant)
        .map(|t| t.id)
        .ok_or_else(|| Error::NotFound(format!("tenant {tenant:?}")))
}
