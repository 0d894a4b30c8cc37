// Tickets and their timeline inside a write transaction (included by each
// backend module). Every change is conditional on the state it changes, so
// a decision taken twice (a retry, a second replica) changes nothing twice.

#[async_trait]
impl TicketTx for Tx {
    async fn insert_ticket(&mut self, t: &NewTicket<'_>) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO tickets (tenant_id, site, agent_id, host, check_kind, item, fingerprint, severity, summary,
                                  state, opened_at, updated_at, kind, priority, tier, flapping, detected_at,
                                  ack_due_at, resolve_due_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $10, $11, $12, $13, $14, $15, $16, $17)
             RETURNING id",
        )
        .bind(t.tenant_id)
        .bind(t.site)
        .bind(t.agent_id)
        .bind(t.host)
        .bind(t.check)
        .bind(t.item)
        .bind(t.fingerprint)
        .bind(t.severity)
        .bind(t.summary)
        .bind(t.now)
        .bind(t.kind)
        .bind(t.priority)
        .bind(t.tier)
        .bind(i64::from(t.flapping))
        .bind(t.detected_at)
        .bind(t.ack_due_at)
        .bind(t.resolve_due_at)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    async fn resolve_ticket(&mut self, id: i64, by: &str, now: Millis) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE tickets SET state = 'resolved', resolved_at = $1, resolved_by = $2, updated_at = $1
             WHERE id = $3 AND state = 'open'",
        )
        .bind(now)
        .bind(by)
        .bind(id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn reopen_ticket(
        &mut self,
        id: i64,
        severity: &str,
        summary: &str,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE tickets SET state = 'open', resolved_at = NULL, resolved_by = NULL, severity = $1,
                    summary = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(severity)
        .bind(summary)
        .bind(now)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn update_ticket(
        &mut self,
        id: i64,
        severity: &str,
        summary: &str,
        priority: &str,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE tickets SET severity = $1, summary = $2, priority = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(severity)
        .bind(summary)
        .bind(priority)
        .bind(now)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn set_flapping(&mut self, id: i64, flapping: bool, now: Millis) -> Result<()> {
        sqlx::query("UPDATE tickets SET flapping = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(flapping))
            .bind(now)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn set_summary(&mut self, id: i64, summary: &str, now: Millis) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE tickets SET summary = $1, updated_at = $2 WHERE id = $3 AND summary != $1",
        )
        .bind(summary)
        .bind(now)
        .bind(id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    async fn set_parent(&mut self, id: i64, parent: i64, now: Millis) -> Result<()> {
        sqlx::query("UPDATE tickets SET parent_id = $1, updated_at = $2 WHERE id = $3")
            .bind(parent)
            .bind(now)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn ticket_for_update(&mut self, scope: &Scope, id: i64) -> Result<Option<Ticket>> {
        let row = sqlx::query(concat!(
            "SELECT * FROM tickets WHERE id = $2 AND ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%')",
            for_update!()
        ))
        .bind(scope_binding(scope))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    async fn ticket_with_tenant(&mut self, id: i64) -> Result<(Ticket, String)> {
        let row = sqlx::query(
            "SELECT t.*, n.name AS tenant_name FROM tickets t JOIN tenants n ON n.id = t.tenant_id
             WHERE t.id = $1",
        )
        .bind(id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok((ticket_from_row(&row)?, row.try_get("tenant_name")?))
    }

    async fn open_ticket(&mut self, tenant_id: &str, fingerprint: &str) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM tickets WHERE tenant_id = $1 AND fingerprint = $2 AND state = 'open'",
        )
        .bind(tenant_id)
        .bind(fingerprint)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn acknowledge(&mut self, id: i64, by: &str, now: Millis) -> Result<()> {
        sqlx::query(
            "UPDATE tickets SET acknowledged_at = $1, acknowledged_by = $2, ack_due_at = NULL, updated_at = $1
             WHERE id = $3",
        )
        .bind(now)
        .bind(by)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn assign(&mut self, id: i64, who: &str, now: Millis) -> Result<()> {
        sqlx::query("UPDATE tickets SET assignee = $1, updated_at = $2 WHERE id = $3")
            .bind(who)
            .bind(now)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn escalate_unacknowledged(
        &mut self,
        id: i64,
        tier: i64,
        ack_due_at: Millis,
        now: Millis,
    ) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE tickets SET tier = tier + 1, escalations = escalations + 1, ack_breached = 1,
                    ack_due_at = $1, updated_at = $2
             WHERE id = $3 AND tier = $4 AND acknowledged_at IS NULL AND state = 'open'",
        )
        .bind(ack_due_at)
        .bind(now)
        .bind(id)
        .bind(tier)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn escalate_by_hand(&mut self, id: i64, ack_due_at: Millis, now: Millis) -> Result<()> {
        sqlx::query(
            "UPDATE tickets SET tier = tier + 1, escalations = escalations + 1, updated_at = $1,
                    ack_due_at = CASE WHEN acknowledged_at IS NULL THEN $2 ELSE NULL END
             WHERE id = $3",
        )
        .bind(now)
        .bind(ack_due_at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn close_ack_timer(&mut self, id: i64) -> Result<()> {
        sqlx::query("UPDATE tickets SET ack_breached = 1, ack_due_at = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn mark_resolve_breached(&mut self, id: i64) -> Result<()> {
        sqlx::query("UPDATE tickets SET resolve_breached = 1 WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn defer_ack_due(&mut self, id: i64, due: Millis, now: Millis) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE tickets SET ack_due_at = $1, updated_at = $2
             WHERE id = $3 AND state = 'open' AND acknowledged_at IS NULL AND ack_due_at <= $2",
        )
        .bind(due)
        .bind(now)
        .bind(id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn due_escalations(&mut self, now: Millis, limit: i64) -> Result<Vec<DueEscalation>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, site, agent_id, check_kind, priority, tier, ack_breached FROM tickets
             WHERE state = 'open' AND acknowledged_at IS NULL AND ack_due_at <= $1
               AND NOT EXISTS (SELECT 1 FROM tickets p WHERE p.id = tickets.parent_id
                                 AND p.kind = 'group' AND p.state = 'open')
             ORDER BY ack_due_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DueEscalation {
                    id: r.try_get("id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    site: r.try_get("site")?,
                    agent_id: r.try_get("agent_id")?,
                    check: r.try_get("check_kind")?,
                    priority: r.try_get("priority")?,
                    tier: r.try_get("tier")?,
                    ack_breached: flag(r, "ack_breached")?,
                })
            })
            .collect()
    }

    async fn late_tickets(&mut self, now: Millis, limit: i64) -> Result<Vec<LateTicket>> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT id, tenant_id, priority FROM tickets
             WHERE state = 'open' AND resolve_breached = 0 AND resolve_due_at <= $1
             ORDER BY resolve_due_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, tenant_id, priority)| LateTicket {
                id,
                tenant_id,
                priority,
            })
            .collect())
    }

    async fn add_event(&mut self, e: &NewEvent<'_>) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO ticket_events (tenant_id, ticket_id, at, kind, detail, actor)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(e.tenant_id)
        .bind(e.ticket_id)
        .bind(e.at)
        .bind(e.kind)
        .bind(e.detail)
        .bind(e.actor)
        .fetch_one(&mut *self.tx)
        .await?)
    }
}
