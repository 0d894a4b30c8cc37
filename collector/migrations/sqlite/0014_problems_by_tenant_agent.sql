-- A report reads its agent's problems by (tenant_id, agent_id): the index
-- that matches both (as on PostgreSQL, where the planner needs it).
CREATE INDEX problems_by_tenant_agent ON problems (tenant_id, agent_id);
