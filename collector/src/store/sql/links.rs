// Sinks' own records of tickets (PSA tickets), shared by both backends.

const LINK_COLUMNS: &str =
    "sink, tenant_id, ticket_id, external_id, url, created_at, closed_at, closed_by";

fn link_from_row(r: &DbRow) -> Result<SinkLink> {
    Ok(SinkLink {
        sink: r.try_get("sink")?,
        tenant_id: r.try_get("tenant_id")?,
        ticket_id: r.try_get("ticket_id")?,
        external_id: r.try_get("external_id")?,
        url: r.try_get("url")?,
        created_at: r.try_get("created_at")?,
        closed_at: r.try_get("closed_at")?,
        closed_by: r.try_get("closed_by")?,
    })
}

#[async_trait]
impl LinkStore for Pooled {
    async fn current_link(&self, sink: &str, ticket_id: i64) -> Result<Option<SinkLink>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM sink_links WHERE sink = $1 AND ticket_id = $2
             ORDER BY id DESC LIMIT 1"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(sink)
            .bind(ticket_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(link_from_row)
            .transpose()
    }

    async fn add_link(&self, l: &NewSinkLink<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO sink_links (sink, tenant_id, ticket_id, external_id, url, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sink, external_id) DO NOTHING",
        )
        .bind(l.sink)
        .bind(l.tenant_id)
        .bind(l.ticket_id)
        .bind(l.external_id)
        .bind(l.url)
        .bind(l.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn open_links(&self, sink: &str, limit: u32) -> Result<Vec<SinkLink>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM sink_links WHERE sink = $1 AND closed_at IS NULL
             ORDER BY id LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(sink)
            .bind(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(link_from_row).collect()
    }

    async fn ticket_links(&self, scope: &Scope, ticket_id: i64) -> Result<Vec<SinkLink>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM sink_links
             WHERE ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%') AND ticket_id = $2 ORDER BY id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(scope_binding(scope))
            .bind(ticket_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(link_from_row).collect()
    }
}

#[async_trait]
impl LinkTx for Tx {
    async fn close_link(
        &mut self,
        sink: &str,
        external_id: &str,
        by: &str,
        at: Millis,
    ) -> Result<Option<SinkLink>> {
        let sql = format!(
            "UPDATE sink_links SET closed_at = $3, closed_by = $4
             WHERE sink = $1 AND external_id = $2 AND closed_at IS NULL
             RETURNING {LINK_COLUMNS}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(sink)
            .bind(external_id)
            .bind(at)
            .bind(by)
            .fetch_optional(&mut *self.tx)
            .await?
            .as_ref()
            .map(link_from_row)
            .transpose()
    }

    async fn closed_links_of_open_tickets(
        &mut self,
        closed_before: Millis,
        limit: i64,
    ) -> Result<Vec<SinkLink>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM sink_links l
             WHERE l.closed_at IS NOT NULL AND l.closed_at <= $1
               AND l.id = (SELECT MAX(n.id) FROM sink_links n WHERE n.sink = l.sink AND n.ticket_id = l.ticket_id)
               AND EXISTS (SELECT 1 FROM tickets t WHERE t.id = l.ticket_id AND t.state = 'open')
               AND NOT EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = l.ticket_id
                                 AND e.kind = 'still_failing' AND e.at >= l.closed_at)
             ORDER BY l.closed_at, l.id LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(closed_before)
            .bind(limit)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(link_from_row).collect()
    }

    async fn reminder_candidates(
        &mut self,
        last_before: Millis,
        limit: i64,
    ) -> Result<Vec<ReminderCandidate>> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT id, tenant_id, tier, last_at FROM (
               SELECT t.id, t.tenant_id, t.tier,
                      (SELECT MAX(e.at) FROM ticket_events e WHERE e.ticket_id = t.id
                         AND e.kind IN ('opened', 'reopened', 'updated', 'escalated', 'reminder', 'still_failing')) AS last_at
               FROM tickets t WHERE t.state = 'open' AND t.acknowledged_at IS NULL) c
             WHERE last_at <= $1 ORDER BY last_at, id LIMIT $2",
        )
        .bind(last_before)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, tenant_id, tier, last_notified_at)| ReminderCandidate {
                id,
                tenant_id,
                tier: u8::try_from(tier).unwrap_or(u8::MAX),
                last_notified_at,
            })
            .collect())
    }
}
