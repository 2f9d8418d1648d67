-- Migration helper: grants privileges to the signer's role (credbatch.signer_role, set by
-- credbatch.db.migrate; LOGIN, no superuser, no BYPASSRLS, owns nothing).
--
-- The signer re-signs a record's stored credential bound to a wallet's key, for the public
-- endpoints, and only for a wallet's live, unused access token of that record, which it
-- spends (claiming the record) as it signs. It holds the KEK, so it may read a tenant's
-- wrapped signing key; it reaches that, the grant and the stored credential through the
-- signer_* functions (SECURITY DEFINER) and has no table, so it never sees a recipient's
-- contact data or a webhook secret. Each file grants
-- its function through this helper.
CREATE OR REPLACE FUNCTION grant_signer(p_privileges text, p_object text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  EXECUTE format('GRANT %s ON %s TO %I', p_privileges, p_object,
                 current_setting('credbatch.signer_role'));
END
$$;
COMMENT ON FUNCTION grant_signer(text, text) IS
  'Migration helper: GRANT p_privileges ON p_object TO the signer''s role named by the '
  'session setting credbatch.signer_role (set by credbatch.db.migrate).';
REVOKE ALL ON FUNCTION grant_signer(text, text) FROM PUBLIC;
