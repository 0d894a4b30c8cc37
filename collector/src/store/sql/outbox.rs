// The outbox's queries both backends share: rows written inside a ticket's
// transaction ([`OutboxTx`]) and the delivery loop's reads and writes.

#[async_trait]
impl OutboxStore for Pooled {
    async fn outbox_claim(
        &self,
        sink: &str,
        owner: &str,
        now: Millis,
        claim_until: Millis,
        limit: u32,
    ) -> Result<Vec<OutboxItem>> {
        // Only the oldest pending row of each ticket can be claimed: a
        // ticket's events leave in order, whichever replica sends them. On
        // PostgreSQL a row another replica is claiming right now is locked
        // and skipped (`skip_locked!`), and so is every later row of its
        // ticket, since the locked head is still pending.
        let rows = sqlx::query(concat!(
            "UPDATE outbox SET claimed_by = $2, claim_until = $4 WHERE id IN (
               SELECT o.id FROM outbox o
               WHERE o.sink = $1 AND o.state = 'pending' AND o.next_attempt_at <= $3
                 AND (o.claimed_by IS NULL OR o.claimed_by = $2 OR o.claim_until <= $3)
                 AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.sink = $1 AND e.ticket_id = o.ticket_id
                                   AND e.state = 'pending' AND e.id < o.id)
               ORDER BY o.next_attempt_at, o.id LIMIT $5",
            skip_locked!(),
            ")
             RETURNING id, key, sink, tenant_id, ticket_id, attempts, created_at, payload, next_attempt_at"
        ))
        .bind(sink)
        .bind(owner)
        .bind(now)
        .bind(claim_until)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        let mut due = rows
            .iter()
            .map(|r| {
                let next: Millis = r.try_get("next_attempt_at")?;
                Ok((
                    next,
                    OutboxItem {
                        id: r.try_get("id")?,
                        key: r.try_get("key")?,
                        sink: r.try_get("sink")?,
                        tenant_id: r.try_get("tenant_id")?,
                        ticket_id: r.try_get("ticket_id")?,
                        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?)
                            .unwrap_or(u32::MAX),
                        created_at: r.try_get("created_at")?,
                        payload: r.try_get("payload")?,
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        // RETURNING keeps no order.
        due.sort_by_key(|(next, item)| (*next, item.id));
        Ok(due.into_iter().map(|(_, item)| item).collect())
    }

    async fn outbox_attempted(
        &self,
        id: i64,
        owner: &str,
        attempt: &Attempt,
        now: Millis,
    ) -> Result<bool> {
        // Only a pending row this owner still holds changes: a late record
        // of an attempt never un-delivers a row, and a replica whose claim
        // expired and was taken over leaves the record to the new owner.
        let q = match attempt {
            Attempt::Delivered => sqlx::query(
                "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, last_attempt_at = $1,
                        delivered_at = $1, claimed_by = NULL, claim_until = NULL
                 WHERE id = $2 AND state = 'pending' AND claimed_by = $3",
            )
            .bind(now)
            .bind(id)
            .bind(owner),
            Attempt::Retry {
                error,
                next_attempt_at,
            } => sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = $1, next_attempt_at = $4,
                        last_error = $5, claimed_by = NULL, claim_until = NULL
                 WHERE id = $2 AND state = 'pending' AND claimed_by = $3",
            )
            .bind(now)
            .bind(id)
            .bind(owner)
            .bind(*next_attempt_at)
            .bind(error),
            Attempt::Failed { error } => sqlx::query(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_attempt_at = $1,
                        last_error = $4, claimed_by = NULL, claim_until = NULL
                 WHERE id = $2 AND state = 'pending' AND claimed_by = $3",
            )
            .bind(now)
            .bind(id)
            .bind(owner)
            .bind(error),
        };
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }

    async fn outbox_release(&self, sink: &str, owner: &str) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE outbox SET claimed_by = NULL, claim_until = NULL
             WHERE state = 'pending' AND claimed_by = $2 AND sink = $1",
        )
        .bind(sink)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn find_outbox(
        &self,
        scope: &Scope,
        state: Option<OutboxState>,
        tenant_id: Option<&str>,
        page: Page,
    ) -> Result<Vec<OutboxEntry>> {
        let rows = sqlx::query(
            "SELECT id, key, sink, tenant_id, ticket_id, event_id, event, status, state, attempts,
                    created_at, next_attempt_at, last_attempt_at, delivered_at, last_error
             FROM outbox WHERE ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%') AND ($2 IS NULL OR state = $2)
               AND ($3 IS NULL OR tenant_id = $3)
             ORDER BY id DESC LIMIT $4 OFFSET $5",
        )
        .bind(scope_binding(scope))
        .bind(state.map(OutboxState::as_str))
        .bind(tenant_id)
        .bind(page.sql_limit())
        .bind(page.sql_offset())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outbox_entry_from_row).collect()
    }

    async fn outbox_entry(&self, scope: &Scope, id: i64) -> Result<Option<OutboxEntry>> {
        sqlx::query(
            "SELECT id, key, sink, tenant_id, ticket_id, event_id, event, status, state, attempts,
                    created_at, next_attempt_at, last_attempt_at, delivered_at, last_error
             FROM outbox WHERE ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%') AND id = $2",
        )
        .bind(scope_binding(scope))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(outbox_entry_from_row)
        .transpose()
    }

    async fn outbox_depth(&self) -> Result<Vec<OutboxDepth>> {
        let rows: Vec<(String, i64, Option<i64>, i64)> = sqlx::query_as(
            "SELECT sink,
                    SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END),
                    MIN(CASE WHEN state = 'pending' THEN created_at END),
                    SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END)
             FROM outbox WHERE state != 'delivered' GROUP BY sink ORDER BY sink",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(sink, pending, oldest_pending_at, failed)| OutboxDepth {
                sink,
                pending,
                oldest_pending_at,
                failed,
            })
            .collect())
    }

    async fn outbox_requeue(
        &self,
        scope: &Scope,
        sink: Option<&str>,
        id: Option<i64>,
        now: Millis,
    ) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE outbox SET state = 'pending', next_attempt_at = $4, claimed_by = NULL,
                    claim_until = NULL
             WHERE state = 'failed' AND ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%')
               AND ($2 IS NULL OR sink = $2) AND ($3 IS NULL OR id = $3)",
        )
        .bind(scope_binding(scope))
        .bind(sink)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn pending_by_sink(&self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT sink, COUNT(*) FROM outbox WHERE state = 'pending' GROUP BY sink ORDER BY sink",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

#[async_trait]
impl OutboxTx for Tx {
    async fn sinks_told(&mut self, ticket_id: i64) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT sink FROM outbox WHERE ticket_id = $1")
                .bind(ticket_id)
                .fetch_all(&mut *self.tx)
                .await?,
        )
    }

    async fn insert_outbox(&mut self, r: &NewOutboxRow<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO outbox (key, tenant_id, sink, ticket_id, event_id, event, status, payload,
                                 created_at, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(r.key)
        .bind(r.tenant_id)
        .bind(r.sink)
        .bind(r.ticket_id)
        .bind(r.event_id)
        .bind(r.event)
        .bind(r.status)
        .bind(r.payload)
        .bind(r.at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

/// One outbox row as the API and dashboard show it.
fn outbox_entry_from_row(r: &DbRow) -> Result<OutboxEntry> {
    let state: String = r.try_get("state")?;
    let state = OutboxState::parse(&state)
        .ok_or_else(|| Error::Corrupt(format!("outbox state {state:?}")))?;
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
}
