// Retention's deletions, both backends: each removes at most `limit` rows
// older than a cutoff the caller computed (`crate::retention`), oldest ids
// first, so a caller runs short transactions until a batch comes back short.

#[async_trait]
impl RetentionTx for Tx {
    async fn prune_delivered(&mut self, before: Millis, limit: i64) -> Result<u64> {
        delete_batch(
            self,
            "DELETE FROM delivered_reports WHERE (agent_id, boot_id, seq) IN (
               SELECT agent_id, boot_id, seq FROM delivered_reports WHERE received_at < $1
               ORDER BY received_at LIMIT $2)",
            before,
            limit,
        )
        .await
    }

    async fn prune_outbox(&mut self, before: Millis, limit: i64) -> Result<u64> {
        delete_batch(
            self,
            "DELETE FROM outbox WHERE id IN (
               SELECT id FROM outbox WHERE state != 'pending' AND created_at < $1
                 AND ticket_id IN (SELECT id FROM tickets WHERE state = 'resolved')
               ORDER BY id LIMIT $2)",
            before,
            limit,
        )
        .await
    }

    async fn prune_resolved_tickets(&mut self, before: Millis, limit: i64) -> Result<u64> {
        // Locked first (PostgreSQL), so none of them reopens meanwhile; a
        // parent waits until its members are gone (parent_id references it).
        let ids: Vec<i64> = sqlx::query_scalar(concat!(
            "SELECT id FROM tickets t WHERE state = 'resolved' AND resolved_at < $1
               AND NOT EXISTS (SELECT 1 FROM tickets c WHERE c.parent_id = t.id)
             ORDER BY id LIMIT $2",
            for_update!()
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let list = (1..=ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut deleted = 0;
        for table in [
            "ticket_events WHERE ticket_id",
            "outbox WHERE ticket_id",
            "sink_links WHERE ticket_id",
            "tickets WHERE id",
        ] {
            // Only numbered placeholders are formatted in; the ids are bound.
            let sql = format!("DELETE FROM {table} IN ({list})");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &ids {
                q = q.bind(*id);
            }
            deleted = q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(deleted)
    }

    async fn prune_audit(&mut self, before: Millis, limit: i64) -> Result<u64> {
        delete_batch(
            self,
            "DELETE FROM audit_log WHERE id IN (
               SELECT id FROM audit_log WHERE at < $1 ORDER BY id LIMIT $2)",
            before,
            limit,
        )
        .await
    }

    async fn prune_ended_windows(&mut self, before: Millis, limit: i64) -> Result<u64> {
        delete_batch(
            self,
            "DELETE FROM maintenance_windows WHERE id IN (
               SELECT id FROM maintenance_windows WHERE end_at IS NOT NULL AND end_at < $1
               ORDER BY id LIMIT $2)",
            before,
            limit,
        )
        .await
    }

    async fn prune_metric_samples(&mut self, before: Millis, limit: i64) -> Result<u64> {
        delete_batch(
            self,
            "DELETE FROM metric_samples WHERE (agent_id, at) IN (
               SELECT agent_id, at FROM metric_samples WHERE at < $1 ORDER BY at LIMIT $2)",
            before,
            limit,
        )
        .await
    }
}

/// Runs one batch deletion `sql` (`$1` the cutoff, `$2` the batch size):
/// the rows it removed.
async fn delete_batch(tx: &mut Tx, sql: &'static str, before: Millis, limit: i64) -> Result<u64> {
    Ok(sqlx::query(sql)
        .bind(before)
        .bind(limit)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected())
}
