-- How many days after a batch ends its records keep their personal data, for one tenant: the
-- tenant's own period (tenant_profiles.retention_days, UpdateTenantProfile) or, when it sets
-- none, the environment's (CREDBATCH_RETENTION_DAYS, passed in). The one place the retention
-- purge asks.
CREATE OR REPLACE FUNCTION tenant_retention_days(p_tenant uuid, p_default integer)
RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT coalesce((SELECT p.retention_days FROM public.tenant_profiles p
                   WHERE p.tenant_id = p_tenant), p_default)
$$;
COMMENT ON FUNCTION tenant_retention_days(uuid, integer) IS
  'Days after a batch of tenant p_tenant ends before its records'' personal data is purged: '
  'the tenant profile''s retention_days, else p_default (CREDBATCH_RETENTION_DAYS).';
-- Called by janitor_purge (as the owner) only.
REVOKE ALL ON FUNCTION tenant_retention_days(uuid, integer) FROM PUBLIC;
