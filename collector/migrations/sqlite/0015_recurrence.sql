-- Maintenance windows that recur by an RFC 5545 RRULE subset (issue 11):
-- kind 'rrule' keeps the rule text in `rrule` and its anchor date (DTSTART,
-- 'YYYY-MM-DD', a local date in the tenant's time zone) in `dtstart`, and
-- reuses `start_minute` and `duration_secs` as weekly windows do. The rule
-- is validated above the store; the store keeps it as given.
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt
-- with the same columns (plus the two new ones, last, as PostgreSQL adds
-- them), ids and AUTOINCREMENT counter kept.
CREATE TABLE maintenance_windows_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    kind           TEXT NOT NULL CHECK (kind IN ('once', 'weekly', 'silence', 'rrule')),
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
    rrule          TEXT,
    dtstart        TEXT,
    CHECK (kind IN ('weekly', 'rrule')
           OR (start_at IS NOT NULL AND end_at IS NOT NULL AND end_at > start_at)),
    CHECK (kind != 'weekly' OR (weekdays BETWEEN 1 AND 127 AND start_minute BETWEEN 0 AND 1439
                                AND duration_secs > 0)),
    CHECK (kind != 'rrule' OR (rrule IS NOT NULL AND dtstart IS NOT NULL
                               AND start_minute BETWEEN 0 AND 1439 AND duration_secs > 0))
);
INSERT INTO maintenance_windows_new (id, tenant_id, kind, site, agent_id, check_kind, start_at,
                                     end_at, weekdays, start_minute, duration_secs, reason,
                                     created_by, created_at)
    SELECT id, tenant_id, kind, site, agent_id, check_kind, start_at, end_at, weekdays,
           start_minute, duration_secs, reason, created_by, created_at
    FROM maintenance_windows;
-- Ids of removed windows are not handed out again.
DELETE FROM sqlite_sequence WHERE name = 'maintenance_windows_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'maintenance_windows_new', seq FROM sqlite_sequence WHERE name = 'maintenance_windows';
DROP TABLE maintenance_windows;
ALTER TABLE maintenance_windows_new RENAME TO maintenance_windows;
CREATE INDEX maintenance_windows_by_tenant ON maintenance_windows (tenant_id, kind);
CREATE INDEX maintenance_windows_by_end ON maintenance_windows (end_at) WHERE end_at IS NOT NULL;
