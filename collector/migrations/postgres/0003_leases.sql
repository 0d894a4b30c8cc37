-- Leases of periodic work (the sweeper): one holder at a time, until its
-- lease expires unless renewed, so another replica takes over when it dies.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
