// Row mapping both backends share (included by each backend module, where
// `DbRow` names its row type). Columns are BIGINT/TEXT on both, so the same
// `try_get` calls decode on each.

fn tenant_from_row(r: &DbRow) -> Result<Tenant> {
    Ok(Tenant {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
        time_zone: r.try_get("time_zone")?,
    })
}

fn flag(r: &DbRow, col: &str) -> Result<bool> {
    Ok(r.try_get::<i64, _>(col)? != 0)
}

fn agent_from_row(r: &DbRow) -> Result<Agent> {
    let snapshot: Option<String> = r.try_get("snapshot")?;
    let revoked_at: Option<i64> = r.try_get("revoked_at")?;
    Ok(Agent {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        site: r.try_get("site")?,
        hostname: r.try_get("hostname")?,
        os_name: r.try_get("os_name")?,
        os_version: r.try_get("os_version")?,
        kernel_version: r.try_get("kernel_version")?,
        arch: r.try_get("arch")?,
        agent_version: r.try_get("agent_version")?,
        role: r.try_get("role")?,
        status: r.try_get("status")?,
        overdue: flag(r, "overdue")?,
        enrolled_at: r.try_get("enrolled_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        cert_not_after: r.try_get("cert_not_after")?,
        revoked: revoked_at.is_some(),
        snapshot: snapshot.and_then(|s| serde_json::from_str(&s).ok()),
        clock_offset_ms: r.try_get("clock_offset_ms")?,
        // Set by the caller, which knows the tolerance.
        clock_skewed: false,
        cpu_count: r.try_get("cpu_count")?,
        memory_total_bytes: r.try_get("memory_total_bytes")?,
    })
}

fn state_col(r: &DbRow, col: &str) -> Result<CheckState> {
    let s: String = r.try_get(col)?;
    CheckState::parse(&s).ok_or_else(|| Error::Corrupt(format!("state {s:?} in {col}")))
}

fn ticket_from_row(r: &DbRow) -> Result<Ticket> {
    let state: String = r.try_get("state")?;
    Ok(Ticket {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        tenant_id: r.try_get("tenant_id")?,
        site: r.try_get("site")?,
        agent_id: r.try_get("agent_id")?,
        host: r.try_get("host")?,
        check: r.try_get("check_kind")?,
        item: r.try_get("item")?,
        fingerprint: r.try_get("fingerprint")?,
        severity: state_col(r, "severity")?,
        priority: r.try_get("priority")?,
        tier: u8::try_from(r.try_get::<i64, _>("tier")?).unwrap_or(1),
        flapping: flag(r, "flapping")?,
        summary: r.try_get("summary")?,
        state: TicketState::parse(&state)
            .ok_or_else(|| Error::Corrupt(format!("ticket state {state:?}")))?,
        detected_at: r.try_get("detected_at")?,
        opened_at: r.try_get("opened_at")?,
        acknowledged_at: r.try_get("acknowledged_at")?,
        acknowledged_by: r.try_get("acknowledged_by")?,
        assignee: r.try_get("assignee")?,
        ack_due_at: r.try_get("ack_due_at")?,
        resolve_due_at: r.try_get("resolve_due_at")?,
        escalations: u32::try_from(r.try_get::<i64, _>("escalations")?).unwrap_or(0),
        ack_breached: flag(r, "ack_breached")?,
        resolve_breached: flag(r, "resolve_breached")?,
        resolved_by: r.try_get("resolved_by")?,
        parent_id: r.try_get("parent_id")?,
        updated_at: r.try_get("updated_at")?,
        resolved_at: r.try_get("resolved_at")?,
    })
}

/// `SELECT` of whole windows with their tenant's time zone, then `$rest`.
macro_rules! select_windows {
    ($rest:literal) => {
        concat!(
            "SELECT w.id, w.tenant_id, w.kind, w.site, w.agent_id, w.check_kind, w.start_at, w.end_at,
                    w.weekdays, w.start_minute, w.duration_secs, w.rrule, w.dtstart, w.reason,
                    w.created_by, w.created_at,
                    t.time_zone
             FROM maintenance_windows w JOIN tenants t ON t.id = w.tenant_id ",
            $rest
        )
    };
}

fn window_from_row(r: &DbRow) -> Result<WindowRow> {
    Ok(WindowRow {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        kind: r.try_get("kind")?,
        site: r.try_get("site")?,
        agent_id: r.try_get("agent_id")?,
        check: r.try_get("check_kind")?,
        start_at: r.try_get("start_at")?,
        end_at: r.try_get("end_at")?,
        weekdays: r.try_get("weekdays")?,
        start_minute: r.try_get("start_minute")?,
        duration_secs: r.try_get("duration_secs")?,
        rrule: r.try_get("rrule")?,
        dtstart: r.try_get("dtstart")?,
        reason: r.try_get("reason")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        time_zone: r.try_get("time_zone")?,
    })
}

/// The columns of [`EnrollmentToken`].
macro_rules! select_tokens {
    () => {
        "SELECT t.id, t.tenant_id, n.name AS tenant_name, t.site, t.role, t.created_at,
        t.expires_at, t.uses, t.max_uses, t.revoked_at
    FROM enrollment_tokens t JOIN tenants n ON n.id = t.tenant_id"
    };
}

fn token_from_row(r: &DbRow) -> Result<EnrollmentToken> {
    let uses: i64 = r.try_get("uses")?;
    let max_uses: i64 = r.try_get("max_uses")?;
    Ok(EnrollmentToken {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        tenant_name: r.try_get("tenant_name")?,
        site: r.try_get("site")?,
        role: r.try_get("role")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        uses: u32::try_from(uses).unwrap_or(u32::MAX),
        max_uses: u32::try_from(max_uses).unwrap_or(u32::MAX),
        revoked_at: r.try_get("revoked_at")?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
