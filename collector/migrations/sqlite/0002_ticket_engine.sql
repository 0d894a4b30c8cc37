-- Ticket engine: problems with their state machine, priorities, tiers and
-- SLA timers on tickets, host roles, agent liveness, audit log.

ALTER TABLE enrollment_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'workstation';
ALTER TABLE agents ADD COLUMN role TEXT NOT NULL DEFAULT 'workstation';
ALTER TABLE agents ADD COLUMN interval_secs INTEGER NOT NULL DEFAULT 15;
ALTER TABLE agents ADD COLUMN overdue INTEGER NOT NULL DEFAULT 0;

-- One row per problem fingerprint: the engine's state (JSON) plus what the
-- sweeper needs to find it.
CREATE TABLE problems (
    tenant_id    TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    check_kind   TEXT NOT NULL,
    item         TEXT NOT NULL,
    engine       TEXT NOT NULL,
    message      TEXT NOT NULL,
    observed_at  INTEGER NOT NULL,
    waiting      INTEGER NOT NULL DEFAULT 0,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, fingerprint)
);
CREATE INDEX problems_waiting ON problems (waiting) WHERE waiting = 1;
CREATE INDEX problems_by_agent ON problems (agent_id);

ALTER TABLE tickets ADD COLUMN kind TEXT NOT NULL DEFAULT 'check';
ALTER TABLE tickets ADD COLUMN priority TEXT NOT NULL DEFAULT 'P3';
ALTER TABLE tickets ADD COLUMN tier INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tickets ADD COLUMN flapping INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN detected_at INTEGER;
ALTER TABLE tickets ADD COLUMN acknowledged_at INTEGER;
ALTER TABLE tickets ADD COLUMN acknowledged_by TEXT;
ALTER TABLE tickets ADD COLUMN assignee TEXT;
ALTER TABLE tickets ADD COLUMN ack_due_at INTEGER;
ALTER TABLE tickets ADD COLUMN resolve_due_at INTEGER;
ALTER TABLE tickets ADD COLUMN ack_breached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN resolve_breached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN escalations INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN resolved_by TEXT;
CREATE INDEX tickets_ack_due ON tickets (ack_due_at) WHERE state = 'open' AND acknowledged_at IS NULL;

ALTER TABLE ticket_events ADD COLUMN actor TEXT NOT NULL DEFAULT 'engine';

ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'technician';

-- Every operator change, who made it and when.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, id);
