-- The acting user's roles, read by the batches and records policies (visibility by role).
-- credbatch.tenancy.tenant_transaction sets app.tenant_id, app.user_id, app.roles and
-- app.departments with set_config(..., true) (transaction-local). After such a transaction
-- ends the setting still exists in the session but reads '' - hence nullif.
-- Plain SQL and STABLE so the planner inlines it and uses it as an index condition. Every
-- role may run it (no REVOKE): the row-level security policies call it as whoever queries.
CREATE OR REPLACE FUNCTION app_roles() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT coalesce(nullif(pg_catalog.current_setting('app.roles', true), '')::text[],
                  '{}'::text[])
$$;
COMMENT ON FUNCTION app_roles() IS
  'Roles of the acting user (app.roles, a text-formatted array); empty when none is set.';
