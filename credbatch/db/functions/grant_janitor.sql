-- Migration helper: grants privileges to the janitor's role (credbatch.janitor_role, set by
-- credbatch.db.migrate; LOGIN, no superuser, no BYPASSRLS, owns nothing).
--
-- The janitor erases personal data once a batch's retention period is over and prunes what
-- is kept only for a while (webhook events and deliveries, spent nonces, expired offers and
-- access tokens, idempotency keys, dispatch bookkeeping), for every tenant. Granted to the
-- application role, any tenant-scoped session could erase or delete every tenant's rows; so
-- only this role may run the janitor_* functions, and it reads no table itself.
CREATE OR REPLACE FUNCTION grant_janitor(p_privileges text, p_object text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  EXECUTE format('GRANT %s ON %s TO %I', p_privileges, p_object,
                 current_setting('credbatch.janitor_role'));
END
$$;
COMMENT ON FUNCTION grant_janitor(text, text) IS
  'Migration helper: GRANT p_privileges ON p_object TO the janitor''s role named by the '
  'session setting credbatch.janitor_role (set by credbatch.db.migrate).';
REVOKE ALL ON FUNCTION grant_janitor(text, text) FROM PUBLIC;
