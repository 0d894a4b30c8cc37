-- Ticket sinks: the durable outbox.
--
-- sink_routes mirrors the configured sinks ([[sinks.<kind>]]) and is
-- rewritten at every start, so routing can happen inside the transaction
-- that changes a ticket. outbox holds one row per (ticket event, sink) with
-- the notification frozen at write time; the delivery loop works it off.

CREATE TABLE sink_routes (
    name     TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,
    -- JSON arrays; [] = every tenant / every tier.
    tenants  TEXT NOT NULL DEFAULT '[]',
    tiers    TEXT NOT NULL DEFAULT '[]'
);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Idempotency key sent with every attempt of this delivery.
    key              TEXT NOT NULL UNIQUE,
    tenant_id        TEXT NOT NULL,
    sink             TEXT NOT NULL,
    ticket_id        INTEGER NOT NULL,
    event_id         INTEGER NOT NULL,
    event            TEXT NOT NULL,
    status           TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    last_attempt_at  INTEGER,
    delivered_at     INTEGER,
    last_error       TEXT
);
-- The delivery loop: due rows of a sink, and the head of each ticket's queue.
CREATE INDEX outbox_pending ON outbox (sink, next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_pending_by_ticket ON outbox (sink, ticket_id, id) WHERE state = 'pending';
-- Which sinks already know a ticket, and the API listing.
CREATE INDEX outbox_by_ticket ON outbox (ticket_id, sink);
CREATE INDEX outbox_by_tenant_state ON outbox (tenant_id, state, id);
