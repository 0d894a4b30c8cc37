-- Site outage grouping: member tickets point at their site ticket; agents
-- remember when they went overdue.
ALTER TABLE tickets ADD COLUMN parent_id INTEGER REFERENCES tickets(id);
ALTER TABLE agents ADD COLUMN overdue_since INTEGER;
CREATE INDEX agents_overdue_by_site ON agents (tenant_id, site) WHERE overdue = 1;
