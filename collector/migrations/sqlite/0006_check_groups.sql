-- Same-check grouping (per tenant, `group_same_check`): a `kind = 'group'`
-- parent ticket per check kind + item; member tickets point at it through
-- `parent_id`. The sweep looks up open parents and their open members once
-- a second.
CREATE INDEX tickets_open_groups ON tickets (kind, tenant_id) WHERE kind = 'group' AND state = 'open';
CREATE INDEX tickets_by_parent ON tickets (parent_id, state) WHERE parent_id IS NOT NULL;
