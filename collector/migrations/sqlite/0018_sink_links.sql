-- Sinks that keep their own record of a ticket (a PSA ticket) link it here:
-- the receiver's id beside the Forewarn ticket, shown in the API and the
-- dashboard and handed to the sink's next deliveries (a note, a close).
-- A ticket can gather several links to one sink over time: when the PSA
-- ticket is closed on the PSA's side while the problem still fails, the
-- next notification opens a new PSA ticket (a new row) that names the
-- closed one. The newest row per (sink, ticket) is the current one.
CREATE TABLE sink_links (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    sink         TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    ticket_id    INTEGER NOT NULL,
    external_id  TEXT NOT NULL,
    url          TEXT,
    created_at   INTEGER NOT NULL,
    -- Set when the receiver's side closed it (seen by polling the PSA).
    closed_at    INTEGER,
    closed_by    TEXT,
    UNIQUE (sink, external_id)
);
CREATE INDEX sink_links_by_ticket ON sink_links (ticket_id, sink, id);
CREATE INDEX sink_links_open ON sink_links (sink, id) WHERE closed_at IS NULL;
