-- Maintenance windows and silences (issue 4): a tenant's time zone for
-- recurring windows, and one table for every kind of suppression.

-- IANA time zone name; recurring windows are evaluated in it.
ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';

-- kind 'once':    start_at .. end_at (absolute).
-- kind 'weekly':  on the days in `weekdays` (bit 0 = Monday … bit 6 = Sunday)
--                 at `start_minute` local time, for `duration_secs`.
-- kind 'silence': start_at (creation) .. end_at, with a reason.
-- Scope: the tenant; narrowed by site, agent and check kind when set.
CREATE TABLE maintenance_windows (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    kind           TEXT NOT NULL CHECK (kind IN ('once', 'weekly', 'silence')),
    site           TEXT,
    agent_id       TEXT,
    check_kind     TEXT,
    start_at       INTEGER,
    end_at         INTEGER,
    weekdays       INTEGER,
    start_minute   INTEGER,
    duration_secs  INTEGER,
    reason         TEXT NOT NULL DEFAULT '',
    created_by     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    CHECK (kind = 'weekly' OR (start_at IS NOT NULL AND end_at IS NOT NULL AND end_at > start_at)),
    CHECK (kind != 'weekly' OR (weekdays BETWEEN 1 AND 127 AND start_minute BETWEEN 0 AND 1439
                                AND duration_secs > 0))
);
CREATE INDEX maintenance_windows_by_tenant ON maintenance_windows (tenant_id, kind);
CREATE INDEX maintenance_windows_by_end ON maintenance_windows (end_at) WHERE end_at IS NOT NULL;
