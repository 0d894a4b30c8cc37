//! The outbox in SQLite: ticket events routed to sinks inside the ticket's
//! own transaction ([`enqueue`], called from `problems::add_event`), and the
//! delivery loop's reads and writes.
//!
//! Routing happens at write time against `sink_routes` (the configured
//! sinks, rewritten at every start): a sink gets an event when its tenants
//! and tiers match the ticket as the event left it, or when it already
//! heard about the ticket — so an escalation reaches L2's sinks, and the L1
//! sink that got the `firing` also gets the `resolved`.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::problems::Tx;
use super::{SqliteStore, scope_tenant, ticket_from_row};
use crate::domain::{Millis, Scope};
use crate::sinks::outbox::{Attempt, OutboxEntry, OutboxItem, OutboxState};
use crate::sinks::{EventFacts, Notification, SinkRoute, Status};
use crate::{Error, Result};

/// Writes the outbox rows of `event`, the timeline event just inserted for
/// `ticket_id`, if its kind notifies and any sink wants it.
pub(super) async fn enqueue(
    tx: &mut Tx,
    tenant_id: &str,
    ticket_id: i64,
    event: EventFacts<'_>,
) -> Result<()> {
    let Some(status) = Status::for_event(event.kind) else {
        return Ok(());
    };
    let routes = sqlx::query("SELECT name, kind, tenants, tiers FROM sink_routes ORDER BY name")
        .fetch_all(&mut **tx)
        .await?;
    if routes.is_empty() {
        return Ok(());
    }
    let routes = routes
        .iter()
        .map(route_from_row)
        .collect::<Result<Vec<_>>>()?;
    let row = sqlx::query(
        "SELECT t.*, n.name AS tenant_name FROM tickets t JOIN tenants n ON n.id = t.tenant_id
         WHERE t.id = ? AND t.tenant_id = ?",
    )
    .bind(ticket_id)
    .bind(tenant_id)
    .fetch_one(&mut **tx)
    .await?;
    let ticket = ticket_from_row(&row)?;
    let tenant_name: String = row.try_get("tenant_name")?;
    let told: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT sink FROM outbox WHERE ticket_id = ?")
            .bind(ticket_id)
            .fetch_all(&mut **tx)
            .await?;
    let n = Notification::new(status, &ticket, &tenant_name, event);
    let payload = serde_json::to_string(&n).map_err(|e| Error::Conflict(e.to_string()))?;
    for r in routes {
        if !(r.matches(tenant_id, &tenant_name, ticket.tier) || told.contains(&r.name)) {
            continue;
        }
        sqlx::query(
            "INSERT INTO outbox (key, tenant_id, sink, ticket_id, event_id, event, status, payload,
                                 created_at, next_attempt_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(tenant_id)
        .bind(&r.name)
        .bind(ticket_id)
        .bind(event.id)
        .bind(event.kind)
        .bind(status.as_str())
        .bind(&payload)
        .bind(event.at)
        .bind(event.at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn route_from_row(r: &SqliteRow) -> Result<SinkRoute> {
    let json = |col: &str| -> Result<String> { Ok(r.try_get(col)?) };
    let corrupt = |e: serde_json::Error| Error::Conflict(format!("corrupt sink route: {e}"));
    Ok(SinkRoute {
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        tenants: serde_json::from_str(&json("tenants")?).map_err(corrupt)?,
        tiers: serde_json::from_str(&json("tiers")?).map_err(corrupt)?,
    })
}

pub(super) async fn set_sink_routes(store: &SqliteStore, routes: &[SinkRoute]) -> Result<()> {
    let mut tx = store.write_tx().await?;
    sqlx::query("DELETE FROM sink_routes")
        .execute(&mut *tx)
        .await?;
    for r in routes {
        sqlx::query("INSERT INTO sink_routes (name, kind, tenants, tiers) VALUES (?, ?, ?, ?)")
            .bind(&r.name)
            .bind(&r.kind)
            .bind(to_json(&r.tenants))
            .bind(to_json(&r.tiers))
            .execute(&mut *tx)
            .await?;
    }
    // Rows of sinks no longer configured stay pending (visible in the API);
    // they are delivered again if the sink comes back under the same name.
    let orphaned: Vec<(String, i64)> = sqlx::query_as(
        "SELECT sink, COUNT(*) FROM outbox WHERE state = 'pending'
           AND sink NOT IN (SELECT name FROM sink_routes) GROUP BY sink",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (sink, rows) in orphaned {
        tracing::warn!(
            sink,
            rows,
            "outbox rows pending for a sink that is no longer configured"
        );
    }
    tx.commit().await?;
    Ok(())
}

/// A route's lists (plain strings and numbers) as JSON: cannot fail.
fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(super) async fn outbox_due(
    store: &SqliteStore,
    sink: &str,
    now: Millis,
    limit: u32,
) -> Result<Vec<OutboxItem>> {
    // Only the oldest pending row of each ticket can be due: a ticket's
    // events leave in order.
    let rows = sqlx::query(
        "SELECT o.id, o.key, o.sink, o.ticket_id, o.attempts, o.created_at, o.payload FROM outbox o
         WHERE o.sink = ?1 AND o.state = 'pending' AND o.next_attempt_at <= ?2
           AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.sink = ?1 AND e.ticket_id = o.ticket_id
                             AND e.state = 'pending' AND e.id < o.id)
         ORDER BY o.next_attempt_at, o.id LIMIT ?3",
    )
    .bind(sink)
    .bind(now)
    .bind(i64::from(limit.clamp(1, 1000)))
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxItem {
                id: r.try_get("id")?,
                key: r.try_get("key")?,
                sink: r.try_get("sink")?,
                ticket_id: r.try_get("ticket_id")?,
                attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                created_at: r.try_get("created_at")?,
                payload: r.try_get("payload")?,
            })
        })
        .collect()
}

pub(super) async fn outbox_attempted(
    store: &SqliteStore,
    id: i64,
    attempt: &Attempt,
    now: Millis,
) -> Result<()> {
    // Only a pending row changes: a late record of an attempt never
    // un-delivers a row.
    let q = match attempt {
        Attempt::Delivered => sqlx::query(
            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, last_attempt_at = ?1,
                    delivered_at = ?1 WHERE id = ?2 AND state = 'pending'",
        )
        .bind(now)
        .bind(id),
        Attempt::Retry {
            error,
            next_attempt_at,
        } => sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?1, next_attempt_at = ?3,
                    last_error = ?4 WHERE id = ?2 AND state = 'pending'",
        )
        .bind(now)
        .bind(id)
        .bind(*next_attempt_at)
        .bind(error),
        Attempt::Failed { error } => sqlx::query(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_attempt_at = ?1,
                    last_error = ?3 WHERE id = ?2 AND state = 'pending'",
        )
        .bind(now)
        .bind(id)
        .bind(error),
    };
    q.execute(&store.pool).await?;
    Ok(())
}

pub(super) async fn list_outbox(
    store: &SqliteStore,
    scope: &Scope,
    state: Option<OutboxState>,
    limit: u32,
) -> Result<Vec<OutboxEntry>> {
    let rows = sqlx::query(
        "SELECT id, key, sink, tenant_id, ticket_id, event_id, event, status, state, attempts,
                created_at, next_attempt_at, last_attempt_at, delivered_at, last_error
         FROM outbox WHERE (?1 IS NULL OR tenant_id = ?1) AND (?2 IS NULL OR state = ?2)
         ORDER BY id DESC LIMIT ?3",
    )
    .bind(scope_tenant(scope))
    .bind(state.map(OutboxState::as_str))
    .bind(i64::from(limit.clamp(1, 1000)))
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let state: String = r.try_get("state")?;
            let state = OutboxState::parse(&state)
                .ok_or_else(|| Error::Conflict(format!("corrupt outbox state {state:?}")))?;
            Ok(OutboxEntry {
                id: r.try_get("id")?,
                key: r.try_get("key")?,
                sink: r.try_get("sink")?,
                tenant_id: r.try_get("tenant_id")?,
                ticket_id: r.try_get("ticket_id")?,
                event_id: r.try_get("event_id")?,
                event: r.try_get("event")?,
                status: r.try_get("status")?,
                state,
                attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                created_at: r.try_get("created_at")?,
                next_attempt_at: (state == OutboxState::Pending)
                    .then(|| r.try_get("next_attempt_at"))
                    .transpose()?,
                last_attempt_at: r.try_get("last_attempt_at")?,
                delivered_at: r.try_get("delivered_at")?,
                last_error: r.try_get("last_error")?,
            })
        })
        .collect()
}

pub(super) async fn prune_outbox(store: &SqliteStore, before: Millis) -> Result<u64> {
    // Rows of open tickets stay: they say which sinks know the ticket.
    Ok(sqlx::query(
        "DELETE FROM outbox WHERE state != 'pending' AND created_at < ?
           AND ticket_id IN (SELECT id FROM tickets WHERE state = 'resolved')",
    )
    .bind(before)
    .execute(&store.pool)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CheckState, Report, ReportPayload, TicketState};
    use crate::store::Store;
    use crate::store::conformance::{disk, tenant_with_agent};

    /// The outbox row and the ticket change commit together or not at all.
    #[tokio::test]
    async fn a_failed_outbox_write_rolls_back_the_ticket_change() {
        let store = SqliteStore::in_memory().await.expect("store");
        let tenant = tenant_with_agent(&store, "acme", "a1").await;
        store
            .set_sink_routes(&[SinkRoute {
                name: "hook".into(),
                kind: "webhook".into(),
                tenants: vec![],
                tiers: vec![],
            }])
            .await
            .expect("routes");
        sqlx::query(
            "CREATE TRIGGER outbox_down BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'outbox down'); END",
        )
        .execute(&store.pool)
        .await
        .expect("trigger");
        let report = |seq: u64| Report {
            boot_id: "b".into(),
            seq,
            observed_at: 1_800_000_000_000,
            payload: ReportPayload::StateChanges(vec![disk(CheckState::Crit, 99.0)]),
        };
        let now = 1_800_000_000_000;
        assert!(
            store
                .apply_report(&tenant, "a1", &report(1), now)
                .await
                .is_err()
        );
        assert!(
            store
                .list_tickets(&Scope::All, None)
                .await
                .expect("list")
                .is_empty(),
            "no ticket without its notification"
        );
        // The report was not committed either, so the agent's resend works.
        sqlx::query("DROP TRIGGER outbox_down")
            .execute(&store.pool)
            .await
            .expect("drop");
        let o = store
            .apply_report(&tenant, "a1", &report(1), now)
            .await
            .expect("apply");
        assert!(!o.duplicate);
        let open = store
            .list_tickets(&Scope::All, Some(TicketState::Open))
            .await
            .expect("list");
        assert_eq!(open.len(), 1);
        let rows = store
            .list_outbox(&Scope::All, None, 10)
            .await
            .expect("list");
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].event.as_str(), rows[0].ticket_id),
            ("opened", open[0].id)
        );
    }
}
