-- Maintenance windows that recur by an RFC 5545 RRULE subset (issue 11):
-- kind 'rrule' keeps the rule text in `rrule` and its anchor date (DTSTART,
-- 'YYYY-MM-DD', a local date in the tenant's time zone) in `dtstart`, and
-- reuses `start_minute` and `duration_secs` as weekly windows do. The rule
-- is validated above the store; the store keeps it as given. (SQLite: 0015.)
ALTER TABLE maintenance_windows ADD COLUMN rrule TEXT;
ALTER TABLE maintenance_windows ADD COLUMN dtstart TEXT;

-- The CHECK constraints of 0001 were unnamed: drop them by what they are.
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'maintenance_windows'::regclass AND contype = 'c'
    LOOP
        EXECUTE format('ALTER TABLE maintenance_windows DROP CONSTRAINT %I', c.conname);
    END LOOP;
END;
$$;

ALTER TABLE maintenance_windows
    ADD CONSTRAINT maintenance_windows_kind
        CHECK (kind IN ('once', 'weekly', 'silence', 'rrule')),
    ADD CONSTRAINT maintenance_windows_span
        CHECK (kind IN ('weekly', 'rrule')
               OR (start_at IS NOT NULL AND end_at IS NOT NULL AND end_at > start_at)),
    ADD CONSTRAINT maintenance_windows_weekly
        CHECK (kind != 'weekly' OR (weekdays BETWEEN 1 AND 127 AND start_minute BETWEEN 0 AND 1439
                                    AND duration_secs > 0)),
    ADD CONSTRAINT maintenance_windows_rrule
        CHECK (kind != 'rrule' OR (rrule IS NOT NULL AND dtstart IS NOT NULL
                                   AND start_minute BETWEEN 0 AND 1439 AND duration_secs > 0));
