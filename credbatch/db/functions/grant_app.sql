-- Migration helper: grants privileges to the application role. Migrations call it for their
-- table grants and function files for their EXECUTE grants; the runner sets
-- credbatch.app_role for its session, and the call fails loudly when it is missing.
CREATE OR REPLACE FUNCTION grant_app(p_privileges text, p_object text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  EXECUTE format('GRANT %s ON %s TO %I', p_privileges, p_object,
                 current_setting('credbatch.app_role'));
END
$$;
COMMENT ON FUNCTION grant_app(text, text) IS
  'Migration helper: GRANT p_privileges ON p_object TO the application role named by the '
  'session setting credbatch.app_role (set by credbatch.db.migrate).';
REVOKE ALL ON FUNCTION grant_app(text, text) FROM PUBLIC;
