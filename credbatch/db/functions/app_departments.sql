-- The acting user's departments, read by the batches policies (an observer sees its
-- departments' batches, an issuer uploads into one of its own).
-- credbatch.tenancy.tenant_transaction sets app.tenant_id, app.user_id, app.roles and
-- app.departments with set_config(..., true) (transaction-local). After such a transaction
-- ends the setting still exists in the session but reads '' - hence nullif.
-- Plain SQL and STABLE so the planner inlines it and uses it as an index condition. Every
-- role may run it (no REVOKE): the row-level security policies call it as whoever queries.
CREATE OR REPLACE FUNCTION app_departments() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT coalesce(nullif(pg_catalog.current_setting('app.departments', true), '')::text[],
                  '{}'::text[])
$$;
COMMENT ON FUNCTION app_departments() IS
  'Departments of the acting user (app.departments, a text-formatted array); empty when '
  'none is set.';
