-- Migration helper: grants privileges to the status list refresher's role
-- (credbatch.refresher_role, set by credbatch.db.migrate; LOGIN, no superuser, no BYPASSRLS,
-- owns nothing).
--
-- Each issuance worker signs again the status list tokens that are due, of every tenant, so
-- it must find them across tenants: status_list_tokens_due lists them (ids only). Granted to
-- the application role, any tenant-scoped session of any service could list every tenant's
-- lists; so only this role may run it, and the workers sign each list in its tenant's
-- transaction as the application role.
CREATE OR REPLACE FUNCTION grant_refresher(p_privileges text, p_object text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  EXECUTE format('GRANT %s ON %s TO %I', p_privileges, p_object,
                 current_setting('credbatch.refresher_role'));
END
$$;
COMMENT ON FUNCTION grant_refresher(text, text) IS
  'Migration helper: GRANT p_privileges ON p_object TO the status list refresher''s role named '
  'by the session setting credbatch.refresher_role (set by credbatch.db.migrate).';
REVOKE ALL ON FUNCTION grant_refresher(text, text) FROM PUBLIC;
