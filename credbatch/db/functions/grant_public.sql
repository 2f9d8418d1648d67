-- Migration helper: grants privileges to the public endpoints' role (credbatch.public_role,
-- set by credbatch.db.migrate; LOGIN, no superuser, no BYPASSRLS, owns nothing).
--
-- The public process is internet-facing and unauthenticated: a foothold in it must reach no
-- more than its HTTP routes hand out to anyone. So its role has no table at all, only the
-- public_* functions (SECURITY DEFINER), each answering one route's question for the tenant
-- and the opaque id, code or token it is given: issuer keys, a status list token, a
-- certificate, a claim, the credential configurations, an offer, its exchange, an access
-- token's grant, and spending a nonce. It cannot claim a record or spend an access token:
-- only the signer does, as it signs. None of them returns a recipient's
-- email, phone or attributes, a wrapped signing key or a webhook secret. Each file grants
-- its function through this helper.
CREATE OR REPLACE FUNCTION grant_public(p_privileges text, p_object text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  EXECUTE format('GRANT %s ON %s TO %I', p_privileges, p_object,
                 current_setting('credbatch.public_role'));
END
$$;
COMMENT ON FUNCTION grant_public(text, text) IS
  'Migration helper: GRANT p_privileges ON p_object TO the public endpoints'' role named by '
  'the session setting credbatch.public_role (set by credbatch.db.migrate).';
REVOKE ALL ON FUNCTION grant_public(text, text) FROM PUBLIC;
