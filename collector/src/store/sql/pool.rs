// The pool-level traits both backends share (included by each backend
// module, where `Pooled` is its store type with a `pool` field).

#[async_trait]
impl TenantStore for Pooled {
    async fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let t = Tenant {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            created_at: crate::domain::now_millis(),
            time_zone: "UTC".to_string(),
        };
        let res = sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&t.id)
            .bind(&t.name)
            .bind(t.created_at)
            .execute(&self.pool)
            .await;
        match res {
            Ok(_) => Ok(t),
            Err(e) if is_unique_violation(&e) => {
                Err(Error::Conflict(format!("tenant {name:?} already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn list_tenants(&self, scope: &Scope) -> Result<Vec<Tenant>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, time_zone FROM tenants WHERE ($1 IS NULL OR $1 LIKE '%,' || id || ',%') ORDER BY name",
        )
        .bind(scope_binding(scope))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        sqlx::query("SELECT id, name, created_at, time_zone FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }
}

#[async_trait]
impl AgentStore for Pooled {
    async fn agent_auth(&self, agent_id: &str) -> Result<Option<AgentAuth>> {
        let row = sqlx::query("SELECT tenant_id, revoked_at FROM agents WHERE id = $1")
            .bind(agent_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> Result<AgentAuth> {
            let revoked_at: Option<i64> = r.try_get("revoked_at")?;
            Ok(AgentAuth {
                tenant_id: r.try_get("tenant_id")?,
                revoked: revoked_at.is_some(),
            })
        })
        .transpose()
    }

    async fn find_agents(
        &self,
        scope: &Scope,
        filter: &AgentFilter,
        page: Page,
    ) -> Result<Vec<Agent>> {
        let rows = sqlx::query(
            "SELECT * FROM agents WHERE ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%')
               AND ($2 IS NULL OR tenant_id = $2) AND ($3 IS NULL OR site = $3)
               AND ($4 IS NULL OR LOWER(hostname) LIKE $4 ESCAPE '\\')
               AND ($5 IS NULL OR status = $5) AND ($6 IS NULL OR overdue = $6)
             ORDER BY hostname, id LIMIT $7 OFFSET $8",
        )
        .bind(scope_binding(scope))
        .bind(filter.tenant_id.as_deref())
        .bind(filter.site.as_deref())
        .bind(filter.hostname_contains.as_deref().map(contains_pattern))
        .bind(filter.status.as_deref())
        .bind(filter.overdue.map(i64::from))
        .bind(page.sql_limit())
        .bind(page.sql_offset())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(agent_from_row).collect()
    }

    async fn get_agent(&self, scope: &Scope, agent_id: &str) -> Result<Option<AgentDetail>> {
        let Some(row) =
            sqlx::query("SELECT * FROM agents WHERE id = $2 AND ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%')")
                .bind(scope_binding(scope))
                .bind(agent_id)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let agent = agent_from_row(&row)?;
        let checks = sqlx::query(
            "SELECT check_kind, item, state, message, metrics, since, updated_at FROM check_states
             WHERE agent_id = $1 AND tenant_id = $2 ORDER BY check_kind, item",
        )
        .bind(&agent.id)
        .bind(&agent.tenant_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(check_state_from_row)
        .collect::<Result<Vec<_>>>()?;
        Ok(Some(AgentDetail { agent, checks }))
    }

    async fn revoked_since(&self, since: Millis) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM agents WHERE revoked_at >= $1 ORDER BY revoked_at")
                .bind(since)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

#[async_trait]
impl TicketStore for Pooled {
    async fn find_tickets(
        &self,
        scope: &Scope,
        filter: &TicketFilter,
        page: Page,
    ) -> Result<Vec<Ticket>> {
        let rows = sqlx::query(
            "SELECT * FROM tickets WHERE ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%') AND ($2 IS NULL OR state = $2)
               AND ($3 IS NULL OR tenant_id = $3) AND ($4 IS NULL OR agent_id = $4)
               AND ($5 IS NULL OR host = $5) AND ($6 IS NULL OR tier = $6)
               AND ($7 IS NULL OR check_kind = $7)
             ORDER BY
               CASE WHEN $8 = 1 THEN priority END,
               CASE WHEN $8 = 1 THEN COALESCE(
                   CASE WHEN acknowledged_at IS NULL THEN ack_due_at ELSE resolve_due_at END,
                   9223372036854775807) END,
               CASE WHEN $8 = 1 THEN id END,
               id DESC
             LIMIT $9 OFFSET $10",
        )
        .bind(scope_binding(scope))
        .bind(filter.state.map(TicketState::as_str))
        .bind(filter.tenant_id.as_deref())
        .bind(filter.agent_id.as_deref())
        .bind(filter.host.as_deref())
        .bind(filter.tier.map(i64::from))
        .bind(filter.check.as_deref())
        .bind(i64::from(filter.sort == TicketSort::Priority))
        .bind(page.sql_limit())
        .bind(page.sql_offset())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ticket_from_row).collect()
    }

    async fn get_ticket(&self, scope: &Scope, id: i64) -> Result<Option<TicketDetail>> {
        let Some(row) =
            sqlx::query("SELECT * FROM tickets WHERE id = $2 AND ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%')")
                .bind(scope_binding(scope))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let ticket = ticket_from_row(&row)?;
        let events = sqlx::query(
            "SELECT at, kind, detail, actor FROM ticket_events WHERE ticket_id = $1 AND tenant_id = $2 ORDER BY id",
        )
        .bind(ticket.id)
        .bind(&ticket.tenant_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| -> Result<TicketEvent> {
            Ok(TicketEvent {
                at: r.try_get("at")?,
                kind: r.try_get("kind")?,
                detail: r.try_get("detail")?,
                actor: r.try_get("actor")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(Some(TicketDetail { ticket, events }))
    }

    async fn kpi_rows(&self, scope: &Scope, from: Millis, to: Millis) -> Result<Vec<KpiRow>> {
        let rows = sqlx::query(
            "SELECT t.tenant_id, n.name AS tenant_name, t.opened_at, t.detected_at, t.acknowledged_at,
                    t.resolved_at, t.resolved_by, t.escalations, t.ack_breached, t.resolve_breached
             FROM tickets t JOIN tenants n ON n.id = t.tenant_id
             WHERE ($1 IS NULL OR $1 LIKE '%,' || t.tenant_id || ',%') AND t.opened_at >= $2 AND t.opened_at < $3",
        )
        .bind(scope_binding(scope))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KpiRow {
                    tenant_id: r.try_get("tenant_id")?,
                    tenant_name: r.try_get("tenant_name")?,
                    opened_at: r.try_get("opened_at")?,
                    detected_at: r.try_get("detected_at")?,
                    acknowledged_at: r.try_get("acknowledged_at")?,
                    resolved_at: r.try_get("resolved_at")?,
                    resolved_by: r.try_get("resolved_by")?,
                    escalations: r.try_get("escalations")?,
                    ack_breached: flag(r, "ack_breached")?,
                    resolve_breached: flag(r, "resolve_breached")?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl TokenStore for Pooled {
    async fn create_enrollment_token(&self, t: &NewEnrollmentToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO enrollment_tokens (id, tenant_id, site, token_hash, expires_at, max_uses, created_at, role)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.id)
        .bind(&t.tenant_id)
        .bind(&t.site)
        .bind(&t.token_hash)
        .bind(t.expires_at)
        .bind(i64::from(t.max_uses))
        .bind(crate::domain::now_millis())
        .bind(&t.role)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRow>> {
        let row = sqlx::query(
            "SELECT t.tenant_id, n.name AS tenant_name, t.site, t.role, t.expires_at, t.uses, t.max_uses,
                    t.revoked_at
             FROM enrollment_tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(TokenRow {
                tenant_id: r.try_get("tenant_id")?,
                tenant_name: r.try_get("tenant_name")?,
                site: r.try_get("site")?,
                role: r.try_get("role")?,
                expires_at: r.try_get("expires_at")?,
                uses: r.try_get("uses")?,
                max_uses: r.try_get("max_uses")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        })
        .transpose()
    }

    async fn enroll_agent(&self, token_hash: &str, now: Millis, a: &NewAgent) -> Result<bool> {
        let mut tx = begin_write(&self.pool).await?;
        let consumed = sqlx::query(
            "UPDATE enrollment_tokens SET uses = uses + 1
             WHERE token_hash = $1 AND tenant_id = $2 AND expires_at > $3 AND uses < max_uses
               AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .bind(&a.tenant_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if consumed != 1 {
            return Ok(false);
        }
        let f = &a.facts;
        sqlx::query(
            "INSERT INTO agents (id, tenant_id, site, hostname, os_name, os_version, kernel_version, arch,
                                 agent_version, cpu_count, memory_total_bytes, enrolled_at, cert_not_after, role)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&a.id)
        .bind(&a.tenant_id)
        .bind(&a.site)
        .bind(&f.hostname)
        .bind(&f.os_name)
        .bind(&f.os_version)
        .bind(&f.kernel_version)
        .bind(&f.arch)
        .bind(&f.agent_version)
        .bind(i64::from(f.cpu_count))
        .bind(to_i64(f.memory_total_bytes))
        .bind(now)
        .bind(a.cert_not_after)
        .bind(&a.role)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn find_enrollment_tokens(
        &self,
        scope: &Scope,
        tenant_id: Option<&str>,
        page: Page,
    ) -> Result<Vec<EnrollmentToken>> {
        let rows = sqlx::query(concat!(
            select_tokens!(),
            " WHERE ($1 IS NULL OR $1 LIKE '%,' || t.tenant_id || ',%') AND ($2 IS NULL OR t.tenant_id = $2)",
            " ORDER BY t.created_at DESC, t.id LIMIT $3 OFFSET $4"
        ))
        .bind(scope_binding(scope))
        .bind(tenant_id)
        .bind(page.sql_limit())
        .bind(page.sql_offset())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }
}

#[async_trait]
impl MaintenanceStore for Pooled {
    async fn list_windows(&self, scope: &Scope) -> Result<Vec<WindowRow>> {
        let rows = sqlx::query(select_windows!(
            "WHERE ($1 IS NULL OR $1 LIKE '%,' || w.tenant_id || ',%') ORDER BY w.id DESC LIMIT 1000"
        ))
        .bind(scope_binding(scope))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(window_from_row).collect()
    }
}

#[async_trait]
impl AuditStore for Pooled {
    async fn record_audit(&self, e: Audit<'_>) -> Result<()> {
        insert_audit(&self.pool, e).await
    }

    async fn audit_enrollment(&self, token_hash: &str, e: Audit<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (tenant_id, at, actor, action, target, detail, source)
             VALUES ((SELECT tenant_id FROM enrollment_tokens WHERE token_hash = $1), $2, $3, $4, $5, $6, $7)",
        )
        .bind(token_hash)
        .bind(e.at)
        .bind(e.actor)
        .bind(e.action)
        .bind(e.target)
        .bind(e.detail)
        .bind(e.source)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_audit(
        &self,
        scope: &Scope,
        tenant_id: Option<&str>,
        page: Page,
    ) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, tenant_id, actor, action, target, detail, source FROM audit_log
             WHERE ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%') AND ($2 IS NULL OR tenant_id = $2)
             ORDER BY id DESC LIMIT $3 OFFSET $4",
        )
        .bind(scope_binding(scope))
        .bind(tenant_id)
        .bind(page.sql_limit())
        .bind(page.sql_offset())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}

/// One audit entry as the API and dashboard show it.
fn audit_from_row(r: &DbRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        at: r.try_get("at")?,
        tenant_id: r.try_get("tenant_id")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        detail: r.try_get("detail")?,
        source: r.try_get("source")?,
    })
}

async fn insert_audit<'e>(
    conn: impl sqlx::Executor<'e, Database = Db>,
    e: Audit<'_>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, at, actor, action, target, detail, source)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.tenant_id)
    .bind(e.at)
    .bind(e.actor)
    .bind(e.action)
    .bind(e.target)
    .bind(e.detail)
    .bind(e.source)
    .execute(conn)
    .await?;
    Ok(())
}

/// A `LIKE … ESCAPE '\'` pattern matching `needle` anywhere, lowercased
/// (compared with `LOWER(column)`), its own `%`, `_` and `\` taken literally.
fn contains_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// One check's current state (`check_states` row).
fn check_state_from_row(r: &DbRow) -> Result<CheckStateRow> {
    let metrics: String = r.try_get("metrics")?;
    Ok(CheckStateRow {
        check: r.try_get("check_kind")?,
        item: r.try_get("item")?,
        state: state_col(r, "state")?,
        message: r.try_get("message")?,
        metrics: serde_json::from_str(&metrics).unwrap_or_default(),
        since: r.try_get("since")?,
        updated_at: r.try_get("updated_at")?,
    })
}
