-- The nonce endpoint: stores a fresh c_nonce (its SHA-256, drawn by the caller) for five
-- minutes, unless the tenant issues nothing (then nothing is written, so made-up tenants
-- cost no row). Expired nonces go when new ones come, so the table holds about one lifetime
-- of them.
CREATE OR REPLACE FUNCTION public_nonce_issue(p_tenant uuid, p_nonce_hash bytea)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM public.credential_schema_versions v
                 WHERE v.tenant_id = p_tenant) THEN
    RETURN false;
  END IF;
  DELETE FROM public.oid4vci_nonces n
  WHERE n.tenant_id = p_tenant AND n.expires_at < now() - interval '5 minutes';
  INSERT INTO public.oid4vci_nonces (tenant_id, nonce_hash, expires_at)
  VALUES (p_tenant, p_nonce_hash, now() + interval '5 minutes');
  RETURN true;
END
$$;
COMMENT ON FUNCTION public_nonce_issue(uuid, bytea) IS
  'Public endpoints: stores the c_nonce hashing to p_nonce_hash for five minutes; false (and '
  'nothing stored) when the tenant issues nothing.';
REVOKE ALL ON FUNCTION public_nonce_issue(uuid, bytea) FROM PUBLIC;
SELECT grant_public('EXECUTE', 'FUNCTION public_nonce_issue(uuid, bytea)');
