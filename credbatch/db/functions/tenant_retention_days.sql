-- How many days after a batch ends its records keep their personal data, for one tenant:
-- the one place the retention purge asks, so a per-tenant setting needs only this body.
-- Today every tenant has the environment's period (CREDBATCH_RETENTION_DAYS, passed in).
CREATE OR REPLACE FUNCTION tenant_retention_days(p_tenant uuid, p_default integer)
RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT p_default
$$;
COMMENT ON FUNCTION tenant_retention_days(uuid, integer) IS
  'Days after a batch of tenant p_tenant ends before its records'' personal data is purged; '
  'p_default (CREDBATCH_RETENTION_DAYS) unless the tenant sets its own.';
-- Called by janitor_purge (as the owner) only.
REVOKE ALL ON FUNCTION tenant_retention_days(uuid, integer) FROM PUBLIC;
