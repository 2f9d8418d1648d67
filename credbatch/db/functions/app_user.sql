-- The acting user or service, read by the batches and records policies (an issuer sees the
-- batches it created).
-- credbatch.tenancy.tenant_transaction sets app.tenant_id, app.user_id, app.roles and
-- app.departments with set_config(..., true) (transaction-local). After such a transaction
-- ends the setting still exists in the session but reads '' - hence nullif.
-- Plain SQL and STABLE so the planner inlines it and uses it as an index condition. Every
-- role may run it (no REVOKE): the row-level security policies call it as whoever queries.
CREATE OR REPLACE FUNCTION app_user() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(pg_catalog.current_setting('app.user_id', true), '') $$;
COMMENT ON FUNCTION app_user() IS
  'Acting user or service id (token sub, app.user_id) or NULL when none is set.';
