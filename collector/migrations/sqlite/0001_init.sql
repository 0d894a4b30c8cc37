-- Forewarn collector schema, version 1. Every table carries its tenant.
-- Timestamps are Unix milliseconds.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE enrollment_tokens (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    site        TEXT NOT NULL DEFAULT '',
    token_hash  TEXT NOT NULL UNIQUE,
    expires_at  INTEGER NOT NULL,
    max_uses    INTEGER NOT NULL CHECK (max_uses > 0),
    uses        INTEGER NOT NULL DEFAULT 0 CHECK (uses <= max_uses),
    created_at  INTEGER NOT NULL
);

CREATE TABLE agents (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    site                TEXT NOT NULL DEFAULT '',
    hostname            TEXT NOT NULL,
    os_name             TEXT NOT NULL DEFAULT '',
    os_version          TEXT NOT NULL DEFAULT '',
    kernel_version      TEXT NOT NULL DEFAULT '',
    arch                TEXT NOT NULL DEFAULT '',
    agent_version       TEXT NOT NULL DEFAULT '',
    cpu_count           INTEGER NOT NULL DEFAULT 0,
    memory_total_bytes  INTEGER NOT NULL DEFAULT 0,
    enrolled_at         INTEGER NOT NULL,
    cert_not_after      INTEGER NOT NULL,
    revoked_at          INTEGER,
    status              TEXT NOT NULL DEFAULT 'enrolled',
    boot_id             TEXT,
    last_seen_at        INTEGER,
    snapshot            TEXT
);
CREATE INDEX agents_by_tenant ON agents (tenant_id);

-- Delivery records: a report is committed at most once.
CREATE TABLE delivered_reports (
    tenant_id    TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    boot_id      TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, boot_id, seq)
);
CREATE INDEX delivered_reports_by_age ON delivered_reports (received_at);

CREATE TABLE check_states (
    tenant_id   TEXT NOT NULL,
    agent_id    TEXT NOT NULL REFERENCES agents(id),
    check_kind  TEXT NOT NULL,
    item        TEXT NOT NULL,
    state       TEXT NOT NULL,
    message     TEXT NOT NULL,
    metrics     TEXT NOT NULL,
    since       INTEGER NOT NULL,
    observed_at INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, check_kind, item)
);

CREATE TABLE tickets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    site         TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    host         TEXT NOT NULL,
    check_kind   TEXT NOT NULL,
    item         TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    severity     TEXT NOT NULL,
    summary      TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('open', 'resolved')),
    opened_at    INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    resolved_at  INTEGER
);
-- The database, not only the code, keeps one open ticket per problem.
CREATE UNIQUE INDEX tickets_one_open_per_problem ON tickets (tenant_id, fingerprint) WHERE state = 'open';
CREATE INDEX tickets_by_tenant_state ON tickets (tenant_id, state, id);

CREATE TABLE ticket_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL,
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX ticket_events_by_ticket ON ticket_events (ticket_id, id);

-- tenant_id NULL: an MSP-wide key (all tenants).
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT REFERENCES tenants(id),
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
